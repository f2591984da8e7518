#!/usr/bin/env bash
# The demo: on a fresh Debian machine, installs what is missing, builds,
# starts a throw-away ZooKeeper on loopback, shows the oversell problem
# solved by zkr_lock, and stops the server. Leaves nothing running.
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

say "[4/6] fleet cron: 5 machines fire the same job at once through 'zkr lock -n'"
: > "$work/cron.log"
for m in 1 2 3 4 5; do
  (zkr lock -n /zkr-demo/cron -- sh -c "echo machine$m >> '$work/cron.log'; sleep 1"; echo $? > "$work/cron.$m") &
done
wait
runs=$(wc -l < "$work/cron.log")
echo "    the job ran $runs time(s), on $(cat "$work/cron.log"); exit codes: $(cat "$work"/cron.[1-5] | tr '\n' ' ')"

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
printf '    %-34s %s\n' "fleet cron, 5 machines" "ran $runs time(s)"
printf '    %-34s %s\n' "leader failover after SIGKILL" "$leader -> $new in ${failover_ms} ms"
printf '    %-34s %s\n' "stale write of a paused holder" "$([ $fence_rc = 2 ] && echo rejected by token || echo NOT rejected)"
[ "$oversell_ok" = yes ] && [ "$runs" = 1 ] && [ "$new" != "$leader" ] && [ -n "$new" ] && [ "$fence_rc" = 2 ] ||
  { say "demo: an outcome was not as expected"; exit 1; }
