#!/usr/bin/env bash
# The zkr tool against a real server ($ZKR_TEST_HOSTS, from with-zk.sh):
# mutual exclusion, -n/-w/-E, status passthrough, the lost-lock kill,
# signal forwarding, status/leader/elect, unreachable hosts, usage errors.
set -u
ZKR="${top_builddir:-.}/tools/zkr"
[ -n "${ZKR_TEST_HOSTS:-}" ] || { echo "ZKR_TEST_HOSTS is not set (run through tests/with-zk.sh)"; echo "0 passed, 1 failed"; exit 1; }
export ZKR_HOSTS=$ZKR_TEST_HOSTS
work=$(mktemp -d)
bgpids=()
cleanup() {
  for p in "${bgpids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
passed=0
failed=0
ok() { echo "PASS: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL: $1: $2"; failed=$((failed + 1)); }
ms() { echo $(($(date +%s%N) / 1000000)); }
# await CMD... : until CMD succeeds, polling every 20 ms, at most 15 s.
await() {
  local until=$(($(ms) + 15000))
  until "$@" 2>/dev/null; do
    [ "$(ms)" -lt "$until" ] || return 1
    sleep 0.02
  done
}
participants() { "$ZKR" status --json "$1" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["participants"]))'; }
empty() { [ "$(participants "$1")" = 0 ]; }
holders_at_least() { [ "$(participants "$1")" -ge "$2" ]; }
p() { echo "/zkr-test/cli-$$-$1"; }

test_cli_mutual_exclusion() {
  local path dir i
  path=$(p mutex)
  dir=$work/mutex
  mkdir -p "$dir"
  for i in $(seq 6); do
    (for _ in 1 2 3; do
      "$ZKR" lock "$path" -- sh -c "set -o noclobber; : > '$dir/marker' || exit 99; sleep 0.05; rm '$dir/marker'; echo x >> '$dir/count'" || echo "rc=$?" >> "$dir/errors"
    done) &
  done
  wait
  if [ -s "$dir/errors" ]; then bad "${FUNCNAME[0]}" "$(sort "$dir/errors" | uniq -c | tr '\n' ' ')"
  elif [ "$(wc -l < "$dir/count")" != 18 ]; then bad "${FUNCNAME[0]}" "count $(wc -l < "$dir/count") != 18"
  elif ! empty "$path"; then bad "${FUNCNAME[0]}" "nodes left"
  else ok "${FUNCNAME[0]}"; fi
}

test_cli_nonblock_wait_exit_codes() {
  local path h t0 t rc errs=""
  path=$(p wait)
  "$ZKR" lock "$path" -- sh -c "touch '$work/held'; sleep 3" &
  h=$!
  bgpids+=("$h")
  await test -e "$work/held" || errs="holder never ran; "
  t0=$(ms); "$ZKR" lock -n "$path" -- true; rc=$?; t=$(($(ms) - t0))
  [ $rc = 1 ] && [ $t -lt 2000 ] || errs="$errs-n rc=$rc t=${t}ms; "
  "$ZKR" lock -n -E 7 "$path" -- true; rc=$?
  [ $rc = 7 ] || errs="$errs-E 7 rc=$rc; "
  t0=$(ms); "$ZKR" lock -w 0.5 "$path" -- true; rc=$?; t=$(($(ms) - t0))
  [ $rc = 1 ] && [ $t -ge 500 ] && [ $t -lt 2500 ] || errs="$errs-w 0.5 rc=$rc t=${t}ms; "
  "$ZKR" lock -w 10 "$path" -- true; rc=$?
  [ $rc = 0 ] || errs="$errs-w 10 after release rc=$rc; "
  wait "$h"
  empty "$path" || errs="${errs}nodes left"
  [ -z "$errs" ] && ok "${FUNCNAME[0]}" || bad "${FUNCNAME[0]}" "$errs"
}

test_cli_status_passthrough_and_env() {
  local path rc errs="" t1 t2 node
  path=$(p env)
  "$ZKR" lock "$path" -- sh -c 'exit 3'; rc=$?
  [ $rc = 3 ] || errs="exit 3 gave $rc; "
  "$ZKR" lock "$path" -- sh -c 'kill -9 $$'; rc=$?
  [ $rc = 137 ] || errs="${errs}signal 9 gave $rc; "
  "$ZKR" lock "$path" -- sh -c 'echo "$ZKR_LOCK_PATH|$ZKR_LOCK_NODE|$ZKR_FENCING_TOKEN"' > "$work/env1"
  "$ZKR" lock "$path" -- sh -c 'echo "$ZKR_FENCING_TOKEN"' > "$work/env2"
  IFS='|' read -r lp node t1 < "$work/env1"
  t2=$(cat "$work/env2")
  [ "$lp" = "$path" ] || errs="${errs}ZKR_LOCK_PATH=$lp; "
  [[ "$node" =~ ^$path/_c_[0-9a-f-]{36}-lock-[0-9]{10}$ ]] || errs="${errs}ZKR_LOCK_NODE=$node; "
  [[ "$t1" =~ ^[0-9]+$ ]] && [ "$t2" -gt "$t1" ] || errs="${errs}tokens $t1 then $t2; "
  empty "$path" || errs="${errs}nodes left"
  [ -z "$errs" ] && ok "${FUNCNAME[0]}" || bad "${FUNCNAME[0]}" "$errs"
}

test_cli_lost_lock_kills_command() {
  local path z rc child errs=""
  path=$(p lost)
  rm -f "$work/childpid"
  "$ZKR" --session-timeout 2000 lock "$path" -- sh -c "echo \$\$ > '$work/childpid'; exec sleep 60" &
  z=$!
  bgpids+=("$z")
  await test -s "$work/childpid" || errs="child never started; "
  child=$(cat "$work/childpid")
  kill -STOP "$z"
  "$ZKR" lock -w 15 "$path" -- sh -c "echo ran > '$work/second'"; rc=$?
  [ $rc = 0 ] && [ -s "$work/second" ] || errs="${errs}second lock rc=$rc; "
  kill -CONT "$z"
  wait "$z"; rc=$?
  [ $rc = 75 ] || errs="${errs}paused zkr exit $rc (want 75); "
  kill -0 "$child" 2>/dev/null && errs="${errs}command still alive; "
  empty "$path" || errs="${errs}nodes left"
  [ -z "$errs" ] && ok "${FUNCNAME[0]}" || bad "${FUNCNAME[0]}" "$errs"
}

test_cli_signal_forwarding() {
  local path z rc sig errs=""
  path=$(p sig)
  for sig in TERM INT HUP; do
    rm -f "$work/sigready"
    # A background job of a script starts with SIGINT ignored, and zkr (like
    # flock) keeps an inherited "ignore"; give it the default disposition.
    env --default-signal=INT,TERM,HUP "$ZKR" lock "$path" -- sh -c "trap 'exit 42' $sig; touch '$work/sigready'; sleep 30 & wait" &
    z=$!
    bgpids+=("$z")
    await test -e "$work/sigready" || errs="$errs$sig: not started; "
    kill -"$sig" "$z"
    wait "$z"; rc=$?
    [ $rc = 42 ] || errs="$errs$sig: exit $rc (want 42); "
    "$ZKR" lock -n "$path" -- true || errs="$errs$sig: lock not free after; "
  done
  empty "$path" || errs="${errs}nodes left"
  [ -z "$errs" ] && ok "${FUNCNAME[0]}" || bad "${FUNCNAME[0]}" "$errs"
}

test_cli_child_dies_with_zkr() {
  local path z child errs=""
  path=$(p pdeath)
  rm -f "$work/childpid"
  "$ZKR" lock "$path" -- sh -c "echo \$\$ > '$work/childpid'; exec sleep 60" &
  z=$!
  await test -s "$work/childpid" || errs="child never started; "
  child=$(cat "$work/childpid")
  kill -KILL "$z"
  wait "$z" 2>/dev/null
  gone() { ! kill -0 "$child" 2>/dev/null; }
  await gone || errs="${errs}command survived zkr; "
  await empty "$path" || errs="${errs}node not released with the session"
  [ -z "$errs" ] && ok "${FUNCNAME[0]}" || bad "${FUNCNAME[0]}" "$errs"
}

test_cli_status_json_queue_order() {
  local path errs="" a b c out
  path=$(p status)
  "$ZKR" lock --id alpha "$path" -- sleep 30 & a=$!
  bgpids+=("$a")
  await holders_at_least "$path" 1 || errs="holder missing; "
  "$ZKR" lock --id beta "$path" -- true & b=$!
  bgpids+=("$b")
  await holders_at_least "$path" 2 || errs="${errs}beta missing; "
  "$ZKR" lock --id gamma "$path" -- true & c=$!
  bgpids+=("$c")
  await holders_at_least "$path" 3 || errs="${errs}gamma missing; "
  out=$("$ZKR" status --json "$path" | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join(p["role"] + ":" + p["id"] for p in d["participants"]))')
  [ "$out" = "holder:alpha waiter:beta waiter:gamma" ] || errs="${errs}json order: $out; "
  [ "$("$ZKR" status "$path" | wc -l)" = 4 ] || errs="${errs}plain status lines; "
  kill -TERM "$a"
  wait "$a" "$b" "$c" 2>/dev/null
  await empty "$path" || errs="${errs}nodes left"
  [ -z "$errs" ] && ok "${FUNCNAME[0]}" || bad "${FUNCNAME[0]}" "$errs"
}

test_cli_elect_and_leader() {
  local path errs="" a b rc leader
  path=$(p elect)
  "$ZKR" leader "$path" > /dev/null 2>&1; rc=$?
  [ $rc = 1 ] || errs="leader on empty path exit $rc; "
  : > "$work/ran"
  "$ZKR" --session-timeout 2000 elect --id one "$path" -- sh -c "echo one >> '$work/ran'; exec sleep 60" &
  a=$!
  bgpids+=("$a")
  await grep -q one "$work/ran" || errs="${errs}first never led; "
  "$ZKR" --session-timeout 2000 elect --id two "$path" -- sh -c "echo two >> '$work/ran'; exec sleep 60" &
  b=$!
  bgpids+=("$b")
  await holders_at_least "$path" 2 || errs="${errs}second not queued; "
  leader=$("$ZKR" leader "$path")
  [ "$leader" = one ] || errs="${errs}leader '$leader'; "
  grep -q two "$work/ran" && errs="${errs}second ran while not leading; "
  kill -KILL "$a"
  await grep -q two "$work/ran" || errs="${errs}second never took over; "
  [ "$("$ZKR" leader "$path")" = two ] || errs="${errs}leader not two; "
  kill -TERM "$b"
  wait "$b" 2>/dev/null
  await empty "$path" || errs="${errs}nodes left"
  [ -z "$errs" ] && ok "${FUNCNAME[0]}" || bad "${FUNCNAME[0]}" "$errs"
}

test_cli_unreachable_and_usage() {
  local rc t0 t errs="" sub
  t0=$(ms)
  "$ZKR" --hosts 127.0.0.1:1 --connect-timeout 1000 lock /x -- true 2> "$work/err"; rc=$?
  t=$(($(ms) - t0))
  [ $rc = 69 ] && [ $t -lt 3000 ] && [ -s "$work/err" ] || errs="unreachable rc=$rc t=${t}ms; "
  "$ZKR" --hosts 'bad host' status /x 2> /dev/null; rc=$?
  [ $rc = 64 ] || errs="${errs}bad hosts rc=$rc; "
  "$ZKR" lock 2> /dev/null; [ $? = 64 ] || errs="${errs}no PATH; "
  "$ZKR" lock /x 2> /dev/null; [ $? = 64 ] || errs="${errs}no COMMAND; "
  "$ZKR" lock -w abc /x -- true 2> /dev/null; [ $? = 64 ] || errs="${errs}bad -w; "
  "$ZKR" frobnicate 2> /dev/null; [ $? = 64 ] || errs="${errs}unknown subcommand; "
  "$ZKR" lock relative -- true 2> /dev/null; [ $? = 64 ] || errs="${errs}relative path; "
  "$ZKR" lock /zookeeper/x -- true 2> /dev/null; [ $? = 64 ] || errs="${errs}/zookeeper path; "
  "$ZKR" --help | grep -q usage || errs="${errs}--help; "
  for sub in lock elect status leader; do
    "$ZKR" $sub --help | grep -q "usage: zkr $sub" || errs="${errs}$sub --help; "
  done
  [ -z "$errs" ] && ok "${FUNCNAME[0]}" || bad "${FUNCNAME[0]}" "$errs"
}

for t in $(declare -F | awk '{print $3}' | grep '^test_cli_'); do
  "$t"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
