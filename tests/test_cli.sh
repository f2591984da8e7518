#!/usr/bin/env bash
# End-to-end tests of the zkr tool (tools/zkr) against a real ZooKeeper.
#
#   ZKR_TEST_HOSTS=127.0.0.1:PORT tests/test_cli.sh [CASE...]   (normally via tests/with-zk.sh)
#
# zkr is ${top_builddir:-.}/tools/zkr; CASE names (e.g. `leader help`) run only those cases.
#
# Each case is a function test_cli_<behaviour>; it prints "PASS: name" or
# "FAIL: name: reason", and the last line is "N passed, M failed". Exit 1 if
# any case failed, or if $ZKR_TEST_HOSTS is unset (a missing server is a
# failure, never a skip). Each case uses its own lock path
# /zkr-test/cli-$$-<case> and must leave no participant behind; every process
# started here is ended by the EXIT trap whatever happens.
#
# Two C drivers help (check programs, built on demand): tests/proxy_cli, a
# fault proxy whose link a case stalls (proxy_start, proxy_do), and
# tests/pty_run, which runs an interactive shell on a pseudo-terminal that a
# case types into, Ctrl-Z included (term_start, keys).
#
# Waiting is done with `await CMD BOUND_MS` (polls every 25 ms), never with
# a fixed sleep, except where the absence of an event is checked (LOOK_MS:
# the elect case gives a non-leader 0.3 s to wrongly start its command).
# No bound is a fixed number of seconds: each is one of the "time bounds"
# below, derived as in tests/harness.h from the session timeouts the cases'
# zkr runs have (a generous settle for what is expected, the protocol's
# bound + LATE_MS for what must happen on time), or a named constant where
# no session is involved (a local helper starting, a look for an absence).

# The single-quoted commands given to await and sh -c expand later, on purpose.
# shellcheck disable=SC2016
set -u

ZKR=${top_builddir:-.}/tools/zkr
HOSTS=${ZKR_TEST_HOSTS:-}
BASE=/zkr-test/cli-$$

if [ -z "$HOSTS" ]; then
  echo "FAIL: setup: ZKR_TEST_HOSTS is not set (run through tests/with-zk.sh)"
  echo "0 passed, 1 failed"
  exit 1
fi
if [ ! -x "$ZKR" ]; then
  echo "FAIL: setup: $ZKR not found or not executable (run make first)"
  echo "0 passed, 1 failed"
  exit 1
fi
# The C drivers (check programs): built here if `make check` has not yet.
PROXY_CLI=${top_builddir:-.}/tests/proxy_cli
PTY_RUN=${top_builddir:-.}/tests/pty_run
if [ ! -x "$PROXY_CLI" ] || [ ! -x "$PTY_RUN" ]; then
  make -s -C "${top_builddir:-.}" tests/proxy_cli tests/pty_run >/dev/null 2>&1
fi
if [ ! -x "$PROXY_CLI" ] || [ ! -x "$PTY_RUN" ]; then
  echo "FAIL: setup: $PROXY_CLI or $PTY_RUN missing (make tests/proxy_cli tests/pty_run)"
  echo "0 passed, 1 failed"
  exit 1
fi
unset ZKR_HOSTS ZKR_AUTH_FILE # every call names the server and credentials explicitly

WORK=$(mktemp -d "${TMPDIR:-/tmp}/zkr-cli.XXXXXX") || exit 1

# --- time bounds -----------------------------------------------------------------
#
# Those of tests/harness.h (read its comment block), in ms, from the session
# timeouts the cases' zkr runs actually have. This suite runs in the plain
# build only (Makefile.am), so no sanitizer factor applies. Two kinds:
#
# - Waits for what is expected (a command started, a zkr queued, a holder
#   ending on a signal, a handoff, a leader printed, nodes gone): generous,
#   three session timeouts, so that only a broken case reaches them, never a
#   loaded machine. Being generous costs nothing when the case passes.
# - Assertions that something happens within a protocol bound (a takeover
#   after a holder's session ended, a -w giving up, a tree killed when its
#   --grace ends, a command gone with its zkr, a barrier wait returning once
#   the barrier is removed): the bound zkr promises + LATE_MS, no looser, so
#   that a zkr that waited for one more timer or timeout still fails.

# zkr's default --session-timeout (tools/zkr.c): the session of every zkr
# run that does not pass one.
ZKR_SESSION_MS=10000
# The cases that let a holder's session end and time what follows (a
# pause, a SIGKILL, a stalled link, a deleted node) give that holder
# --session-timeout $SHORT_SESSION_MS.
SHORT_SESSION_MS=2000

# Expected, with sessions of timeout $1 involved: three timeouts.
settle_for() { echo $((3 * $1)); }
# The bound of every wait: each case has zkr runs with the default session
# (the waiters, status, lock -n), so three of those: 30 s.
SETTLE_MS=$(settle_for $ZKR_SESSION_MS)
# Expected: a zkr that waits behind $1 others that each hold briefly (or
# through one of the case's own waits) and hand over, each a settle.
queue_ms() { echo $((($1 + 1) * SETTLE_MS)); }

# Strict: how late a step may come after the moment the protocol fixes for
# it (a zkr process starting and exiting, a few loopback round trips, our
# 25 ms poll: milliseconds). A quarter of the short session, as TH_LATE_MS
# is a quarter of the C suites' session: the timed cases use the short
# session, and a quarter of zkr's default (2.5 s) would exceed the short
# session itself, the very timeout a wrong zkr would wait for. 500 ms.
LATE_MS=$((SHORT_SESSION_MS / 4))
# Strict: by when the end of a session of timeout $1 that went silent (its
# zkr SIGKILLed, paused or cut off) has had its effect: the server expires
# it within $1 (zkr's own clock declares it lost by then too), then the
# server's expiry tick (tickTime 500 ms, tests/zk-server.sh) and the
# notification with a few round trips, each within LATE_MS.
expired_by() { echo $(($1 + 2 * LATE_MS)); }
# zkr's default --grace for a session of timeout $1 (tools/zkr.c): half the
# library's expiry margin, max($1 / 10, 50 ms).
default_grace_ms() {
  local margin=$(($1 / 10))
  [ $margin -gt 50 ] || margin=50
  echo $((margin / 2))
}

# Not about any session, so named constants:
# - How long a case looks for an event that must not happen (a non-leader
#   starting its command, a barrier wait returning while the barrier is
#   set). Short on purpose: a wrong zkr acts a round trip after its cause,
#   and no look, however long, proves an absence; a longer one would only
#   slow the suite. A sample, not a bound, so not derived from a session.
LOOK_MS=300
# - A local helper process (the fault proxy, tests/proxy_cli) starting or
#   answering a command on a loaded machine: no ZooKeeper session involved.
LOCAL_MS=10000

# --- helpers -----------------------------------------------------------------

ALL_BG=()  # every background pid started by this script
CASE_BG=() # the background pids of the running case
P=""       # the running case's lock path
dir=""     # the running case's scratch directory
REASON=""  # why the running case failed

# Informational lines ("# ...") go to the original stderr (fd 3); each
# case's own stderr (zkr's messages, bash's job notices) is kept in
# DIR/stderr and shown only when the case fails.
exec 3>&2
info() { echo "# $*" >&3; }

# For foreground calls only: with & the pid would be a subshell's, so
# background runs call "$ZKR" directly and $! is zkr's own pid (the libtool
# wrapper execs the real binary).
zk() { "$ZKR" --hosts "$HOSTS" "$@"; }

track() {
  ALL_BG+=("$1")
  CASE_BG+=("$1")
}

now_ms() {
  local t=${EPOCHREALTIME//[!0-9]/} # microseconds, whatever the locale's decimal point
  echo $((10#$t / 1000))
}

# 1500 -> "1.500"
to_s() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

# await CMD BOUND_MS: evaluates CMD every 25 ms until it succeeds (0) or
# BOUND_MS ms have passed (1).
await() {
  local cmd=$1 deadline
  deadline=$(($(now_ms) + $2))
  while :; do
    eval "$cmd" && return 0
    [ "$(now_ms)" -ge "$deadline" ] && return 1
    sleep 0.025
  done
}

# 0 if process $1 no longer runs (absent, or a zombie nobody has reaped yet:
# kill -0 still succeeds on a zombie).
gone() {
  local st
  read -r st 2>/dev/null </proc/"$1"/stat || return 0
  st=${st##*) }
  [ "${st:0:1}" = Z ]
}

all_gone() {
  local p
  for p in "$@"; do gone "$p" || return 1; done
  return 0
}

descendants() {
  local c
  for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$c"
    descendants "$c"
  done
}

# Ends processes (and their descendants) that are still running: CONT+TERM,
# up to SETTLE_MS, then KILL. TERM lets a zkr forward it and release its node.
stop_pids() {
  local p victims=()
  for p in "$@"; do
    gone "$p" && continue
    victims+=("$p")
    mapfile -t -O ${#victims[@]} victims < <(descendants "$p")
  done
  [ ${#victims[@]} -eq 0 ] && return 0
  kill -CONT "${victims[@]}" 2>/dev/null
  kill -TERM "${victims[@]}" 2>/dev/null
  await 'all_gone "${victims[@]}"' "$SETTLE_MS" || kill -KILL "${victims[@]}" 2>/dev/null
  return 0
}

# Commands run by zkr lead their own process group and write their pid to
# DIR/*.pid: killing those groups also ends grandchildren they left behind
# (e.g. a `sleep &` that ignores SIGINT).
kill_groups() {
  local f pg
  for f in "$1"/*.pid; do
    [ -f "$f" ] || continue
    pg=$(cat "$f" 2>/dev/null)
    [[ $pg =~ ^[0-9]+$ ]] && kill -KILL -- "-$pg" 2>/dev/null
  done
  return 0
}

cleanup() {
  stop_pids "${ALL_BG[@]}"
  [ -d "$WORK" ] && for d in "$WORK"/*/; do kill_groups "$d"; done
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

fail() {
  REASON=$*
  return 1
}

# expect_rc WHAT WANT GOT
expect_rc() {
  [ "$3" = "$2" ] || fail "$1: exit status $3, expected $2"
}

# Number of participants at path $1 (-1 if status fails).
nparts() {
  local out
  out=$(zk status --json "$1" 2>/dev/null) || {
    echo -1
    return
  }
  grep -o '"role":' <<<"$out" | wc -l
}

no_participants() {
  local out
  out=$(zk status --json "$1" 2>/dev/null) && [[ $out == *'"participants":[]'* ]]
}

# Reads a --json answer on stdin: for each element of its list $1, the
# fields $2... joined by ":", the elements by spaces ("error: ..." if the
# answer is no JSON: the command failed).
json_join() {
  /usr/bin/python3 -c '
import json, sys
text = sys.stdin.read()
try:
    d = json.loads(text)
except ValueError:
    print("error: " + text.strip()); sys.exit(0)
print(" ".join(":".join(str(e[f]) for f in sys.argv[2:]) for e in d[sys.argv[1]]))' "$@"
}

# "role:mode:id ..." of the contenders at path $1, in queue order, from
# status --json (empty if there are none, "error: ..." if status fails).
contenders() {
  zk status --json "$1" 2>&1 | json_join participants role mode id
}

file_has_line() { [ -f "$1" ] && grep -qx -- "$2" "$1"; }

# await_start FILE PID WHAT: waits up to SETTLE_MS for FILE (written by the
# command of the zkr with PID, once zkr connected and got what it waits
# for); on failure says how that zkr ended.
await_start() {
  # shellcheck disable=SC2034 # file is read by the await below
  local file=$1 zkr_pid=$2
  await '[ -s "$file" ]' "$SETTLE_MS" && return 0
  if gone "$zkr_pid"; then
    fail "$3 did not start: zkr exited with status $(waitrc "$zkr_pid")"
  else
    fail "$3 did not start within $(to_s "$SETTLE_MS") s"
  fi
}

# waitrc PID: exit status of a finished background process.
waitrc() {
  wait "$1" 2>/dev/null
  echo $?
}

# One-letter process state (R, S, T, Z...) of pid $1, or X if it is gone.
proc_state() {
  local st
  read -r st 2>/dev/null </proc/"$1"/stat || {
    echo X
    return
  }
  st=${st##*) }
  echo "${st:0:1}"
}

stopped() { [ "$(proc_state "$1")" = T ]; }

lines() {
  if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi
}

# proxy_start: a fault proxy (tests/proxy_cli) in front of the server for
# the running case; sets PROXY_HOSTS. proxy_do stall|resume|drop waits
# until the proxy has done it.
proxy_start() {
  mkfifo "$dir/proxy.in" "$dir/proxy.out" || fail "mkfifo" || return 1
  "$PROXY_CLI" "$HOSTS" <"$dir/proxy.in" >"$dir/proxy.out" &
  track $!
  exec {PROXY_IN}>"$dir/proxy.in" {PROXY_OUT}<"$dir/proxy.out"
  read -r -t "$(to_s "$LOCAL_MS")" PROXY_HOSTS <&"$PROXY_OUT" || fail "the fault proxy did not start" || return 1
}

proxy_do() {
  local answer=""
  echo "$1" >&"$PROXY_IN"
  read -r -t "$(to_s "$LOCAL_MS")" answer <&"$PROXY_OUT"
  [ "$answer" = ok ] || fail "the proxy did not $1"
}

proxy_stop() {
  exec {PROXY_IN}>&- {PROXY_OUT}<&-
}

# term_start: an interactive bash on a new pseudo-terminal (tests/pty_run)
# for the running case; `keys TEXT` types TEXT (printf escapes: \x1a is
# Ctrl-Z), everything the terminal shows goes to DIR/screen.
term_start() {
  mkfifo "$dir/keys" || fail "mkfifo" || return 1
  env PS1='$ ' TERM=dumb "$PTY_RUN" bash --norc --noprofile -i <"$dir/keys" >"$dir/screen" 2>&1 &
  track $!
  exec {KEYS}>"$dir/keys"
}

# shellcheck disable=SC2059 # the argument is a printf format on purpose
keys() { printf "$1" >&"$KEYS"; }

term_stop() {
  keys 'exit\n'
  exec {KEYS}>&-
}

screen_has() { grep -q -- "$1" "$dir/screen" 2>/dev/null; }

# --- cases ---------------------------------------------------------------------

# 6 workers x 3 runs of zkr lock on one path: never two commands at once.
# Each run waits behind at most the 5 other workers; all 18 runs take turns.
test_cli_mutual_exclusion() {
  local i pids=() n bad
  for _ in 1 2 3 4 5 6; do
    (
      for i in 1 2 3; do
        "$ZKR" --hosts "$HOSTS" lock -w "$(to_s "$(queue_ms 5)")" "$P" -- sh -c \
          'set -o noclobber; : > "$1/marker" || exit 99; sleep 0.05; rm "$1/marker"; echo x >> "$1/count"' \
          sh "$dir"
        echo $? >>"$dir/rc"
      done
    ) &
    pids+=($!)
    track $!
  done
  await 'all_gone "${pids[@]}"' "$(queue_ms 17)" || fail "workers still running after $(to_s "$(queue_ms 17)") s" || return 1
  n=$(wc -l <"$dir/rc")
  [ "$n" -eq 18 ] || fail "$n exit statuses recorded, expected 18" || return 1
  bad=$(grep -vx 0 "$dir/rc" | sort | uniq -c | awk '{printf "%s x %s, ", $1, $2}')
  [ -z "$bad" ] || fail "non-zero exit statuses (count x status): ${bad}99 = two commands ran at once" || return 1
  n=0
  [ -f "$dir/count" ] && n=$(wc -l <"$dir/count")
  [ "$n" -eq 18 ] || fail "count has $n lines, expected 18"
}

# -n, -E, -w on a held lock; -w on a lock freed while waiting.
test_cli_nonblock_and_wait() {
  local zpid rc t0 el
  "$ZKR" --hosts "$HOSTS" lock "$P" -- sh -c 'echo $$ > "$1/holder.pid"; exec sleep 30' sh "$dir" &
  zpid=$!
  track $zpid
  await_start "$dir/holder.pid" $zpid "holder's command" || return 1

  t0=$(now_ms)
  zk lock -n "$P" -- touch "$dir/ran"
  rc=$? el=$(($(now_ms) - t0))
  expect_rc "-n on a held lock" 1 $rc || return 1
  # -n does not wait: it returns within LATE_MS, not when the holder ends.
  [ $el -lt $LATE_MS ] || fail "-n took $el ms, expected < $LATE_MS" || return 1

  zk lock -n -E 7 "$P" -- touch "$dir/ran"
  expect_rc "-n -E 7 on a held lock" 7 $? || return 1

  t0=$(now_ms)
  zk lock -w 0.5 "$P" -- touch "$dir/ran"
  rc=$? el=$(($(now_ms) - t0))
  expect_rc "-w 0.5 on a held lock" 1 $rc || return 1
  [ $el -ge 500 ] && [ $el -lt $((500 + LATE_MS)) ] ||
    fail "-w 0.5 gave up after $el ms, expected 500..$((500 + LATE_MS))" || return 1
  [ ! -e "$dir/ran" ] || fail "a command ran although the lock was held" || return 1

  kill -TERM $zpid
  await 'gone $zpid' "$SETTLE_MS" || fail "holder did not end on SIGTERM" || return 1
  expect_rc "holder ended by SIGTERM" 143 "$(waitrc $zpid)" || return 1

  # A holder that frees the lock after ~0.3 s; the waiter gets it.
  "$ZKR" --hosts "$HOSTS" lock "$P" -- sh -c 'echo $$ > "$1/short.pid"; sleep 0.3' sh "$dir" &
  zpid=$!
  track $zpid
  await_start "$dir/short.pid" $zpid "short holder" || return 1
  t0=$(now_ms)
  zk lock -w "$(to_s "$SETTLE_MS")" "$P" -- sh -c 'echo ran > "$1/ran"' sh "$dir"
  rc=$? el=$(($(now_ms) - t0))
  expect_rc "-w on a lock freed after 0.3 s" 0 $rc || return 1
  file_has_line "$dir/ran" ran || fail "-w: command did not run" || return 1
  await 'gone $zpid' "$SETTLE_MS" || fail "short holder did not end" || return 1
  expect_rc "short holder" 0 "$(waitrc $zpid)" || return 1
  info "  -w acquired after $el ms"
}

test_cli_exit_status() {
  zk lock "$P" -- sh -c 'exit 3'
  expect_rc "command exiting 3" 3 $? || return 1
  zk lock "$P" -- sh -c 'exit 0'
  expect_rc "command exiting 0" 0 $? || return 1
  zk lock "$P" -- sh -c 'kill -9 $$'
  expect_rc "command killed by SIGKILL" 137 $? || return 1
  zk lock "$P" -- sh -c 'kill -TERM $$'
  expect_rc "command killed by SIGTERM" 143 $? || return 1
  zk lock "$P" -- /nonexistent/command 2>/dev/null
  expect_rc "command not found" 127 $?
}

test_cli_environment() {
  local out lp node tok tok2 re
  out=$(zk lock "$P" -- sh -c 'printf "%s\n%s\n%s\n" "$ZKR_LOCK_PATH" "$ZKR_LOCK_NODE" "$ZKR_FENCING_TOKEN"')
  expect_rc "first run" 0 $? || return 1
  {
    read -r lp
    read -r node
    read -r tok
  } <<<"$out"
  [ "$lp" = "$P" ] || fail "ZKR_LOCK_PATH='$lp', expected '$P'" || return 1
  re="^$P/_c_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-lock-[0-9]{10}\$"
  [[ $node =~ $re ]] || fail "ZKR_LOCK_NODE='$node' is not $P/_c_<uuid>-lock-<10 digits>" || return 1
  [[ $tok =~ ^[0-9]+$ ]] || fail "ZKR_FENCING_TOKEN='$tok' is not an integer" || return 1
  tok2=$(zk lock "$P" -- sh -c 'echo "$ZKR_FENCING_TOKEN"')
  expect_rc "second run" 0 $? || return 1
  [[ $tok2 =~ ^[0-9]+$ ]] || fail "second ZKR_FENCING_TOKEN='$tok2' is not an integer" || return 1
  [ "$tok2" -gt "$tok" ] || fail "tokens did not increase: $tok then $tok2"
}

# A holder paused past its session: the lock goes to another, and when the
# holder resumes zkr stops its command and exits 75.
test_cli_lost_lock_kills_command() {
  local zpid cpid rc t0 el
  "$ZKR" --hosts "$HOSTS" --session-timeout $SHORT_SESSION_MS lock "$P" -- \
    sh -c 'echo $$ > "$1/child.pid"; exec sleep 60' sh "$dir" 2>"$dir/first.err" &
  zpid=$!
  track $zpid
  await_start "$dir/child.pid" $zpid "first holder's command" || return 1
  cpid=$(cat "$dir/child.pid")
  kill -STOP $zpid

  t0=$(now_ms)
  zk lock -w "$(to_s "$SETTLE_MS")" "$P" -- sh -c 'echo ran > "$1/second"' sh "$dir"
  rc=$? el=$(($(now_ms) - t0))
  kill -CONT $zpid
  expect_rc "second lock while the first holder is paused" 0 $rc || return 1
  file_has_line "$dir/second" ran || fail "second command did not run" || return 1

  t0=$(now_ms)
  await 'gone $zpid' "$SETTLE_MS" || fail "paused holder still running $(to_s "$SETTLE_MS") s after SIGCONT" || return 1
  expect_rc "resumed holder" 75 "$(waitrc $zpid)" || return 1
  info "  second acquired after $(to_s $el) s; resumed holder exited after $(to_s $(($(now_ms) - t0))) s"
  # zkr exits 75 only once its command is gone.
  await 'gone $cpid' "$LATE_MS" || fail "the first holder's command (pid $cpid) is still alive" || return 1
  # Paused past its session: the validity deadline passed, or (if the
  # client heard of the expiry first) the session expired.
  grep -Eq "lock $P lost \((validity deadline|session expired)" "$dir/first.err" ||
    fail "the lost message does not name the path and the cause: $(cat "$dir/first.err")"
}

# Signal $1 sent to zkr reaches the command (which exits 42 on it), zkr
# exits with the command's status and the lock is free afterwards. $2 runs
# zkr (e.g. "env --default-signal=INT").
signal_forward() {
  local sig=$1 zpid
  shift
  "$@" "$ZKR" --hosts "$HOSTS" lock "$P" -- \
    sh -c 'trap "exit 42" '"$sig"'; echo $$ > "$1/child.pid"; sleep 30 & wait' sh "$dir" &
  zpid=$!
  track $zpid
  await_start "$dir/child.pid" $zpid "command" || return 1
  kill -"$sig" $zpid
  await 'gone $zpid' "$SETTLE_MS" || fail "zkr still running $(to_s "$SETTLE_MS") s after SIG$sig" || return 1
  expect_rc "zkr sent SIG$sig" 42 "$(waitrc $zpid)" || return 1
  kill_groups "$dir" # the command's `sleep 30 &` (it ignores SIGINT)
  zk lock -n "$P" -- true
  expect_rc "lock -n after the holder ended" 0 $?
}

test_cli_signal_forward_term() { signal_forward TERM; }

# Bash starts background jobs with SIGINT ignored when job control is off,
# and the command would inherit that (a shell cannot trap a signal ignored at
# its start). `env --default-signal=INT` restores the default and execs zkr,
# so $! is still zkr's pid.
test_cli_signal_forward_int() { signal_forward INT env --default-signal=INT; }

test_cli_signal_forward_hup() { signal_forward HUP; }

# A signal to a zkr still waiting in the queue ends it at once (128+N) and
# removes its node; the holder is untouched.
test_cli_signal_while_waiting() {
  local hpid wpid
  "$ZKR" --hosts "$HOSTS" lock "$P" -- sh -c 'echo $$ > "$1/holder.pid"; exec sleep 30' sh "$dir" &
  hpid=$!
  track $hpid
  await_start "$dir/holder.pid" $hpid "holder's command" || return 1
  "$ZKR" --hosts "$HOSTS" lock "$P" -- touch "$dir/ran" &
  wpid=$!
  track $wpid
  await '[ "$(nparts "$P")" = 2 ]' "$SETTLE_MS" || fail "waiter did not queue" || return 1
  kill -TERM $wpid
  await 'gone $wpid' "$LATE_MS" || fail "waiting zkr still running $LATE_MS ms after SIGTERM" || return 1
  expect_rc "waiting zkr sent SIGTERM" 143 "$(waitrc $wpid)" || return 1
  [ ! -e "$dir/ran" ] || fail "the waiter's command ran" || return 1
  [ "$(nparts "$P")" = 1 ] || fail "$(nparts "$P") participants after the waiter left, expected 1" || return 1
  gone $hpid && fail "the holder ended too" && return 1
  kill -TERM $hpid
  await 'gone $hpid' "$SETTLE_MS" || fail "holder did not end on SIGTERM" || return 1
  expect_rc "holder ended by SIGTERM" 143 "$(waitrc $hpid)"
}

test_cli_sigkill_kills_command() {
  local zpid cpid
  "$ZKR" --hosts "$HOSTS" --session-timeout $SHORT_SESSION_MS lock "$P" -- \
    sh -c 'echo $$ > "$1/child.pid"; exec sleep 60' sh "$dir" &
  zpid=$!
  track $zpid
  await_start "$dir/child.pid" $zpid "command" || return 1
  cpid=$(cat "$dir/child.pid")
  kill -KILL $zpid
  # The command dies with zkr (the kernel sends it SIGKILL).
  await 'gone $cpid' "$LATE_MS" || fail "command (pid $cpid) still alive $LATE_MS ms after zkr got SIGKILL" || return 1
  waitrc $zpid >/dev/null
  # The dead session's node goes when the session expires.
  await 'no_participants "$P"' "$SETTLE_MS" || fail "node of the killed zkr still there after $(to_s "$SETTLE_MS") s"
}

test_cli_status_queue() {
  local hpid w1 w2 out rc
  "$ZKR" --hosts "$HOSTS" lock --id holder-$$ "$P" -- \
    sh -c 'echo $$ > "$1/holder.pid"; exec sleep 30' sh "$dir" &
  hpid=$!
  track $hpid
  await_start "$dir/holder.pid" $hpid "holder's command" || return 1
  "$ZKR" --hosts "$HOSTS" lock --id waiter1-$$ "$P" -- true &
  w1=$!
  track $w1
  await '[ "$(nparts "$P")" = 2 ]' "$SETTLE_MS" || fail "first waiter did not queue" || return 1
  "$ZKR" --hosts "$HOSTS" lock --id waiter2-$$ "$P" -- true &
  w2=$!
  track $w2
  await '[ "$(nparts "$P")" = 3 ]' "$SETTLE_MS" || fail "second waiter did not queue" || return 1

  out=$(zk status --json "$P")
  expect_rc "status --json" 0 $? || return 1
  out=$(/usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])
want = list(zip(["holder", "waiter", "waiter"], sys.argv[2:]))
got = [(p["role"], p["id"]) for p in d["participants"]]
if d["path"] != sys.argv[5]:
    print("path %r" % d["path"]); sys.exit(1)
if got != want:
    print("participants %r, expected %r" % (got, want)); sys.exit(1)
if [p["mode"] for p in d["participants"]] != ["write"] * 3:
    print("modes %r, expected write for a mutex" % [p["mode"] for p in d["participants"]]); sys.exit(1)
toks = [p["token"] for p in d["participants"]]
if not all(isinstance(t, int) for t in toks) or toks != sorted(toks):
    print("tokens %r not increasing integers" % toks); sys.exit(1)
' "$out" holder-$$ waiter1-$$ waiter2-$$ "$P" 2>&1)
  rc=$?
  [ $rc -eq 0 ] || fail "status --json: $out" || return 1

  out=$(zk status "$P")
  expect_rc "status" 0 $? || return 1
  [ "$(wc -l <<<"$out")" -eq 4 ] || fail "plain status printed $(wc -l <<<"$out") lines, expected header + 3" || return 1
  [[ $(sed -n 1p <<<"$out") == ROLE* ]] || fail "plain status header: $(sed -n 1p <<<"$out")" || return 1
  [[ $(sed -n 2p <<<"$out") =~ ^holder\ +write\ +holder-$$\  ]] &&
    [[ $(sed -n 3p <<<"$out") =~ ^waiter\ +write\ +waiter1-$$\  ]] &&
    [[ $(sed -n 4p <<<"$out") =~ ^waiter\ +write\ +waiter2-$$\  ]] || fail "plain status rows: $out" || return 1

  kill -TERM $hpid
  await 'all_gone $hpid $w1 $w2' "$SETTLE_MS" || fail "holder and waiters did not all finish" || return 1
  expect_rc "holder ended by SIGTERM" 143 "$(waitrc $hpid)" || return 1
  expect_rc "first waiter" 0 "$(waitrc $w1)" || return 1
  expect_rc "second waiter" 0 "$(waitrc $w2)"
}

# A command under -s that waits (up to $3 ms, polling every 25 ms or more)
# until $2 commands have written their marker in $1: it exits 0 only if they
# were all inside together, 9 if it waited in vain. The cases give it
# SETTLE_MS: the others come in with a handoff.
together_cmd='touch "$1/in.$$"; i=0
while [ "$(ls "$1" | grep -c "^in\.")" -lt "$2" ]; do
  i=$((i + 1)); [ $i -gt $(($3 / 25)) ] && exit 9; sleep 0.025
done
echo ok >> "$1/together"'

# Two zkr lock -s on one path run their commands at the same time.
test_cli_shared_together() {
  local a b
  "$ZKR" --hosts "$HOSTS" lock -s --id r1 "$P" -- sh -c "$together_cmd" sh "$dir" 2 "$SETTLE_MS" &
  a=$!
  track $a
  "$ZKR" --hosts "$HOSTS" lock --shared --id r2 "$P" -- sh -c "$together_cmd" sh "$dir" 2 "$SETTLE_MS" &
  b=$!
  track $b
  await 'all_gone $a $b' "$SETTLE_MS" || fail "the two -s commands did not finish within $(to_s "$SETTLE_MS") s" || return 1
  expect_rc "first -s (9: the other never came in)" 0 "$(waitrc $a)" || return 1
  expect_rc "second -s (9: the other never came in)" 0 "$(waitrc $b)" || return 1
  [ "$(lines "$dir/together")" -eq 2 ] || fail "$(lines "$dir/together") commands saw both inside, expected 2"
}

# -x is the write side of the read-write lock (Curator's __WRIT__ node,
# which Curator's readers see), a plain lock the mutex; among zkr commands
# each excludes the others.
test_cli_exclusive_is_write_side() {
  local w
  "$ZKR" --hosts "$HOSTS" lock -x "$P" -- sh -c 'echo "$ZKR_LOCK_NODE" > "$1/node"; exec sleep 30' sh "$dir" &
  w=$!
  track $w
  await_start "$dir/node" $w "writer's command" || return 1
  grep -q -- '-__WRIT__[0-9]*$' "$dir/node" || fail "-x holds $(cat "$dir/node"), not a __WRIT__ node" || return 1
  zk lock -n "$P" -- true
  expect_rc "plain lock -n while a -x holds" 1 $? || return 1
  zk lock -s -n "$P" -- true
  expect_rc "-s -n while a -x holds" 1 $? || return 1
  kill -TERM $w
  await 'gone $w' "$SETTLE_MS" || fail "the -x holder did not end on TERM" || return 1
  zk lock -n "$P" -- sh -c 'echo "$ZKR_LOCK_NODE" > "$1/node"' sh "$dir"
  expect_rc "plain lock -n once free" 0 $? || return 1
  grep -q -- '-lock-[0-9]*$' "$dir/node" || fail "a plain lock holds $(cat "$dir/node"), not a -lock- node"
}

# A -s holder keeps an exclusive zkr lock waiting (-n gives up); a reader
# that comes after a waiting writer queues behind it; status shows who
# holds in which mode.
test_cli_shared_blocks_exclusive() {
  local r x out
  "$ZKR" --hosts "$HOSTS" lock -s --id r1 "$P" -- sh -c 'echo $$ > "$1/r1.pid"; exec sleep 30' sh "$dir" &
  r=$!
  track $r
  await_start "$dir/r1.pid" $r "reader's command" || return 1

  zk lock -n "$P" -- touch "$dir/ran"
  expect_rc "-n (exclusive) while a -s holds" 1 $? || return 1
  zk lock -x -n -E 7 "$P" -- touch "$dir/ran"
  expect_rc "-x -n -E 7 while a -s holds" 7 $? || return 1

  "$ZKR" --hosts "$HOSTS" lock -w "$(to_s "$(queue_ms 1)")" --id w1 "$P" -- sh -c 'echo x > "$1/x.ran"' sh "$dir" &
  x=$!
  track $x
  await '[ "$(contenders "$P")" = "holder:read:r1 waiter:write:w1" ]' "$SETTLE_MS" ||
    fail "status: '$(contenders "$P")', expected holder:read:r1 waiter:write:w1" || return 1
  [ ! -e "$dir/x.ran" ] || fail "the exclusive command ran while a -s held" || return 1
  zk lock -s -n "$P" -- touch "$dir/ran"
  expect_rc "-s -n behind a waiting writer" 1 $? || return 1
  [ ! -e "$dir/ran" ] || fail "a command ran although it should not have" || return 1

  out=$(zk status "$P")
  [[ $(sed -n 2p <<<"$out") =~ ^holder\ +read\ +r1\  ]] &&
    [[ $(sed -n 3p <<<"$out") =~ ^waiter\ +write\ +w1\  ]] || fail "plain status rows: $out" || return 1

  kill -TERM $r
  await 'gone $x' "$SETTLE_MS" || fail "the exclusive waiter did not run after the reader left" || return 1
  expect_rc "exclusive waiter" 0 "$(waitrc $x)" || return 1
  file_has_line "$dir/x.ran" x || fail "the exclusive command did not run"
}

# An exclusive holder keeps -s waiting; -s -n gives up with 1 (or -E).
test_cli_exclusive_blocks_shared() {
  local h r1 r2
  "$ZKR" --hosts "$HOSTS" lock --id w1 "$P" -- sh -c 'echo $$ > "$1/w1.pid"; exec sleep 30' sh "$dir" &
  h=$!
  track $h
  await_start "$dir/w1.pid" $h "writer's command" || return 1

  zk lock -s -n "$P" -- touch "$dir/ran"
  expect_rc "-s -n while an exclusive holds" 1 $? || return 1
  zk lock -s -n -E 7 "$P" -- touch "$dir/ran"
  expect_rc "-s -n -E 7 while an exclusive holds" 7 $? || return 1
  zk lock -s -w 0.3 "$P" -- touch "$dir/ran"
  expect_rc "-s -w 0.3 while an exclusive holds" 1 $? || return 1

  # Two readers wait; once the writer is gone they run together.
  "$ZKR" --hosts "$HOSTS" lock -s -w "$(to_s "$(queue_ms 1)")" --id r1 "$P" -- sh -c "$together_cmd" sh "$dir" 2 "$SETTLE_MS" &
  r1=$!
  track $r1
  "$ZKR" --hosts "$HOSTS" lock -s -w "$(to_s "$(queue_ms 1)")" --id r2 "$P" -- sh -c "$together_cmd" sh "$dir" 2 "$SETTLE_MS" &
  r2=$!
  track $r2
  await '[ "$(nparts "$P")" = 3 ]' "$SETTLE_MS" || fail "the readers did not queue: $(contenders "$P")" || return 1
  [[ $(contenders "$P") =~ ^holder:write:w1\ waiter:read:r[12]\ waiter:read:r[12]$ ]] ||
    fail "status: '$(contenders "$P")', expected the writer holding, two readers waiting" || return 1
  [ ! -e "$dir/ran" ] && [ ! -e "$dir/together" ] || fail "a reader ran while the writer held" || return 1

  kill -TERM $h
  await 'all_gone $r1 $r2' "$SETTLE_MS" || fail "the readers did not finish after the writer left" || return 1
  expect_rc "first reader (9: not inside together)" 0 "$(waitrc $r1)" || return 1
  expect_rc "second reader (9: not inside together)" 0 "$(waitrc $r2)" || return 1
  [ ! -e "$dir/ran" ] || fail "a -n/-w reader ran while the writer held"
}

# A command under --leases that marks itself inside ($dir/in.ID), records
# how many were inside as it came in, and leaves when the case creates
# $dir/leave.ID (or after $3 ms, polling every 25 ms or more: exit 9). The
# case says leave after up to two of its own waits: it gives queue_ms 2.
lease_cmd='touch "$1/in.$2"; ls "$1" | grep -c "^in\." >> "$1/counts"; i=0
while [ ! -e "$1/leave.$2" ]; do
  i=$((i + 1)); [ $i -gt $(($3 / 25)) ] && exit 9; sleep 0.025
done
rm "$1/in.$2"'

inside() { find "$dir" -maxdepth 1 -name 'in.*' | wc -l; }

# --leases 2 with three commands: two inside at once, the third waits
# (status shows the limit and who holds) and runs once one has left.
test_cli_leases_limit() {
  local id pids=() first third out max
  for id in l1 l2 l3; do
    "$ZKR" --hosts "$HOSTS" lock --leases 2 --id $id "$P" -- sh -c "$lease_cmd" sh "$dir" $id "$(queue_ms 2)" &
    pids+=($!)
    track $!
  done
  await '[ "$(inside)" = 2 ] && [ "$(nparts "$P")" = 3 ]' "$SETTLE_MS" ||
    fail "expected 2 inside and 3 contenders, got $(inside) inside: $(contenders "$P")" || return 1
  [[ $(contenders "$P") =~ ^holder:lease:l[123]\ holder:lease:l[123]\ waiter:lease:l[123]$ ]] ||
    fail "status: '$(contenders "$P")', expected two lease holders and a waiter" || return 1
  out=$(zk status "$P")
  [ "$(sed -n 1p <<<"$out")" = "semaphore $P: limit 2, 2 held" ] || fail "status header: $out" || return 1
  zk status --json "$P" | grep -q '"limit":2,' || fail "status --json lacks \"limit\":2" || return 1
  third=$(contenders "$P" | sed 's/.*waiter:lease://')
  [ "$(inside)" = 2 ] && [ ! -e "$dir/in.$third" ] || fail "a third command ran beside two lease holders" || return 1

  first=$(find "$dir" -maxdepth 1 -name 'in.*' -printf '%f\n' | head -1)
  touch "$dir/leave.${first#in.}"
  await '[ -e "$dir/in.$third" ]' "$SETTLE_MS" || fail "the third ($third) did not run after ${first#in.} left" || return 1
  touch "$dir"/leave.l1 "$dir"/leave.l2 "$dir"/leave.l3
  await 'all_gone "${pids[@]}"' "$SETTLE_MS" || fail "the lease holders did not finish" || return 1
  for id in 0 1 2; do
    expect_rc "--leases 2 command l$((id + 1)) (9: never told to leave)" 0 "$(waitrc "${pids[$id]}")" || return 1
  done
  max=$(sort -n "$dir/counts" | tail -1)
  [ "$(lines "$dir/counts")" -eq 3 ] || fail "$(lines "$dir/counts") commands ran, expected 3" || return 1
  [ "$max" -le 2 ] || fail "inside counts on entry: $(tr '\n' ' ' <"$dir/counts"), one above the limit 2"
}

# --leases N that differs from the limit recorded at PATH: refused with
# the library's text, exit 64, the command not run; a -n try on a full
# semaphore gives up with 1.
test_cli_leases_mismatch() {
  local h
  "$ZKR" --hosts "$HOSTS" lock --leases 1 --id h "$P" -- sh -c 'echo $$ > "$1/h.pid"; exec sleep 30' sh "$dir" &
  h=$!
  track $h
  await_start "$dir/h.pid" $h "lease holder's command" || return 1
  zk lock --leases 3 "$P" -- touch "$dir/ran" 2>"$dir/err"
  expect_rc "--leases 3 on a semaphore of 1" 64 $? || return 1
  grep -qF "disagree on max_leases" "$dir/err" && grep -qF -- "--leases 3, but its path records 1" "$dir/err" ||
    fail "mismatch message: $(cat "$dir/err")" || return 1
  zk lock --leases 1 -n "$P" -- touch "$dir/ran"
  expect_rc "--leases 1 -n on a full semaphore" 1 $? || return 1
  zk lock --leases 1 -w 0.3 -E 5 "$P" -- touch "$dir/ran"
  expect_rc "--leases 1 -w 0.3 -E 5 on a full semaphore" 5 $? || return 1
  [ ! -e "$dir/ran" ] || fail "a command ran although refused"
}

test_cli_leader() {
  local zpid out rc
  "$ZKR" --hosts "$HOSTS" elect --id alpha "$P" -- sleep 30 &
  zpid=$!
  track $zpid
  await '[ "$(zk leader "$P" 2>/dev/null)" = alpha ] || gone $zpid' "$SETTLE_MS" || fail "zkr leader never printed alpha" || return 1
  gone $zpid && fail "zkr elect ended early, status $(waitrc $zpid)" && return 1
  out=$(zk leader "$P-empty" 2>/dev/null)
  rc=$?
  expect_rc "leader on an empty path" 1 $rc || return 1
  [ -z "$out" ] || fail "leader on an empty path printed '$out'" || return 1
  gone $zpid && fail "zkr elect ended while leading, status $(waitrc $zpid)" && return 1
  kill -TERM $zpid
  await 'gone $zpid' "$SETTLE_MS" || fail "elect did not end on SIGTERM" || return 1
  expect_rc "elect ended by SIGTERM" 143 "$(waitrc $zpid)" || return 1
  out=$(zk leader "$P" 2>/dev/null)
  expect_rc "leader after the only participant left" 1 $?
}

test_cli_elect_runs_only_leader() {
  local p1 p2 out
  local cmd='echo "$1" >> "$2/out"; echo $$ > "$2/$1.pid"; exec sleep 30'
  "$ZKR" --hosts "$HOSTS" --session-timeout $SHORT_SESSION_MS elect --id e1 "$P" -- sh -c "$cmd" sh e1 "$dir" &
  p1=$!
  track $p1
  await_start "$dir/e1.pid" $p1 "first participant's command" || return 1
  "$ZKR" --hosts "$HOSTS" --session-timeout $SHORT_SESSION_MS elect --id e2 "$P" -- sh -c "$cmd" sh e2 "$dir" &
  p2=$!
  track $p2
  await '[ "$(nparts "$P")" = 2 ]' "$SETTLE_MS" || fail "second participant did not join" || return 1
  sleep "$(to_s $LOOK_MS)" # the one fixed wait: give a non-leader time to (wrongly) start
  gone $p1 && fail "e1's zkr ended while leading, status $(waitrc $p1)" && return 1
  out=$(tr '\n' ' ' <"$dir/out")
  [ "$out" = "e1 " ] || fail "while e1 leads, out has: $out" || return 1
  [ "$(zk leader "$P" 2>/dev/null)" = e1 ] || fail "zkr leader does not print e1" || return 1

  kill -KILL $p1
  # A takeover: e1's session expires, e2 is told and starts its command.
  await 'file_has_line "$dir/out" e2 || gone $p2' "$(expired_by $SHORT_SESSION_MS)" ||
    fail "e2 did not take over within $(expired_by $SHORT_SESSION_MS) ms of e1's SIGKILL" || return 1
  file_has_line "$dir/out" e2 || fail "e2's zkr ended without running its command, status $(waitrc $p2)" || return 1
  out=$(tr '\n' ' ' <"$dir/out")
  [ "$out" = "e1 e2 " ] || fail "after failover, out has: $out" || return 1
  await 'gone "$(cat "$dir/e1.pid")"' "$LATE_MS" || fail "e1's command still alive after its zkr was killed" || return 1
  waitrc $p1 >/dev/null
  kill -TERM $p2
  await 'gone $p2' "$SETTLE_MS" || fail "e2 did not end on SIGTERM" || return 1
  expect_rc "e2 ended by SIGTERM" 143 "$(waitrc $p2)"
}

# ZKR_ELECTION_PATH and ZKR_EPOCH (the term's fencing token: a positive
# integer that grows from term to term). Repeated 20 times: each run also
# checks that a command started right after winning is not stopped as if
# leadership had been lost.
test_cli_elect_environment() {
  local i out path ep prev=0
  for i in $(seq 20); do
    out=$(zk elect --id "env-$i" "$P" -- sh -c 'echo "$ZKR_ELECTION_PATH" "$ZKR_EPOCH"')
    expect_rc "run $i of elect" 0 $? || return 1
    read -r path ep <<<"$out"
    [ "$path" = "$P" ] || fail "run $i: ZKR_ELECTION_PATH='$path', expected '$P'" || return 1
    [[ $ep =~ ^[0-9]+$ ]] && [ "$ep" -gt "$prev" ] ||
      fail "run $i: ZKR_EPOCH='$ep' after '$prev', expected a larger positive integer" || return 1
    prev=$ep
  done
}

test_cli_unreachable_hosts() {
  local rc t0 el ct=1000
  t0=$(now_ms)
  "$ZKR" --hosts 127.0.0.1:1 --connect-timeout $ct lock "$P" -- touch "$dir/ran" 2>"$dir/err"
  rc=$? el=$(($(now_ms) - t0))
  expect_rc "lock with an unreachable server" 69 $rc || return 1
  [ $el -lt $((ct + LATE_MS)) ] || fail "gave up after $el ms, expected < $((ct + LATE_MS))" || return 1
  [ -s "$dir/err" ] || fail "no message on stderr" || return 1
  [ ! -e "$dir/ran" ] || fail "command ran without a lock" || return 1
  "$ZKR" --hosts 127.0.0.1:1 --connect-timeout $ct status "$P" >/dev/null 2>&1
  expect_rc "status with an unreachable server" 69 $? || return 1
  "$ZKR" --hosts 'bad host' status "$P" 2>"$dir/err"
  expect_rc "--hosts 'bad host'" 64 $? || return 1
  [ -s "$dir/err" ] || fail "no message on stderr for a bad --hosts"
}

test_cli_usage_errors() {
  local args what
  # Each entry: a description, then the arguments (one string, word-split).
  while IFS='|' read -r what args; do
    [ -n "$what" ] || continue
    # shellcheck disable=SC2086 # the arguments are meant to be split
    zk $args >/dev/null 2>"$dir/err"
    expect_rc "$what (zkr $args)" 64 $? || return 1
    [ -s "$dir/err" ] || fail "$what: no message on stderr" || return 1
  done <<EOF
no subcommand|
unknown subcommand|frobnicate $P
lock without PATH|lock
lock without COMMAND|lock $P
lock with -- but no COMMAND|lock $P --
lock -w not a number|lock -w abc $P -- touch $dir/ran
lock -w negative|lock -w -1 $P -- touch $dir/ran
lock -E out of range|lock -E 300 $P -- touch $dir/ran
lock -E one of zkr's own codes|lock -E 75 $P -- touch $dir/ran
lock -w hexadecimal|lock -w 0x10 $P -- touch $dir/ran
lock --grace hexadecimal|lock --grace 0x1 $P -- touch $dir/ran
lock -w with an exponent|lock -w 1e1 $P -- touch $dir/ran
lock -c without its argument|lock $P -c
lock -c with an extra argument|lock $P -c touch\ $dir/ran extra
elect -c without its argument|elect $P -c
lock unknown option|lock --frobnicate $P -- touch $dir/ran
lock -s with -x|lock -s -x $P -- touch $dir/ran
lock --shared with --exclusive|lock --shared --exclusive $P -- touch $dir/ran
lock -s with --leases|lock -s --leases 2 $P -- touch $dir/ran
lock --leases with -x|lock --leases 2 -x $P -- touch $dir/ran
lock --leases 0|lock --leases 0 $P -- touch $dir/ran
lock --leases not a number|lock --leases two $P -- touch $dir/ran
elect without COMMAND|elect $P
status without PATH|status
status with two PATHs|status $P $P
leader without PATH|leader
bad --session-timeout|--session-timeout x status $P
EOF
  [ ! -e "$dir/ran" ] || fail "a command ran despite a usage error"
}

test_cli_help() {
  local args
  for args in "--help" "lock --help" "elect --help" "status --help" "leader --help"; do
    # shellcheck disable=SC2086
    zk $args >"$dir/out" 2>&1
    expect_rc "zkr $args" 0 $? || return 1
    grep -q '^usage: zkr' "$dir/out" || fail "zkr $args printed no usage: $(head -c 200 "$dir/out")" || return 1
  done
}

# ls of / and /zookeeper through the Debian package's zkCli (one JVM start).
zk_ls() {
  printf 'ls /\nls /zookeeper\nquit\n' |
    /usr/share/zookeeper/bin/zkCli.sh -server "$HOSTS" 2>/dev/null | grep '^\['
}

test_cli_bad_lock_path() {
  local before after
  before=$(zk_ls)
  [ -n "$before" ] || fail "zkCli.sh could not list the tree" || return 1
  zk lock relative -- touch "$dir/ran" 2>"$dir/err"
  expect_rc "lock relative" 64 $? || return 1
  [ -s "$dir/err" ] || fail "lock relative: no message on stderr" || return 1
  zk lock /zookeeper/x -- touch "$dir/ran" 2>"$dir/err"
  expect_rc "lock /zookeeper/x" 64 $? || return 1
  zk elect /zookeeper/x -- touch "$dir/ran" 2>"$dir/err"
  expect_rc "elect /zookeeper/x" 64 $? || return 1
  [ ! -e "$dir/ran" ] || fail "a command ran on a bad path" || return 1
  after=$(zk_ls)
  # Line 1 lists /, line 2 /zookeeper. Only the latter is compared whole:
  # / may change under us (container nodes of other cases come and go).
  [ "$(sed -n 2p <<<"$before")" = "$(sed -n 2p <<<"$after")" ] ||
    fail "/zookeeper changed: $(sed -n 2p <<<"$before") -> $(sed -n 2p <<<"$after")" || return 1
  [[ $(sed -n 1p <<<"$after") != *relative* ]] || fail "/relative was created"
}

# Issue 12, input 1: the holder's link stalls until the lock is lost; the
# command ignores SIGTERM and so does its background child. Both get
# SIGKILL when --grace ends, and only then does zkr exit 75.
test_cli_grace_kills_tree() {
  local zpid cpid bpid t0 el st=$SHORT_SESSION_MS grace_ms=2000 bound
  proxy_start || return 1
  "$ZKR" --hosts "$PROXY_HOSTS" --session-timeout $st -v lock --grace "$(to_s $grace_ms)" "$P" -- \
    sh -c 'trap "" TERM; echo $$ > "$1/child.pid"; sleep 600 & echo $! > "$1/bg.pid"; wait' sh "$dir" \
    2>"$dir/zkr.err" &
  zpid=$!
  track $zpid
  await_start "$dir/bg.pid" $zpid "command" || return 1
  cpid=$(cat "$dir/child.pid") bpid=$(cat "$dir/bg.pid")
  proxy_do stall || return 1
  t0=$(now_ms)
  # A kill after a grace: the silent session is lost by expired_by $st
  # (here on zkr's own clock), then the grace period runs.
  bound=$(($(expired_by $st) + grace_ms))
  await 'gone $zpid' $bound || fail "zkr still running $bound ms after the stall" || return 1
  el=$(($(now_ms) - t0))
  expect_rc "zkr whose link stalled" 75 "$(waitrc $zpid)" || return 1
  gone "$cpid" || fail "the command (pid $cpid) outlived zkr" || return 1
  gone "$bpid" || fail "the command's background child (pid $bpid) outlived zkr" || return 1
  [ $el -ge $grace_ms ] || fail "zkr exited $el ms after the stall, before the $grace_ms ms grace ended" || return 1
  grep -q "lock $P lost (validity deadline" "$dir/zkr.err" ||
    fail "lost message does not name the path and the validity deadline: $(cat "$dir/zkr.err")" || return 1
  # -v reports each session state change.
  grep -q "session 0x[0-9a-f]* lost (" "$dir/zkr.err" ||
    fail "-v did not report the session's loss: $(cat "$dir/zkr.err")" || return 1
  info "  exit 75 $(to_s $el) s after the stall (session $st ms, grace $grace_ms ms, bound $bound ms)"
  proxy_stop
}

# Issue 12, input 4: a background job of the command keeps the lock until it
# ends, even one that left the command's process group and session.
test_cli_background_job_holds_lock() {
  local zpid bpid
  "$ZKR" --hosts "$HOSTS" lock "$P" -- sh -c \
    'setsid sh -c '\''echo $$ > "$1/bg.pid"; while [ ! -e "$1/go" ]; do sleep 0.05; done; echo done > "$1/bg.done"'\'' sh "$1" &' \
    sh "$dir" &
  zpid=$!
  track $zpid
  await_start "$dir/bg.pid" $zpid "background job" || return 1
  bpid=$(cat "$dir/bg.pid")
  zk lock -n "$P" -- true
  expect_rc "lock -n while the first command's background job runs" 1 $? || return 1
  gone $zpid && fail "zkr ended while the background job (pid $bpid) runs, status $(waitrc $zpid)" && return 1
  touch "$dir/go"
  await 'gone $zpid' "$SETTLE_MS" || fail "zkr still running $(to_s "$SETTLE_MS") s after its background job was told to end" || return 1
  expect_rc "zkr after its background job ended" 0 "$(waitrc $zpid)" || return 1
  file_has_line "$dir/bg.done" "done" || fail "the background job did not finish" || return 1
  zk lock -n "$P" -- true
  expect_rc "lock -n after the tree ended" 0 $?
}

# SIGTERM to zkr while only a background job (ignoring SIGTERM) is left:
# it is killed when the grace period ends and zkr returns after that.
test_cli_signal_ends_background_job() {
  local zpid bpid t0 el grace_ms=500
  "$ZKR" --hosts "$HOSTS" lock --grace "$(to_s $grace_ms)" "$P" -- \
    sh -c '(trap "" TERM; exec sleep 600) & echo $! > "$1/bg.pid"' sh "$dir" &
  zpid=$!
  track $zpid
  await_start "$dir/bg.pid" $zpid "background job" || return 1
  bpid=$(cat "$dir/bg.pid")
  t0=$(now_ms)
  kill -TERM $zpid
  # A kill after a grace: the job gets SIGKILL when it ends, zkr returns.
  await 'gone $zpid' $((grace_ms + LATE_MS)) || fail "zkr still running $((grace_ms + LATE_MS)) ms after SIGTERM" || return 1
  el=$(($(now_ms) - t0))
  expect_rc "zkr sent SIGTERM after its command's first process ended" 0 "$(waitrc $zpid)" || return 1
  gone "$bpid" || fail "the background job (pid $bpid) ignoring SIGTERM outlived zkr" || return 1
  [ $el -ge $grace_ms ] || fail "zkr returned after $el ms, before the $grace_ms ms grace ended" || return 1
  zk lock -n "$P" -- true
  expect_rc "lock -n after zkr ended" 0 $?
}

# Issue 12, input 3: a command run from a terminal reads it (as under
# flock) instead of being stopped by SIGTTIN while zkr holds the lock.
test_cli_terminal_read() {
  local rpid
  printf 'hello\n' | "$PTY_RUN" "$ZKR" --hosts "$HOSTS" lock "$P" -- sh -c 'read x; echo "got $x"' >"$dir/screen" 2>&1 &
  rpid=$!
  track $rpid
  await 'gone $rpid' "$SETTLE_MS" || fail "zkr on a terminal still running after $(to_s "$SETTLE_MS") s: $(tr -d '\r' <"$dir/screen")" || return 1
  expect_rc "zkr on a terminal" 0 "$(waitrc $rpid)" || return 1
  screen_has 'got hello' || fail "the command did not read the terminal: $(tr -d '\r' <"$dir/screen")"
}

# Issue 12, input 2: Ctrl-Z in an interactive shell stops the command with
# zkr; while stopped past the session another client takes the lock; on
# `fg` the command is killed without running again and zkr exits 75.
# Second part: a Ctrl-Z short of the session timeout; `fg` continues the
# command, which owns the terminal again (Ctrl-C reaches it).
test_cli_ctrl_z() {
  local zpid cpid n1 st=$SHORT_SESSION_MS
  printf 'echo $$ > "$1/cmd.pid"\nwhile :; do echo x >> "$1/ticks"; sleep 0.05; done\n' >"$dir/loop.sh"
  term_start || return 1
  keys "$ZKR --hosts $HOSTS --session-timeout $st lock $P -- sh $dir/loop.sh $dir\n"
  await '[ "$(lines "$dir/ticks")" -gt 2 ]' "$SETTLE_MS" || fail "the command did not start: $(tr -d '\r' <"$dir/screen")" || return 1
  cpid=$(cat "$dir/cmd.pid")
  zpid=$(ps -o ppid= -p "$cpid" | tr -d ' ')
  keys '\x1a'
  await 'stopped $zpid && stopped $cpid' "$SETTLE_MS" || fail "after Ctrl-Z: zkr $(proc_state "$zpid"), command $(proc_state "$cpid"), expected both stopped (T)" || return 1
  n1=$(lines "$dir/ticks")
  zk lock -w "$(to_s "$SETTLE_MS")" "$P" -- true
  expect_rc "another client while the first is stopped past its session" 0 $? || return 1
  [ "$(lines "$dir/ticks")" = "$n1" ] || fail "the stopped command ran while another client held the lock" || return 1
  keys 'fg\n'
  keys 'echo rc=$?\n'
  await 'screen_has "rc=75"' "$SETTLE_MS" || fail "after fg: no rc=75: $(tr -d '\r' <"$dir/screen" | tail -5)" || return 1
  gone "$cpid" || fail "the command (pid $cpid) survived the lost lock" || return 1
  [ "$(lines "$dir/ticks")" = "$n1" ] || fail "the command ran again after fg although the lock was lost" || return 1

  rm -f "$dir/ticks" "$dir/cmd.pid"
  keys "$ZKR --hosts $HOSTS lock $P -- sh $dir/loop.sh $dir\n"
  await '[ "$(lines "$dir/ticks")" -gt 2 ]' "$SETTLE_MS" || fail "the second command did not start" || return 1
  cpid=$(cat "$dir/cmd.pid")
  zpid=$(ps -o ppid= -p "$cpid" | tr -d ' ')
  keys '\x1a'
  await 'stopped $zpid && stopped $cpid' "$SETTLE_MS" || fail "after the second Ctrl-Z: zkr $(proc_state "$zpid"), command $(proc_state "$cpid")" || return 1
  n1=$(lines "$dir/ticks")
  keys 'fg\n'
  await '[ "$(lines "$dir/ticks")" -gt $((n1 + 2)) ]' "$SETTLE_MS" || fail "the command did not continue after fg with the lock held" || return 1
  zk lock -n "$P" -- true
  expect_rc "lock -n while the continued command runs" 1 $? || return 1
  keys '\x03'
  keys 'echo rc=$?\n'
  await 'screen_has "rc=130"' "$SETTLE_MS" || fail "Ctrl-C did not end the command: $(tr -d '\r' <"$dir/screen" | tail -5)" || return 1
  term_stop
}

# Started in the background (`&`) of an interactive shell, a command that
# reads the terminal is stopped by SIGTTIN: zkr stops with it, so the shell
# shows the job stopped; `fg` gives the terminal to the command, which reads.
test_cli_background_then_fg() {
  local zpid
  term_start || return 1
  # set -b: the shell reports the job's stop as soon as it has seen it. Only
  # then is `fg` a resume: typed earlier, the shell takes the job for a
  # running one, sends no SIGCONT, and its next prompt reads our input.
  keys 'set -b\n'
  keys "$ZKR --hosts $HOSTS lock $P -- sh -c 'echo \$PPID > $dir/zkr.pid; read x; echo \"got \$x\"' &\n"
  await '[ -s "$dir/zkr.pid" ]' "$SETTLE_MS" || fail "the command did not start: $(tr -d '\r' <"$dir/screen")" || return 1
  zpid=$(cat "$dir/zkr.pid")
  await 'stopped $zpid' "$SETTLE_MS" || fail "zkr is $(proc_state "$zpid"), expected stopped with its command reading the terminal" || return 1
  await 'screen_has "Stopped"' "$SETTLE_MS" || fail "the shell did not report the job stopped: $(tr -d '\r' <"$dir/screen" | tail -5)" || return 1
  keys 'fg\n'
  keys 'hello\n'
  keys 'echo rc=$?\n'
  await 'screen_has "rc=0"' "$SETTLE_MS" || fail "after fg: $(tr -d '\r' <"$dir/screen" | tail -5)" || return 1
  screen_has 'got hello' || fail "the command did not read the terminal after fg: $(tr -d '\r' <"$dir/screen" | tail -5)" || return 1
  term_stop
}

# Deletes znodes through the Debian package's zkCli (one JVM start).
zk_delete() {
  local n
  {
    for n in "$@"; do printf 'delete %s\n' "$n"; done
    echo quit
  } |
    /usr/share/zookeeper/bin/zkCli.sh -server "$HOSTS" >/dev/null 2>&1
}

# The lost-lock message names the cause when another client deletes the
# node. The command ignores SIGTERM: with the default --grace (half the
# expiry margin: 0.1 s for the short session) it is killed at once, not
# after seconds of running beside the next holder.
# node_deleted_stops NOUN [LOCK OPTION]: the hold of zkr lock [OPTION] is
# lost when another client deletes its node; zkr names it as NOUN.
node_deleted_stops() {
  local noun=$1 zpid node t0 el
  shift
  "$ZKR" --hosts "$HOSTS" --session-timeout $SHORT_SESSION_MS lock "$@" "$P" -- \
    sh -c 'trap "" TERM; echo "$ZKR_LOCK_NODE" > "$1/node"; exec sleep 600' sh "$dir" 2>"$dir/zkr.err" &
  zpid=$!
  track $zpid
  await_start "$dir/node" $zpid "command" || return 1
  node=$(cat "$dir/node")
  zk_delete "$node"
  t0=$(now_ms)
  await 'gone $zpid' "$SETTLE_MS" || fail "zkr still running $(to_s "$SETTLE_MS") s after its node was deleted" || return 1
  el=$(($(now_ms) - t0))
  expect_rc "zkr whose node was deleted" 75 "$(waitrc $zpid)" || return 1
  grep -q "^zkr: $noun $P lost (node deleted" "$dir/zkr.err" || fail "lost message: $(cat "$dir/zkr.err")" || return 1
  # A kill after a grace: the delete is seen before zkCli exits (t0), so
  # the default grace + LATE_MS (600 ms), not seconds beside the next holder.
  [ $el -lt $(($(default_grace_ms $SHORT_SESSION_MS) + LATE_MS)) ] ||
    fail "a command ignoring SIGTERM ran $el ms after the deletion with the default --grace"
}

test_cli_lost_node_deleted() { node_deleted_stops lock; }

# The same supervision under -s: the read hold lost, the command stopped, 75.
test_cli_shared_lost_node_deleted() { node_deleted_stops "read lock" -s; }

# And under --leases: the lease lost, the command stopped, 75.
test_cli_lease_lost_node_deleted() { node_deleted_stops "lease of" --leases 2; }

# Another client deletes the node of a zkr still waiting in the queue: zkr
# says so and exits 75 without running the command.
test_cli_waiting_node_deleted() {
  local hpid wpid node
  "$ZKR" --hosts "$HOSTS" lock "$P" -- sh -c 'echo $$ > "$1/holder.pid"; exec sleep 600' sh "$dir" &
  hpid=$!
  track $hpid
  await_start "$dir/holder.pid" $hpid "holder's command" || return 1
  "$ZKR" --hosts "$HOSTS" lock "$P" -- touch "$dir/ran" 2>"$dir/waiter.err" &
  wpid=$!
  track $wpid
  await '[ "$(nparts "$P")" = 2 ]' "$SETTLE_MS" || fail "waiter did not queue" || return 1
  node=$(zk status --json "$P" | /usr/bin/python3 -c '
import json, sys
print(json.load(sys.stdin)["participants"][1]["node"])')
  [ -n "$node" ] || fail "no waiter node in zkr status" || return 1
  [[ $node == /* ]] || node=$P/$node
  zk_delete "$node"
  await 'gone $wpid' "$SETTLE_MS" || fail "waiter still running $(to_s "$SETTLE_MS") s after its node was deleted" || return 1
  expect_rc "waiter whose node was deleted" 75 "$(waitrc $wpid)" || return 1
  grep -q "lock $P: our waiting node was deleted by another client" "$dir/waiter.err" ||
    fail "message: $(cat "$dir/waiter.err")" || return 1
  [ ! -e "$dir/ran" ] || fail "the waiter's command ran" || return 1
  gone $hpid && fail "the holder ended too" && return 1
  return 0
}

# The lost-lock SIGTERM reaches each process once: a TERM trap that forks
# (date, sleep) runs once, not again for each walk of the growing tree.
test_cli_term_sent_once() {
  local zpid node
  "$ZKR" --hosts "$HOSTS" lock --grace 3 "$P" -- bash -c \
    'trap "date +%s.%N >> \"\$1/tlog\"; sleep 0.5; exit 0" TERM; echo "$ZKR_LOCK_NODE" > "$1/node"
     while :; do sleep 0.05; done' bash "$dir" 2>/dev/null &
  zpid=$!
  track $zpid
  await_start "$dir/node" $zpid "command" || return 1
  node=$(cat "$dir/node")
  zk_delete "$node"
  await 'gone $zpid' "$SETTLE_MS" || fail "zkr still running $(to_s "$SETTLE_MS") s after its node was deleted" || return 1
  expect_rc "zkr whose node was deleted" 75 "$(waitrc $zpid)" || return 1
  [ "$(lines "$dir/tlog")" = 1 ] || fail "the TERM trap ran $(lines "$dir/tlog") times, expected once"
}

# Every other signal that would end zkr (here USR1, ALRM, a realtime one)
# ends the command's whole tree first: nothing runs on without the lock,
# and zkr exits 128+N.
test_cli_fatal_signal_ends_tree() {
  local sig n zpid bpid
  for sig in USR1 ALRM RTMIN+1; do
    n=$(kill -l "$sig")
    rm -f "$dir/bg.pid"
    "$ZKR" --hosts "$HOSTS" lock "$P" -- \
      bash -c 'exec -a zkrtest-bg sleep 20 & echo $! > "$1/bg.pid"; wait' bash "$dir" &
    zpid=$!
    track $zpid
    await_start "$dir/bg.pid" $zpid "command" || return 1
    bpid=$(cat "$dir/bg.pid")
    kill -"$sig" $zpid
    await 'gone $zpid' "$SETTLE_MS" || fail "zkr still running $(to_s "$SETTLE_MS") s after SIG$sig" || return 1
    expect_rc "zkr sent SIG$sig" $((128 + n)) "$(waitrc $zpid)" || return 1
    gone "$bpid" || fail "after SIG$sig to zkr the command's sleep (pid $bpid) runs on" || return 1
    zk lock -n "$P" -- true
    expect_rc "lock -n after SIG$sig ended the holder" 0 $? || return 1
  done
}

# zkr -v whose stderr pipe lost its reader: SIGPIPE does not kill it.
test_cli_sigpipe_ignored() {
  local zpid rd
  mkfifo "$dir/err" || fail "mkfifo" || return 1
  exec {rd}<>"$dir/err" # a reader, so that zkr's open does not block
  "$ZKR" --hosts "$HOSTS" -v lock "$P" -- \
    sh -c 'echo $$ > "$1/cmd.pid"; while [ ! -e "$1/go" ]; do sleep 0.02; done' sh "$dir" 2>"$dir/err" {rd}<&- &
  zpid=$!
  track $zpid
  await_start "$dir/cmd.pid" $zpid "command" || return 1
  exec {rd}<&- # the last reader: zkr's next message ("released") meets a closed pipe
  touch "$dir/go"
  await 'gone $zpid' "$SETTLE_MS" || fail "zkr still running $(to_s "$SETTLE_MS") s after its command ended" || return 1
  expect_rc "zkr -v writing to a closed pipe" 0 "$(waitrc $zpid)"
}

test_cli_unresolvable_host() {
  zk_hosts_err() { "$ZKR" --hosts "$1" --connect-timeout 2000 "${@:2}" 2>"$dir/err"; }
  zk_hosts_err zk1.invalid:2181 lock "$P" -- touch "$dir/ran"
  expect_rc "lock with an unresolvable host" 69 $? || return 1
  grep -q 'cannot resolve zk1.invalid' "$dir/err" || fail "message: $(cat "$dir/err")" || return 1
  zk_hosts_err zk1.invalid:2181 status "$P"
  expect_rc "status with an unresolvable host" 69 $? || return 1
  [ ! -e "$dir/ran" ] || fail "a command ran"
}

# Digest credentials from a file ($ZKR_AUTH_FILE or --auth-file) and
# --acl creator: the same identity may queue, others get 77 naming the path.
# The library creates missing parents with the lock's ACL: an open holder of
# $P keeps $P (and /zkr-test) in place, open, while the case runs.
test_cli_acl_and_auth() {
  local opid zpid epid
  "$ZKR" --hosts "$HOSTS" lock "$P" -- sh -c 'echo $$ > "$1/open.pid"; exec sleep 600' sh "$dir" &
  opid=$!
  track $opid
  await_start "$dir/open.pid" $opid "open holder's command" || return 1
  printf 'alice:secret-%s\n' $$ >"$dir/alice"
  ZKR_AUTH_FILE=$dir/alice "$ZKR" --hosts "$HOSTS" --acl creator lock "$P/acl" -- \
    sh -c 'echo $$ > "$1/holder.pid"; exec sleep 600' sh "$dir" &
  zpid=$!
  track $zpid
  await_start "$dir/holder.pid" $zpid "holder's command" || return 1
  zk --auth-file "$dir/alice" lock -n "$P/acl" -- true
  expect_rc "lock -n by the same identity" 1 $? || return 1
  zk lock -n "$P/acl" -- touch "$dir/ran" 2>"$dir/err"
  expect_rc "lock -n without credentials under a creator-only parent" 77 $? || return 1
  grep -q "$P/acl.*not authorized" "$dir/err" || fail "message: $(cat "$dir/err")" || return 1
  ZKR_AUTH_FILE=$dir/alice "$ZKR" --hosts "$HOSTS" --acl creator elect "$P/acle" -- \
    sh -c 'echo $$ > "$1/leader.pid"; exec sleep 600' sh "$dir" &
  epid=$!
  track $epid
  await_start "$dir/leader.pid" $epid "leader's command" || return 1
  zk elect "$P/acle" -- touch "$dir/ran" 2>"$dir/err"
  expect_rc "elect without credentials under a creator-only parent" 77 $? || return 1
  grep -q "$P/acle.*not authorized" "$dir/err" || fail "message: $(cat "$dir/err")" || return 1
  [ ! -e "$dir/ran" ] || fail "a command ran without authorization" || return 1
  zk --acl creator lock -n "$P/x" -- true 2>"$dir/err"
  expect_rc "--acl creator without credentials" 64 $? || return 1
  zk --auth-file "$dir/missing" lock -n "$P/x" -- true 2>"$dir/err"
  expect_rc "--auth-file naming no file" 64 $?
}

# --hosts H/missing: the message names the chroot (lock and status).
test_cli_missing_chroot() {
  local what
  for what in lock status; do
    if [ $what = lock ]; then
      zk --hosts "$HOSTS/zkr-missing-$$" lock -n "$P" -- touch "$dir/ran" 2>"$dir/err"
    else
      zk --hosts "$HOSTS/zkr-missing-$$" status "$P" >/dev/null 2>"$dir/err"
    fi
    expect_rc "$what under a missing chroot" 69 $? || return 1
    grep -q "chroot /zkr-missing-$$" "$dir/err" || fail "$what: message does not name the chroot: $(cat "$dir/err")" || return 1
  done
  [ ! -e "$dir/ran" ] || fail "a command ran"
}

# Messages that name the rule or the value, and checks done before connecting.
test_cli_error_messages() {
  local t0 el
  check_msg() { # WHAT WANT_TEXT ARGS...
    local what=$1 want=$2
    shift 2
    "$ZKR" "$@" >/dev/null 2>"$dir/err"
    expect_rc "$what" 64 $? || return 1
    grep -qF -- "$want" "$dir/err" || fail "$what: message lacks '$want': $(head -1 "$dir/err")"
  }
  check_msg "relative path" "must be absolute" --hosts "$HOSTS" lock relative -- true || return 1
  check_msg "path with //" "empty component" --hosts "$HOSTS" lock /a//b -- true || return 1
  check_msg "path under /zookeeper" "server's own subtree" --hosts "$HOSTS" elect /zookeeper/x -- true || return 1
  check_msg "--hosts with a space" "space" --hosts 'bad host:1' status "$P" || return 1
  check_msg "--hosts without a port" "explicit :port" --hosts zk1 status "$P" || return 1
  check_msg "--hosts bad port" "1 to 65535" --hosts zk1:99999 status "$P" || return 1
  check_msg "unknown subcommand" "'foo'" foo || return 1
  check_msg "--session-timeout out of range" "100 to 3600000" --session-timeout 5 status "$P" || return 1
  check_msg "-w nan" "bad -w 'nan'" --hosts "$HOSTS" lock -w nan "$P" -- true || return 1
  check_msg "--grace nan" "bad --grace 'nan'" --hosts "$HOSTS" lock --grace nan "$P" -- true || return 1
  check_msg "-E 69" "zkr itself exits 69" --hosts "$HOSTS" lock -E 69 "$P" -- true || return 1
  check_msg "-w 0x10" "decimal seconds" --hosts "$HOSTS" lock -w 0x10 "$P" -- true || return 1
  check_msg "-c without its argument" "-c needs" --hosts "$HOSTS" lock "$P" -c || return 1
  check_msg "-n with -w" "-n and -w" --hosts "$HOSTS" lock -n -w 1 "$P" -- true || return 1
  check_msg "-x with -s" "-x (exclusive) and -s (shared)" --hosts "$HOSTS" lock -x -s "$P" -- true || return 1
  check_msg "--leases with -s" "--leases (a semaphore) excludes -s" --hosts "$HOSTS" lock -s --leases 2 "$P" -- true || return 1
  check_msg "--leases 0" "bad --leases '0'" --hosts "$HOSTS" lock --leases 0 "$P" -- true || return 1
  # A bad path is refused before connecting: no connect timeout to wait,
  # only LATE_MS.
  t0=$(now_ms)
  check_msg "bad path, server down" "must be absolute" --hosts 127.0.0.1:1 --connect-timeout 5000 lock rel -- true || return 1
  el=$(($(now_ms) - t0))
  [ $el -lt $LATE_MS ] || fail "a bad path took $el ms to refuse: it waited for the server"
}

# status --json stays valid JSON and the table shows no raw control
# characters whatever bytes an id holds.
test_cli_status_hostile_id() {
  local hpid out
  "$ZKR" --hosts "$HOSTS" lock --id $'bad\xff\x01"\\\x1b[31m\xc3\xa9' "$P" -- \
    sh -c 'echo $$ > "$1/holder.pid"; exec sleep 600' sh "$dir" &
  hpid=$!
  track $hpid
  await_start "$dir/holder.pid" $hpid "holder's command" || return 1
  zk status --json "$P" >"$dir/json"
  expect_rc "status --json" 0 $? || return 1
  out=$(/usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
print(d["participants"][0]["id"])' "$dir/json" 2>&1) || fail "status --json is not valid JSON: $out" || return 1
  [ "$out" = $'bad\xef\xbf\xbd\x01"\\\x1b[31m\xc3\xa9' ] || fail "id read back as '$out'" || return 1
  zk status "$P" >"$dir/table"
  expect_rc "status" 0 $? || return 1
  ! LC_ALL=C grep -q $'[\x01\x1b\xff]' "$dir/table" || fail "the table prints raw control bytes: $(cat -v "$dir/table")" || return 1
  grep -qF 'bad\xff\x01"\\x1b[31mé' "$dir/table" || fail "the table does not show the id escaped: $(cat -v "$dir/table")"
}

# -c 'shell command' after PATH (flock style) or before it.
test_cli_shell_command() {
  zk lock "$P" -c 'echo "$ZKR_LOCK_PATH" > "'"$dir"'/a"; exit 4'
  expect_rc "lock PATH -c" 4 $? || return 1
  file_has_line "$dir/a" "$P" || fail "lock PATH -c did not run the shell command" || return 1
  zk lock -c 'echo ok > "'"$dir"'/b"' "$P"
  expect_rc "lock -c CMD PATH" 0 $? || return 1
  file_has_line "$dir/b" ok || fail "lock -c CMD PATH did not run" || return 1
  zk elect "$P-e" -c 'echo "$ZKR_ELECTION_PATH" > "'"$dir"'/e"'
  expect_rc "elect PATH -c" 0 $? || return 1
  file_has_line "$dir/e" "$P-e" || fail "elect -c did not run"
}

# Global options after the subcommand; -V; -v reports the session.
test_cli_options_anywhere() {
  local want
  "$ZKR" lock --hosts "$HOSTS" "$P" -- true
  expect_rc "lock --hosts H" 0 $? || return 1
  "$ZKR" status --hosts "$HOSTS" --json "$P" >/dev/null
  expect_rc "status --hosts H" 0 $? || return 1
  "$ZKR" -V | grep -q '^zkr [0-9]' || fail "-V printed: $("$ZKR" -V)" || return 1
  "$ZKR" --version | grep -q '^zkr [0-9]' || fail "--version" || return 1
  "$ZKR" lock -v --hosts "$HOSTS" --session-timeout 100 "$P" -- true 2>"$dir/err"
  expect_rc "lock -v" 0 $? || return 1
  for want in 'connected to .*timeout' 'warning: the server raised the session timeout' \
    "holding $P as .*fencing token" "released $P"; do
    grep -q "$want" "$dir/err" || fail "-v did not print '$want': $(cat "$dir/err")" || return 1
  done
}

# leader --watch: a first line for the leader at start (empty, or a null
# leader with --json, when nobody leads), then one line per new leader;
# --json one object per line.
test_cli_leader_watch() {
  local wp jp e1 e2 out
  "$ZKR" --hosts "$HOSTS" leader --watch "$P" >"$dir/watch" &
  wp=$!
  track $wp
  "$ZKR" --hosts "$HOSTS" leader --watch --json "$P" >"$dir/watch.json" &
  jp=$!
  track $jp
  await '[ "$(lines "$dir/watch")" -ge 1 ] && [ "$(lines "$dir/watch.json")" -ge 1 ]' "$SETTLE_MS" ||
    fail "no first line while nobody leads: '$(cat "$dir/watch" "$dir/watch.json")'" || return 1
  [ "$(sed -n 1p "$dir/watch")" = "" ] || fail "first line '$(sed -n 1p "$dir/watch")', expected empty" || return 1
  [[ $(sed -n 1p "$dir/watch.json") == '{"leader":null,'* ]] ||
    fail "first --json line: $(sed -n 1p "$dir/watch.json")" || return 1
  "$ZKR" --hosts "$HOSTS" elect --id w1 "$P" -- sleep 600 &
  e1=$!
  track $e1
  await 'file_has_line "$dir/watch" w1' "$SETTLE_MS" || fail "watch did not print w1" || return 1
  "$ZKR" --hosts "$HOSTS" elect --id w2 "$P" -- sleep 600 &
  e2=$!
  track $e2
  await '[ "$(nparts "$P")" = 2 ]' "$SETTLE_MS" || fail "w2 did not join" || return 1
  kill -TERM $e1
  await 'file_has_line "$dir/watch" w2' "$SETTLE_MS" || fail "watch did not print w2: $(cat "$dir/watch")" || return 1
  out=$(grep -v '^$' "$dir/watch" | tr '\n' ' ')
  [ "$out" = "w1 w2 " ] || fail "watch printed: $out" || return 1
  await '[ "$(grep -c w2 "$dir/watch.json")" = 1 ]' "$SETTLE_MS" || fail "--json did not print w2" || return 1
  out=$(/usr/bin/python3 -c '
import json, sys
ids = [json.loads(l)["leader"] for l in open(sys.argv[1])]
print(" ".join(i for i in ids if i))' "$dir/watch.json" 2>&1)
  [ "$out" = "w1 w2" ] || fail "--json lines: $out" || return 1
  kill -TERM $wp $jp $e2
  await 'all_gone $wp $jp $e1 $e2' "$SETTLE_MS" || fail "watchers or participants did not end on SIGTERM" || return 1
  expect_rc "leader --watch ended by SIGTERM" 143 "$(waitrc $wp)"
}

# --- once ------------------------------------------------------------------------

# once_runs FILE: how many times a once command ran (one line per run).
once_runs() { lines "$1"; }

# "result:status:runner ..." of the key's runs, newest first, from
# `once status --json` ("error: ..." if it fails).
once_history() {
  zk once --key "$1" status --json 2>&1 | json_join runs result status runner
}

# Three machines fire one after another, each after the previous run ended
# (where `zkr lock -n` runs the job three times): the job runs once; the
# others exit 0 (or -E CODE) and say who ran it; the job gets its period
# and fencing token.
test_cli_once_staggered() {
  local rc out
  zk once --key "$P" --period 1d --id first -- \
    sh -c 'echo "$ZKR_ONCE_PERIOD $ZKR_FENCING_TOKEN" >> "$1/ran"' sh "$dir"
  expect_rc "first firing" 0 $? || return 1
  [[ $(cat "$dir/ran") =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9]+$ ]] ||
    fail "ZKR_ONCE_PERIOD and ZKR_FENCING_TOKEN: '$(cat "$dir/ran")'" || return 1
  zk once --key "$P" --period 1d --id second -- sh -c 'echo x >> "$1/ran"' sh "$dir" 2>"$dir/second.err"
  expect_rc "second firing" 0 $? || return 1
  zk once --key "$P" --period 1d --id third -E 3 -- sh -c 'echo x >> "$1/ran"' sh "$dir" 2>"$dir/third.err"
  rc=$?
  expect_rc "third firing with -E 3" 3 $rc || return 1
  [ "$(once_runs "$dir/ran")" = 1 ] || fail "the job ran $(once_runs "$dir/ran") times" || return 1
  grep -q "^zkr: once $P: period $(cut -d' ' -f1 "$dir/ran") already done by first at " "$dir/second.err" ||
    fail "second firing's message: $(cat "$dir/second.err")" || return 1
  out=$(once_history "$P")
  [ "$out" = "done:0:first" ] || fail "status: $out"
}

# Machines whose clocks are a day off either way (faketime) agree with the
# server's clock: the period is the server's, the job runs once.
test_cli_once_skewed_clocks() {
  local period
  command -v faketime >/dev/null || fail "faketime is not installed (scripts/install-deps.sh)" || return 1
  [ "$(faketime -f '+1d' date -u +%F)" != "$(date -u +%F)" ] || fail "faketime does not move the clock" || return 1
  faketime -f '+1d' "$ZKR" --hosts "$HOSTS" once --key "$P" --period 1d --id ahead -- \
    sh -c 'echo "$ZKR_ONCE_PERIOD" >> "$1/ran"; date -u +%F > "$1/machine-day"' sh "$dir"
  expect_rc "firing a day ahead" 0 $? || return 1
  period=$(cat "$dir/ran")
  # The job runs in zkr's (faked) time: the machine's day is not the period.
  [ "$(cat "$dir/machine-day")" != "$period" ] ||
    fail "the machine's clock was not a day ahead under faketime ($(cat "$dir/machine-day"))" || return 1
  [ "$period" = "$(date -u +%F)" ] || [ "$period" = "$(date -u -d '-1 min' +%F)" ] ||
    fail "the machine a day ahead ran period '$period', not the server's day $(date -u +%F)" || return 1
  faketime -f '-1d' "$ZKR" --hosts "$HOSTS" once --key "$P" --period 1d --id behind -- \
    sh -c 'echo "$ZKR_ONCE_PERIOD" >> "$1/ran"' sh "$dir" 2>/dev/null
  expect_rc "firing a day behind" 0 $? || return 1
  faketime -f '+30s' "$ZKR" --hosts "$HOSTS" once --key "$P" --period 1d --id skewed -- \
    sh -c 'echo "$ZKR_ONCE_PERIOD" >> "$1/ran"' sh "$dir" 2>/dev/null
  expect_rc "firing 30 s ahead" 0 $? || return 1
  [ "$(once_runs "$dir/ran")" = 1 ] || fail "the job ran $(once_runs "$dir/ran") times: $(cat "$dir/ran")"
}

# A failing run marks nothing: the next firing runs the job; status lists
# both runs, the success first.
test_cli_once_failure_not_marked() {
  local out
  zk once --key "$P" --period 1h --tz Europe/Berlin --id failing -- sh -c 'echo x >> "$1/ran"; exit 5' sh "$dir"
  expect_rc "failing run" 5 $? || return 1
  zk once --key "$P" --period 1h --tz Europe/Berlin --id fixed -- sh -c 'echo x >> "$1/ran"' sh "$dir"
  expect_rc "next firing" 0 $? || return 1
  zk once --key "$P" --period 1h --tz Europe/Berlin --id late -- sh -c 'echo x >> "$1/ran"' sh "$dir" 2>/dev/null
  expect_rc "firing after the success" 0 $? || return 1
  [ "$(once_runs "$dir/ran")" = 2 ] || fail "the job ran $(once_runs "$dir/ran") times, expected 2" || return 1
  out=$(once_history "$P")
  [ "$out" = "done:0:fixed failed:5:failing" ] || fail "status: $out" || return 1
  zk once --key "$P" status | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:00\+0[12]:00 +done +0 +fixed ' ||
    fail "status table: $(zk once --key "$P" status 2>&1)"
}

# A runner killed mid-run (zkr SIGKILLed: its command dies with it) leaves
# no marker: the next firing waits for the dead session's lock, then runs.
test_cli_once_killed_runner() {
  local zpid
  "$ZKR" --hosts "$HOSTS" --session-timeout $SHORT_SESSION_MS once --key "$P" --period 1d --id killed -- \
    sh -c 'echo $$ > "$1/child.pid"; exec sleep 60' sh "$dir" &
  zpid=$!
  track $zpid
  await_start "$dir/child.pid" $zpid "the first runner's command" || return 1
  kill -KILL $zpid
  waitrc $zpid >/dev/null
  zk once --key "$P" --period 1d -w "$(to_s "$SETTLE_MS")" --id next -- sh -c 'echo x >> "$1/ran"' sh "$dir"
  expect_rc "next firing" 0 $? || return 1
  [ "$(once_runs "$dir/ran")" = 1 ] || fail "the next firing did not run the job" || return 1
  [ "$(once_history "$P")" = "done:0:next" ] || fail "status: $(once_history "$P")"
}

# The lock lost during the run (its node deleted): the command is stopped
# as under zkr lock, zkr exits 75 and the period stays not done.
test_cli_once_lock_lost() {
  local zpid
  "$ZKR" --hosts "$HOSTS" once --key "$P" --period 1d --id lost -- \
    sh -c 'echo "$ZKR_LOCK_NODE" > "$1/node"; exec sleep 600' sh "$dir" 2>"$dir/zkr.err" &
  zpid=$!
  track $zpid
  await_start "$dir/node" $zpid "command" || return 1
  zk_delete "$(cat "$dir/node")"
  await 'gone $zpid' "$SETTLE_MS" || fail "zkr still running $(to_s "$SETTLE_MS") s after its lock node was deleted" || return 1
  expect_rc "runner whose lock was lost" 75 "$(waitrc $zpid)" || return 1
  grep -q "^zkr: once key $P lost (node deleted" "$dir/zkr.err" || fail "message: $(cat "$dir/zkr.err")" || return 1
  [ "$(once_history "$P")" = "" ] || fail "a record was written: $(once_history "$P")" || return 1
  zk once --key "$P" --period 1d -- sh -c 'echo x >> "$1/ran"' sh "$dir"
  expect_rc "next firing" 0 $? || return 1
  [ "$(once_runs "$dir/ran")" = 1 ] || fail "the next firing did not run the job"
}

# A firing while a run is in progress elsewhere waits for it (or gives up
# after -w: exit 1), then finds the period done and does not run the job.
test_cli_once_waits_for_run() {
  local hpid wpid el t0
  "$ZKR" --hosts "$HOSTS" once --key "$P" --period 1d --id first -- \
    sh -c 'echo $$ > "$1/holder.pid"; while [ ! -e "$1/go" ]; do sleep 0.02; done; echo x >> "$1/ran"' sh "$dir" &
  hpid=$!
  track $hpid
  await_start "$dir/holder.pid" $hpid "the first run" || return 1
  t0=$(now_ms)
  zk once --key "$P" --period 1d -w 0.3 -- sh -c 'echo x >> "$1/ran"' sh "$dir" 2>"$dir/gave-up.err"
  expect_rc "-w 0.3 during a run" 1 $? || return 1
  el=$(($(now_ms) - t0))
  [ $el -lt $((300 + LATE_MS)) ] || fail "-w 0.3 gave up after $el ms" || return 1
  grep -q "still holds the key" "$dir/gave-up.err" || fail "message: $(cat "$dir/gave-up.err")" || return 1
  "$ZKR" --hosts "$HOSTS" once --key "$P" --period 1d --id waiting -- sh -c 'echo x >> "$1/ran"' sh "$dir" \
    2>"$dir/waiting.err" &
  wpid=$!
  track $wpid
  await '[ "$(nparts "$P/lock")" = 2 ]' "$SETTLE_MS" || fail "the second firing did not queue" || return 1
  touch "$dir/go"
  await 'all_gone $hpid $wpid' "$SETTLE_MS" || fail "the runs did not end" || return 1
  expect_rc "first run" 0 "$(waitrc $hpid)" || return 1
  expect_rc "waiting firing" 0 "$(waitrc $wpid)" || return 1
  [ "$(once_runs "$dir/ran")" = 1 ] || fail "the job ran $(once_runs "$dir/ran") times" || return 1
  grep -q "already done by first at" "$dir/waiting.err" || fail "message: $(cat "$dir/waiting.err")"
}

# --keep N: each run deletes the records past the newest N. With 1 s
# periods, firing again and again runs once per second (each id once); four
# runs take about three seconds. The wait: those three periods (the
# --period of once_fire_1s, no session's) and a settle for the runs.
once_fire_1s() {
  zk once --key "$P" --period 1s --keep 2 -- sh -c 'echo "$ZKR_ONCE_PERIOD" >> "$1/ran"' sh "$dir" 2>/dev/null
  [ "$(once_runs "$dir/ran")" -ge 4 ]
}

test_cli_once_keep() {
  local out
  local bound=$((3 * 1000 + SETTLE_MS))
  await once_fire_1s $bound || fail "four 1 s periods did not run within $(to_s $bound) s: $(once_runs "$dir/ran") runs" || return 1
  [ "$(sort -u "$dir/ran" | wc -l)" = "$(once_runs "$dir/ran")" ] || fail "a period ran twice: $(cat "$dir/ran")" || return 1
  out=$(zk once --key "$P" status --json | /usr/bin/python3 -c '
import json, sys
print(" ".join(r["period"] for r in json.load(sys.stdin)["runs"]))')
  [ "$out" = "$(tail -n 2 "$dir/ran" | tac | paste -sd' ')" ] ||
    fail "status after --keep 2: '$out'; runs: $(paste -sd' ' "$dir/ran")"
}

# --keep 1 after a failed and a successful run of the period: the marker
# is kept (records ordered by time, the current period's never pruned), so
# a third firing does not run the command.
test_cli_once_keep1() {
  zk once --key "$P" --period 1d --keep 1 -- sh -c 'echo x >> "$1/ran"; exit 3' sh "$dir"
  expect_rc "failing run" 3 $? || return 1
  zk once --key "$P" --period 1d --keep 1 -- sh -c 'echo x >> "$1/ran"' sh "$dir"
  expect_rc "successful run" 0 $? || return 1
  zk once --key "$P" --period 1d --keep 1 -- sh -c 'echo x >> "$1/ran"' sh "$dir" 2>/dev/null
  expect_rc "third firing" 0 $? || return 1
  [ "$(once_runs "$dir/ran")" = 2 ] || fail "the job ran $(once_runs "$dir/ran") times, expected 2"
}

# A key records its period and zone on first use: a firing with another
# period or zone is refused (exit 64, naming both), without running.
test_cli_once_setting_mismatch() {
  local out
  zk once --key "$P" --period 1d --tz Europe/Berlin -- sh -c 'echo x >> "$1/ran"' sh "$dir"
  expect_rc "first firing" 0 $? || return 1
  out=$(zk once --key "$P" --period 1h --tz Europe/Berlin -- sh -c 'echo x >> "$1/ran"' sh "$dir" 2>&1)
  expect_rc "--period 1h on a 1d key" 64 $? || return 1
  [[ $out == *"--period 1h --tz Europe/Berlin, but the key records period 1d,tz Europe/Berlin"* ]] ||
    fail "message: $out" || return 1
  out=$(zk once --key "$P" --period 1d -- sh -c 'echo x >> "$1/ran"' sh "$dir" 2>&1)
  expect_rc "no --tz on a Europe/Berlin key" 64 $? || return 1
  [[ $out == *"--period 1d --tz UTC, but the key records period 1d,tz Europe/Berlin"* ]] ||
    fail "message: $out" || return 1
  [ "$(once_runs "$dir/ran")" = 1 ] || fail "the job ran $(once_runs "$dir/ran") times"
}

# A node at the period's marker name that is no zkr once record (here:
# garbage data) stops the firing with a message naming it (exit 70) rather
# than counting as done; status lists it as foreign, with no time.
test_cli_once_foreign_record() {
  local out day rc
  day=$(date -u +%F)
  zk once --key "$P" --period 1d -- true
  expect_rc "first firing" 0 $? || return 1
  zk_delete "$P/done/$day"
  printf 'create %s garbage\nquit\n' "$P/done/$day" |
    /usr/share/zookeeper/bin/zkCli.sh -server "$HOSTS" >/dev/null 2>&1
  out=$(zk once --key "$P" --period 1d -- sh -c 'echo x >> "$1/ran"' sh "$dir" 2>&1)
  rc=$?
  if [ "$(date -u +%F)" != "$day" ]; then info "the day turned during the case"; return 0; fi
  expect_rc "firing over a foreign node" 70 $rc || return 1
  [[ $out == *"$P/done/$day is not a zkr once marker"* ]] || fail "message: $out" || return 1
  [ ! -e "$dir/ran" ] || fail "the command ran" || return 1
  [ "$(once_history "$P")" = "foreign:None:None" ] || fail "status: $(once_history "$P")" || return 1
  zk once --key "$P" status | grep -Eq "^$day +foreign +- +- +- " || fail "status table: $(zk once --key "$P" status 2>&1)"
}

# status of a key nobody fired (a typo) says so and exits 1: an empty
# table would read as "no runs yet".
test_cli_once_status_no_key() {
  local out
  out=$(zk once --key "$P/nosuch" status 2>&1)
  expect_rc "status of a missing key" 1 $? || return 1
  echo "$out" | grep -q "no such key" || fail "message: $out" || return 1
  zk once --key "$P/k" --period 1d -- true || fail "a firing failed" || return 1
  zk once --key "$P/k" status >/dev/null
  expect_rc "status of a key that ran" 0 $? || return 1
}

# A command named status after -- is the command, not the status
# subcommand.
test_cli_once_command_named_status() {
  mkdir -p "$dir/bin"
  printf '#!/bin/sh\necho x >> "%s/ran"\n' "$dir" > "$dir/bin/status"
  chmod +x "$dir/bin/status"
  PATH="$dir/bin:$PATH" zk once --key "$P" --period 1d -- status >/dev/null
  expect_rc "-- status" 0 $? || return 1
  [ "$(once_runs "$dir/ran")" = 1 ] || fail "the command named status did not run" || return 1
  [ "$(once_history "$P" | cut -d: -f1,2)" = "done:0" ] || fail "status: $(once_history "$P")"
}

# A success that cannot be marked exits 75 whatever kept the marker out:
# here the connection stays down (the proxy stalls it) from the command's
# end until the lock's validity is over.
test_cli_once_unmarked_exits_75() {
  local zpid
  proxy_start || return 1
  "$ZKR" --hosts "$PROXY_HOSTS" --session-timeout "$SHORT_SESSION_MS" once --key "$P" --period 1d -- \
    sh -c 'echo $$ > "$1/started"; while [ ! -e "$1/go" ]; do sleep 0.02; done' sh "$dir" 2>"$dir/zkr.err" &
  zpid=$!
  track $zpid
  await_start "$dir/started" $zpid "command" || return 1
  proxy_do stall || return 1
  touch "$dir/go"
  await 'gone $zpid' "$SETTLE_MS" || fail "zkr still running $(to_s $SETTLE_MS) s after its command ended" || return 1
  expect_rc "a success whose marker could not be written" 75 "$(waitrc $zpid)" || return 1
  grep -q "could not be marked done" "$dir/zkr.err" || fail "message: $(cat "$dir/zkr.err")" || return 1
  grep -q "marked done (connection to ZooKeeper lost)" "$dir/zkr.err" || fail "cause not named: $(cat "$dir/zkr.err")" || return 1
  proxy_do resume || return 1
  proxy_stop
}

# Bad input is refused before connecting (exit 64), naming the rule.
test_cli_once_usage_errors() {
  local out
  out=$(zk once --key "$P" --period 7m -- true 2>&1)
  expect_rc "--period 7m" 64 $? || return 1
  [[ $out == *"bad --period '7m': a period in s, m or h must divide a day"* ]] || fail "message: $out" || return 1
  out=$(zk once --key "$P" --period 1d --tz Mars/Base -- true 2>&1)
  expect_rc "--tz Mars/Base" 64 $? || return 1
  [[ $out == *"bad --tz 'Mars/Base': no such time zone"* ]] || fail "message: $out" || return 1
  zk once --key "$P" --period 1y -- true 2>/dev/null
  expect_rc "--period 1y" 64 $? || return 1
  zk once --period 1d -- true 2>/dev/null
  expect_rc "no --key" 64 $? || return 1
  zk once --key "$P" -- true 2>/dev/null
  expect_rc "no --period" 64 $? || return 1
  zk once --key "$P" --period 1d 2>/dev/null
  expect_rc "no command" 64 $? || return 1
  zk once --key "$P" --period 1d -E 75 -- true 2>/dev/null
  expect_rc "-E 75" 64 $? || return 1
  zk once --key "$P" status --jsn 2>/dev/null
  expect_rc "status --jsn" 64 $? || return 1
  zk once --key "relative//x" --period 1d -- true 2>/dev/null
  expect_rc "a key with an empty component" 64 $? || return 1
  out=$(zk once --key "/$(printf 'k%.0s' $(seq 1000))" --period 1d -- true 2>&1)
  expect_rc "a key whose lock path would pass 1024 bytes" 64 $? || return 1
  [[ $out == *"bad --key: its path is 1001 bytes; at most 944"* ]] || fail "message: $out" || return 1
  [[ "$(once_history "$P")" == *"no such key"* ]] || fail "a usage error left a key: $(once_history "$P")"
}

# --- barriers ------------------------------------------------------------------

# "N" children of path $1, or "none" if it does not exist (barrier nodes are
# no contenders: `zkr status` does not list them).
znode_kids() {
  /usr/bin/python3 - "$HOSTS" "$1" "$SETTLE_MS" <<'PY' 2>/dev/null
import sys
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1])
zk.start(timeout=int(sys.argv[3]) / 1000)
try:
    print(len(zk.get_children(sys.argv[2])) if zk.exists(sys.argv[2]) else "none")
finally:
    zk.stop()
PY
}

# barrier set / wait / remove: wait returns 0 once removed, -w gives up
# with 1 (or -E CODE) while set; nothing stays behind.
test_cli_barrier_wait() {
  local wpid rc t0 el out
  zk barrier set "$P"
  expect_rc "barrier set" 0 $? || return 1
  zk barrier set "$P"
  expect_rc "barrier set (set already)" 0 $? || return 1
  t0=$(now_ms)
  zk barrier wait -w 0.3 "$P"
  rc=$? el=$(($(now_ms) - t0))
  expect_rc "barrier wait -w 0.3 while set" 1 $rc || return 1
  [ $el -ge 300 ] && [ $el -lt $((300 + LATE_MS)) ] || fail "wait -w 0.3 took $el ms" || return 1
  zk barrier -w 0.1 -E 3 wait "$P"
  expect_rc "barrier -w 0.1 -E 3 wait" 3 $? || return 1
  "$ZKR" --hosts "$HOSTS" barrier wait "$P" &
  wpid=$!
  track $wpid
  sleep "$(to_s $LOOK_MS)" # the one fixed wait: give the waiter time to (wrongly) return
  gone $wpid && fail "wait returned while the barrier was set, status $(waitrc $wpid)" && return 1
  zk barrier remove "$P"
  expect_rc "barrier remove" 0 $? || return 1
  # The waiter's watch fires on the remove: it returns within LATE_MS.
  await 'gone $wpid' "$LATE_MS" || fail "wait did not return within $LATE_MS ms of the remove" || return 1
  expect_rc "barrier wait after remove" 0 "$(waitrc $wpid)" || return 1
  zk barrier remove "$P"
  expect_rc "barrier remove (not set)" 0 $? || return 1
  zk barrier wait "$P"
  expect_rc "barrier wait (not set)" 0 $? || return 1
  [ "$(znode_kids "$P")" = none ] || fail "barrier node still there: $(znode_kids "$P")" || return 1
  # A node with children is no barrier of ours: named, a usage error (a
  # newcomer got 70, "unexpected ZooKeeper error").
  zk barrier set "$P"
  printf 'create %s x\nquit\n' "$P/child" | /usr/share/zookeeper/bin/zkCli.sh -server "$HOSTS" >/dev/null 2>&1
  out=$(zk barrier remove "$P" 2>&1)
  expect_rc "barrier remove of a node with children" 64 $? || return 1
  [[ $out == *"has children"* ]] || fail "message: $out" || return 1
  zk_delete "$P/child" "$P"
}

# barrier --count 3: no command runs before the third participant came;
# then each runs, and no zkr returns before the slowest command ended.
test_cli_barrier_count() {
  local i pids=() last_end=0 first_exit="" t
  for i in 1 2 3; do
    (
      "$ZKR" --hosts "$HOSTS" barrier --count 3 -w "$(to_s "$(queue_ms 2)")" "$P" -- sh -c \
        'echo run >> "$1/ran"; sleep "$2"; date +%s%3N > "$1/end.$3"' sh "$dir" "0.$((i * 2))" $i
      echo $? >"$dir/rc.$i"
      date +%s%3N >"$dir/exit.$i"
    ) &
    pids+=($!)
    track $!
    if [ $i -lt 3 ]; then
      await '[ "$(znode_kids "$P")" = '$i' ]' "$SETTLE_MS" || fail "participant $i did not enter" || return 1
    fi
  done
  [ "$(lines "$dir/ran")" -eq 0 ] || fail "a command ran before the third participant came" || return 1
  await 'all_gone "${pids[@]}"' "$SETTLE_MS" || fail "participants still running after $(to_s "$SETTLE_MS") s" || return 1
  [ "$(lines "$dir/ran")" -eq 3 ] || fail "$(lines "$dir/ran") commands ran, expected 3" || return 1
  for i in 1 2 3; do
    expect_rc "participant $i" 0 "$(cat "$dir/rc.$i")" || return 1
    t=$(cat "$dir/end.$i")
    [ "$t" -gt "$last_end" ] && last_end=$t
    t=$(cat "$dir/exit.$i")
    [ -z "$first_exit" ] || [ "$t" -lt "$first_exit" ] && first_exit=$t
  done
  [ "$first_exit" -ge "$last_end" ] || fail "a zkr returned $((last_end - first_exit)) ms before the last command ended" || return 1
  [ "$(znode_kids "$P")" = 0 ] || [ "$(znode_kids "$P")" = none ] || fail "nodes left: $(znode_kids "$P")"
}

# A participant SIGKILLed before all came: the other exits 75 (broken) once
# the dead one's session has expired, without running its command.
test_cli_barrier_member_killed() {
  local p1 p2 t0 el
  "$ZKR" --hosts "$HOSTS" --session-timeout $SHORT_SESSION_MS barrier --count 3 "$P" -- touch "$dir/ran1" &
  p1=$!
  track $p1
  await '[ "$(znode_kids "$P")" = 1 ]' "$SETTLE_MS" || fail "first participant did not enter" || return 1
  "$ZKR" --hosts "$HOSTS" --session-timeout $SHORT_SESSION_MS barrier --count 3 -w "$(to_s "$(queue_ms 2)")" "$P" -- \
    touch "$dir/ran2" &
  p2=$!
  track $p2
  await '[ "$(znode_kids "$P")" = 2 ]' "$SETTLE_MS" || fail "second participant did not enter" || return 1
  kill -KILL $p1
  t0=$(now_ms)
  await 'gone $p2' "$SETTLE_MS" || fail "the survivor still waits $(to_s "$SETTLE_MS") s after the other was killed" || return 1
  el=$(($(now_ms) - t0))
  expect_rc "survivor of a broken barrier" 75 "$(waitrc $p2)" || return 1
  [ $el -lt "$(expired_by $SHORT_SESSION_MS)" ] ||
    fail "the survivor took $el ms (session timeout $SHORT_SESSION_MS ms, bound $(expired_by $SHORT_SESSION_MS) ms)" || return 1
  grep -q "barrier is broken" "$dir/stderr" || fail "no 'barrier is broken' message" || return 1
  [ ! -e "$dir/ran1" ] && [ ! -e "$dir/ran2" ] || fail "a command ran" || return 1
  waitrc $p1 >/dev/null
  await '[ "$(znode_kids "$P")" = 0 ]' "$SETTLE_MS" || fail "nodes left: $(znode_kids "$P")"
}

test_cli_barrier_usage() {
  local args
  for args in "" "--count 0 $P -- true" "--count x $P -- true" "set" "set a/b" "--count 2 set $P" \
    "wait -c true $P" "set -w 1 $P" "--count 2 $P" "frobnicate $P"; do
    # shellcheck disable=SC2086 # split on purpose
    zk barrier $args 2>/dev/null
    expect_rc "barrier $args" 64 $? || return 1
  done
  zk barrier --help | grep -q "count N" || fail "barrier --help" || return 1
  [ "$(znode_kids "$P")" = none ] || fail "a usage error created $P"
}

# --- runner ----------------------------------------------------------------------

PASSED=0
FAILED=0

run_case() {
  local name=$1 t0 ok=1
  P=$BASE-$name
  dir=$WORK/$name
  mkdir -p "$dir"
  REASON=""
  CASE_BG=()
  t0=$(now_ms)
  "test_cli_$name" 2>"$dir/stderr" || ok=0
  [ $ok -eq 1 ] || [ -n "$REASON" ] || REASON="failed (no reason given)"
  # Whatever the outcome, end what the case started before the next one.
  stop_pids "${CASE_BG[@]}"
  kill_groups "$dir"
  if ! await 'no_participants "$P"' "$SETTLE_MS"; then
    [ $ok -eq 1 ] && REASON="participants left behind at $P: $(zk status "$P" 2>&1 | tail -n +2 | tr '\n' ' ')"
    ok=0
  fi
  if [ $ok -eq 1 ]; then
    echo "PASS: $name"
    PASSED=$((PASSED + 1))
  else
    echo "FAIL: $name: $REASON"
    FAILED=$((FAILED + 1))
    sed 's/^/#   stderr: /' "$dir/stderr" >&3
  fi
  info "  $name: $(to_s $(($(now_ms) - t0))) s"
}

CASES=(
  mutual_exclusion
  nonblock_and_wait
  exit_status
  environment
  lost_lock_kills_command
  signal_forward_term
  signal_forward_int
  signal_forward_hup
  signal_while_waiting
  sigkill_kills_command
  status_queue
  shared_together
  exclusive_is_write_side
  shared_blocks_exclusive
  exclusive_blocks_shared
  leases_limit
  leases_mismatch
  leader
  elect_runs_only_leader
  elect_environment
  unreachable_hosts
  usage_errors
  help
  bad_lock_path
  grace_kills_tree
  background_job_holds_lock
  signal_ends_background_job
  terminal_read
  ctrl_z
  background_then_fg
  lost_node_deleted
  shared_lost_node_deleted
  lease_lost_node_deleted
  waiting_node_deleted
  term_sent_once
  fatal_signal_ends_tree
  sigpipe_ignored
  unresolvable_host
  acl_and_auth
  missing_chroot
  error_messages
  status_hostile_id
  shell_command
  options_anywhere
  leader_watch
  once_staggered
  once_skewed_clocks
  once_failure_not_marked
  once_killed_runner
  once_lock_lost
  once_waits_for_run
  once_keep
  once_keep1
  once_setting_mismatch
  once_foreign_record
  once_command_named_status
  once_status_no_key
  once_unmarked_exits_75
  once_usage_errors
  barrier_wait
  barrier_count
  barrier_member_killed
  barrier_usage
)
# Arguments, if any, name the cases to run (e.g. `test_cli.sh leader help`).
[ $# -gt 0 ] && CASES=("$@")
T_START=$(now_ms)
for c in "${CASES[@]}"; do
  run_case "$c"
done
info "total: $(to_s $(($(now_ms) - T_START))) s against $HOSTS"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
