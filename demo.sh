#!/usr/bin/env bash
# The demo: on a fresh Debian machine, installs what is missing, builds,
# starts a throw-away ZooKeeper on loopback, shows the oversell problem
# solved by zkr_lock, the daily job of a fleet run once by zkr once where
# zkr lock -n runs it again for every late timer, a leader failover and a
# fenced stale write, and stops the server. Leaves nothing running.
set -euo pipefail
cd "$(dirname "$0")"
say() { printf '\033[1m%s\033[0m\n' "$*"; }

say "[1/6] dependencies and build"
scripts/install-deps.sh
scripts/build.sh

say "[2/6] starting a throw-away ZooKeeper"
work=$(mktemp -d)
cleanup() { tests/zk-server.sh stop "$work/zk" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
mkdir -p "$work/zk"
hosts=$(tests/zk-server.sh start "$work/zk")
echo "    ZooKeeper at $hosts (data in $work/zk)"

zkr() { tools/zkr --hosts "$hosts" "$@"; } # foreground only: & would give the subshell's pid
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

say "[3/6] oversell: 100 items, 8 worker processes selling concurrently"
printf '100\n' > "$work/stock"
nolock=$(examples/oversell "$hosts" "$work/stock" nolock 8 "$work/tl-nolock")
printf '100\n' > "$work/stock"
withlock=$(examples/oversell "$hosts" "$work/stock" lock 8 "$work/tl-lock")
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }
printf '    %-22s %-12s %-12s\n' "" "no lock" "zkr_lock"
printf '    %-22s %-12s %-12s\n' "items sold (of 100)" "$(field sold "$nolock")" "$(field sold "$withlock")"
printf '    %-22s %-12s %-12s\n' "stock left" "$(field stock "$nolock")" "$(field stock "$withlock")"
svg=demo-timeline.svg
scripts/timeline-svg.py "$svg" "without a lock=$work/tl-nolock" "with zkr_lock=$work/tl-lock"
echo "    lock-holding timeline of the workers: $PWD/$svg"
oversell_ok=no
[ "$(field sold "$withlock")" = 100 ] && [ "$(field stock "$withlock")" = 0 ] && oversell_ok=yes

say "[4/6] fleet cron: 5 machines fire the same daily job, their timers spread over a minute"
# Time is compressed, not faked away: the machines' timers, 15 s apart over
# a minute, fire 0.6 s apart here, and the job takes 0.3 s; faketime sets two
# machines' clocks 30 s behind and ahead (zkr once reads the server's clock).
echo "    (time compressed 25x: timers 15 s apart fire 0.6 s apart, the job takes 0.3 s;"
echo "     machine2's clock is 30 s behind, machine4's 30 s ahead, via faketime)"
fire_at=(0 0.0 0.6 1.2 1.8 2.4)
skew=("" "" "-30s" "" "+30s" "")
# fleet lock|once: fires the 5 machines through `zkr lock -n` or `zkr once`.
fleet() {
  local mode=$1 m
  : >"$work/$mode.log"
  for m in 1 2 3 4 5; do
    (
      sleep "${fire_at[$m]}"
      ft=()
      [ -n "${skew[$m]}" ] && ft=(faketime -f "${skew[$m]}")
      rc=0
      if [ "$mode" = lock ]; then
        "${ft[@]}" tools/zkr --hosts "$hosts" lock -n /zkr-demo/cron -- \
          sh -c "echo machine$m >> '$work/$mode.log'; sleep 0.3" || rc=$?
      else
        "${ft[@]}" tools/zkr --hosts "$hosts" once --key /zkr-demo/cron-once --period 1d --id "machine$m" -- \
          sh -c "echo machine$m \$ZKR_ONCE_PERIOD >> '$work/$mode.log'; sleep 0.3" || rc=$?
      fi 2>"$work/$mode.$m.err"
      echo $rc >"$work/$mode.$m.rc"
    ) &
  done
  wait
}
outcome() { # outcome MODE MACHINE
  local by
  if grep -q "^machine$2\( \|$\)" "$work/$1.log"; then
    echo "ran"
  elif by=$(sed -n 's/.*already done by \([^ ]*\) .*/\1/p' "$work/$1.$2.err") && [ -n "$by" ]; then
    echo "not run: done by $by"
  else
    echo "not run: lock held (exit $(cat "$work/$1.$2.rc"))"
  fi
}
fleet lock
fleet once
lock_runs=$(wc -l <"$work/lock.log")
once_runs=$(wc -l <"$work/once.log")
once_periods=$(cut -d' ' -f2 "$work/once.log" | sort -u | wc -l)
printf '    %-9s %-7s %-7s %-26s %s\n' machine fires clock "zkr lock -n" "zkr once --period 1d"
for m in 1 2 3 4 5; do
  printf '    %-9s %-7s %-7s %-26s %s\n' "machine$m" "+${fire_at[$m]}s" "${skew[$m]:-exact}" \
    "$(outcome lock $m)" "$(outcome once $m)"
done
printf '    %-25s %-26s %s\n' "the job ran" "$lock_runs time(s)" "$once_runs time(s), period $(cut -d' ' -f2 "$work/once.log" | sort -u | paste -sd' ')"
# A run across UTC midnight legitimately runs once in each of two days.
once_ok=no
[ "$once_runs" -ge 1 ] && [ "$once_runs" = "$once_periods" ] && once_ok=yes

say "[5/6] leader failover: 3 participants under 'zkr elect', the leader is killed"
declare -A zpid
for n in 1 2 3; do
  tools/zkr --hosts "$hosts" --session-timeout 2000 elect --id node$n /zkr-demo/leader -- sh -c "echo '    node$n: I am the leader now'; exec sleep 600" &
  zpid[node$n]=$!
  disown "$!" # we reap them ourselves: no job-control noise when one is killed
done
leader=""
for _ in $(seq 100); do leader=$(zkr leader /zkr-demo/leader 2>/dev/null) && break; sleep 0.1; done
echo "    leader: $leader; killing its process (SIGKILL) ..."
t0=$(date +%s%N)
kill -9 "${zpid[$leader]}"
new=$leader
for _ in $(seq 200); do
  new=$(zkr leader /zkr-demo/leader 2>/dev/null || true)
  [ -n "$new" ] && [ "$new" != "$leader" ] && break
  sleep 0.05
done
failover_ms=$(ms_since "$t0")
echo "    new leader: $new after ${failover_ms} ms (session timeout 2000 ms)"
for n in 1 2 3; do kill -TERM "${zpid[node$n]}" 2>/dev/null || true; done
for n in 1 2 3; do
  for _ in $(seq 100); do kill -0 "${zpid[node$n]}" 2>/dev/null || break; sleep 0.05; done
done

say "[6/6] fencing: a holder paused past its session writes with a stale token"
: > "$work/storage"
examples/fencing "$hosts" "$work/storage" A pause & apid=$!
for _ in $(seq 200); do [ "$(ps -o stat= -p "$apid" | cut -c1)" = T ] && break; sleep 0.05; done
echo "    A is paused (SIGSTOP) between its check and its write; B asks for the lock ..."
examples/fencing "$hosts" "$work/storage" B
kill -CONT "$apid"
fence_rc=0; wait "$apid" || fence_rc=$?

say "summary"
printf '    %-34s %s\n' "oversell, no lock" "$(field sold "$nolock") sold of 100"
printf '    %-34s %s\n' "oversell, zkr_lock" "$(field sold "$withlock") sold of 100, $(field stock "$withlock") left"
printf '    %-34s %s\n' "fleet cron, zkr lock -n" "ran $lock_runs time(s)"
printf '    %-34s %s\n' "fleet cron, zkr once --period 1d" "ran $once_runs time(s) in $once_periods period(s)"
printf '    %-34s %s\n' "leader failover after SIGKILL" "$leader -> $new in ${failover_ms} ms"
printf '    %-34s %s\n' "stale write of a paused holder" "$([ $fence_rc = 2 ] && echo rejected by token || echo NOT rejected)"
[ "$oversell_ok" = yes ] && [ "$once_ok" = yes ] && [ "$new" != "$leader" ] && [ -n "$new" ] && [ "$fence_rc" = 2 ] ||
  { say "demo: an outcome was not as expected"; exit 1; }
