#!/usr/bin/env bash
# Interoperability tests: zkr (C), Curator (Java) and Kazoo (Python)
# processes share one recipe on one path of a real ZooKeeper.
#
#   ZKR_TEST_HOSTS=127.0.0.1:PORT tests/test_interop.sh [CASE...]   (normally via tests/with-zk.sh)
#
# The peers, in tests/interop/, take one command line and follow one loop
# (read the header of zkr_peer.c): acquire, claim a marker file with
# O_CREAT|O_EXCL (fails if another peer of any language is inside), hold,
# log "ENTER_NS EXIT_NS KIND NAME SEQ" (CLOCK_MONOTONIC in all three
# languages), release. Each case starts its peers, waits until all are
# connected (NAME.ready), starts them together (go), waits for them to end,
# and checks: every peer exited 0 after all its iterations with no overlap
# seen at its markers; no two logged holds overlap (a sweep over all logs);
# and the recipe's order across languages (for the lock: holds granted in
# the order of their nodes' sequence numbers; for the election: leadership
# alternates while both participate, each hand-over within a session
# timeout).
#
# Missing javac, java, a Curator jar, /usr/bin/python3 with kazoo, or a
# kazoo without extra_lock_patterns is a failure with the reason, never a
# skip (scripts/install-deps.sh installs them all). Sources are read from
# $srcdir (a VPATH build); everything written goes to a mktemp -d folder.
#
# Each case is a function test_interop_<behaviour>; it prints "PASS: name"
# or "FAIL: name: reason"; the last line is "N passed, M failed".
set -u

SRC=${srcdir:-$(dirname "$0")/..}/tests/interop
ZKR_PEER=${top_builddir:-.}/tests/interop/zkr_peer
ZKR=${top_builddir:-.}/tools/zkr
HOSTS=${ZKR_TEST_HOSTS:-}
BASE=/zkr-test/interop-$$
PY=/usr/bin/python3 # Debian's python, where python3-kazoo lives (a pyenv python3 on PATH lacks it)
JARS=${JAR_DIR:-/usr/share/java}

# Bounds, all from the peers' session timeout: a peer that makes no progress
# for STALL_MS, or waits longer than ACQUIRE_MS for one acquisition, is
# stuck; a hand-over slower than SESSION_MS is not a prompt one. A JVM
# starts in about a second; STARTUP_S covers a loaded 2-CPU machine (the
# peers wait twice ACQUIRE_MS for the go, so the driver's message comes first).
SESSION_MS=2000
ACQUIRE_MS=$((5 * SESSION_MS))
STALL_MS=$((5 * SESSION_MS))
STARTUP_S=$((ACQUIRE_MS / 1000))

exec 3>&2
info() { echo "# $*" >&3; }

setup_fail() {
  echo "FAIL: setup: $*"
  echo "0 passed, 1 failed"
  exit 1
}

[ -n "$HOSTS" ] || setup_fail "ZKR_TEST_HOSTS is not set (run through tests/with-zk.sh)"
if [ ! -x "$ZKR_PEER" ]; then
  make -s -C "${top_builddir:-.}" tests/interop/zkr_peer >/dev/null 2>&1
fi
[ -x "$ZKR_PEER" ] || setup_fail "$ZKR_PEER missing (make tests/interop/zkr_peer)"
command -v javac >/dev/null || setup_fail "javac not found (scripts/install-deps.sh: default-jdk-headless)"
command -v java >/dev/null || setup_fail "java not found (scripts/install-deps.sh: default-jdk-headless)"
# slf4j-nop first: SLF4J binds it (no "no binding" warning on stderr). The
# client's default NIO socket needs neither netty nor metrics.
CP=""
for j in slf4j-nop slf4j-api curator-recipes curator-framework curator-client zookeeper zookeeper-jute guava; do
  [ -f "$JARS/$j.jar" ] || setup_fail "$JARS/$j.jar missing (scripts/install-deps.sh: libcurator-recipes-java)"
  CP=$CP:$JARS/$j.jar
done
for j in failureaccess audience-annotations; do
  [ -f "$JARS/$j.jar" ] && CP=$CP:$JARS/$j.jar
done
[ -x "$PY" ] || setup_fail "$PY not found (scripts/install-deps.sh: python3)"
"$PY" -c 'import kazoo' 2>/dev/null || setup_fail "$PY cannot import kazoo (scripts/install-deps.sh: python3-kazoo)"
"$PY" -c 'import inspect, kazoo.recipe.lock as l; assert "extra_lock_patterns" in inspect.signature(l.Lock).parameters' \
  2>/dev/null || setup_fail "the installed kazoo's Lock has no extra_lock_patterns (needs kazoo 2.7.1 or later)"
{ [ -f "$SRC/InteropPeer.java" ] && [ -f "$SRC/kazoo_peer.py" ]; } || setup_fail "peer sources not found in $SRC"
unset ZKR_HOSTS

WORK=$(mktemp -d "${TMPDIR:-/tmp}/zkr-interop.XXXXXX") || exit 1
mkdir "$WORK/classes" || exit 1
now_ms() {
  local t=${EPOCHREALTIME//[!0-9]/} # microseconds, whatever the locale's decimal point
  echo $((10#$t / 1000))
}
t0=$(now_ms)
javac -nowarn -d "$WORK/classes" -cp "${CP#:}" "$SRC/InteropPeer.java" 2>"$WORK/javac.err" ||
  setup_fail "javac InteropPeer.java failed: $(head -5 "$WORK/javac.err")"
JAVA=(java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xmx128m -cp "$WORK/classes$CP" InteropPeer)
info "javac: $(($(now_ms) - t0)) ms"

# --- helpers -----------------------------------------------------------------

ALL_BG=() # every peer pid started by this script
PIDS=()   # NAME=PID of the running case's peers
P=""      # the running case's ZooKeeper path
dir=""    # the running case's scratch directory (markers, logs)
REASON=""

fail() {
  REASON=$*
  return 1
}

gone() {
  local st
  read -r st 2>/dev/null </proc/"$1"/stat || return 0
  st=${st##*) }
  [ "${st:0:1}" = Z ]
}

cleanup() {
  local p
  for p in "${ALL_BG[@]}"; do gone "$p" || kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_peer LANG MODE NAME [ARGS...]: LANG is c, java or python; the peer
# runs on $P with the case's defaults (ARGS may override them).
start_peer() {
  local lang=$1 mode=$2 name=$3 cmd
  shift 3
  case $lang in
  c) cmd=("$ZKR_PEER") ;;
  java) cmd=("${JAVA[@]}") ;;
  python) cmd=("$PY" "$SRC/kazoo_peer.py") ;;
  esac
  "${cmd[@]}" "$mode" --hosts "$HOSTS" --path "$P" --dir "$dir" --name "$name" \
    --session-ms "$SESSION_MS" --timeout-ms "$ACQUIRE_MS" "$@" >"$dir/$name.out" 2>"$dir/$name.err" &
  ALL_BG+=($!)
  PIDS+=("$name=$!")
}

# Why peer NAME=PID ended badly, from its stderr.
peer_said() {
  local name=${1%%=*}
  echo "$name: $(tr '\n' ' ' <"$dir/$name.err" | cut -c1-300)"
}

# run_peers: waits until every peer is ready, starts them together and waits
# for them to end; fails if one cannot start, stalls or exits non-zero.
run_peers() {
  local np deadline n last_n last_t e name pid rc
  deadline=$(($(now_ms) + STARTUP_S * 1000))
  while :; do
    n=0
    for e in "${PIDS[@]}"; do
      name=${e%%=*} pid=${e#*=}
      if [ -e "$dir/$name.ready" ]; then
        n=$((n + 1))
      elif gone "$pid"; then
        wait "$pid"
        fail "peer did not start (exit status $?): $(peer_said "$e")"
        return 1
      fi
    done
    [ "$n" -eq ${#PIDS[@]} ] && break
    [ "$(now_ms)" -lt "$deadline" ] || fail "$((${#PIDS[@]} - n)) peers not connected after $STARTUP_S s" || return 1
    sleep 0.02
  done
  : >"$dir/go"
  T_GO=$(now_ms)
  # No fixed duration: wait while the logs grow; give up after STALL_MS
  # without a new hold anywhere.
  last_n=-1 last_t=$(now_ms)
  while :; do
    np=0
    for e in "${PIDS[@]}"; do gone "${e#*=}" || np=$((np + 1)); done
    [ "$np" -eq 0 ] && break
    n=$(cat "$dir"/*.log 2>/dev/null | wc -l)
    if [ "$n" -ne "$last_n" ]; then
      last_n=$n last_t=$(now_ms)
    elif [ $(($(now_ms) - last_t)) -gt "$STALL_MS" ]; then
      fail "no progress for $STALL_MS ms ($n holds logged, $np peers running)"
      return 1
    fi
    sleep 0.02
  done
  T_RUN=$(($(now_ms) - T_GO))
  for e in "${PIDS[@]}"; do
    pid=${e#*=}
    wait "$pid"
    rc=$?
    case $rc in
    0) ;;
    3) fail "overlap seen at the markers: $(cat "$dir/${e%%=*}.out")" || return 1 ;;
    *) fail "peer exited $rc: $(peer_said "$e")" || return 1 ;;
    esac
  done
}

# expect_iterations N: every peer's RESULT line and log show N holds.
expect_iterations() {
  local e name n
  for e in "${PIDS[@]}"; do
    name=${e%%=*}
    grep -q "^RESULT name=$name .* iterations=$1 overlaps=0\$" "$dir/$name.out" ||
      fail "$name: expected 'iterations=$1 overlaps=0', got '$(cat "$dir/$name.out")'" || return 1
    n=$(wc -l <"$dir/$name.log")
    [ "$n" -eq "$1" ] || fail "$name logged $n holds, expected $1" || return 1
  done
}

# Holds overlapping in time across all logs, from a sweep over enter (+1)
# and exit (-1) events (exits first at equal times). An overlap is two
# exclusive holds (X, W) at once, a reader beside a writer, or more than
# LEASES (default 1) leases. The timestamps are 64-bit ns: sort -n and
# bash arithmetic keep them exact.
count_overlaps() {
  local t d k x=0 r=0 l=0 bad=0 leases=${LEASES:-1}
  while read -r t d k; do
    case $k in
    X | W) x=$((x + d)) ;;
    R) r=$((r + d)) ;;
    L) l=$((l + d)) ;;
    esac
    if [ "$d" = 1 ] && { [ $x -gt 1 ] || { [ $x -eq 1 ] && [ $r -gt 0 ]; } || [ $l -gt "$leases" ]; }; then
      bad=$((bad + 1))
    fi
  done < <(awk '{ print $1, 1, $3; print $2, -1, $3 }' "$dir"/*.log | sort -k1,1n -k2,2n)
  echo "$bad"
}

expect_no_overlap() {
  local n
  n=$(count_overlaps)
  [ "$n" -eq 0 ] || fail "$n holds began while another was held (logged times)"
}

# Holds of all peers in grant order: "ENTER EXIT KIND NAME SEQ" lines.
grants() { sort -k1,1n "$dir"/*.log; }

# FIFO across languages: every grant's node has a larger sequence number
# than the grant before (a mutex grants the lowest node, and nodes are
# numbered in creation order). Also says how often the lock passed between
# languages (names start with the language).
expect_fifo() {
  local _t _x _k name seq prev=-1 prevname="" cross=0
  while read -r _t _x _k name seq; do
    [[ $seq =~ ^[0-9]{10}$ ]] || fail "$name logged no sequence number ('$seq')" || return 1
    [ $((10#$seq)) -gt "$prev" ] || fail "granted out of node order: $prevname's $prev, then $name's $seq" || return 1
    [ "${name%%-*}" != "${prevname%%-*}" ] && [ -n "$prevname" ] && cross=$((cross + 1))
    prev=$((10#$seq)) prevname=$name
  done < <(grants)
  [ "$cross" -ge 2 ] || fail "the lock passed between languages only $cross times: no shared queue" || return 1
  info "  $(grants | wc -l) holds in node order, $cross hand-overs between languages, $T_RUN ms"
}

# Election order: once both participants are in the queue, leadership
# alternates (each term ends with a resign and a re-join at the back), so
# after the leading run of one and before the trailing run of the other no
# one leads twice in a row; each hand-over between them takes less than a
# session timeout.
expect_alternation() {
  local names=() ends=() starts=() i lo hi gap max=0 s e _k name _seq
  while read -r s e _k name _seq; do
    names+=("$name") starts+=("$s") ends+=("$e")
  done < <(grants)
  lo=0 hi=$((${#names[@]} - 1))
  while [ $lo -lt $hi ] && [ "${names[lo + 1]}" = "${names[0]}" ]; do lo=$((lo + 1)); done
  while [ $hi -gt $lo ] && [ "${names[hi - 1]}" = "${names[-1]}" ]; do hi=$((hi - 1)); done
  # A peer that has not queued again yet (a JVM rejoining under load)
  # lets the other lead twice in a row: that is no fault, but most terms
  # must change hands, or the two are not in one queue.
  local handovers=0
  for ((i = lo + 1; i <= hi; i++)); do
    [ "${names[i]}" = "${names[i - 1]}" ] && continue
    handovers=$((handovers + 1))
    gap=$(((starts[i] - ends[i - 1]) / 1000000))
    [ $gap -gt $max ] && max=$gap
  done
  [ $handovers -ge 2 ] && [ $((2 * handovers)) -ge $((hi - lo)) ] ||
    fail "leadership changed hands only $handovers times in $((hi - lo + 1)) terms" || return 1
  [ $max -lt "$SESSION_MS" ] || fail "a hand-over took $max ms (session timeout $SESSION_MS ms)" || return 1
  info "  ${#names[@]} terms, $handovers hand-overs between languages, slowest $max ms, $T_RUN ms"
}

# --- cases: lock ---------------------------------------------------------------

# Two zkr_lock processes and one Curator InterProcessMutex on one path.
test_interop_mutex_curator() {
  start_peer c mutex c-1 --iterations 30
  start_peer c mutex c-2 --iterations 30
  start_peer java mutex java-1 --iterations 30
  run_peers || return 1
  expect_iterations 30 && expect_no_overlap && expect_fifo
}

# Two zkr_lock processes and one Kazoo Lock told Curator's names.
test_interop_mutex_kazoo() {
  start_peer c mutex c-1 --iterations 30
  start_peer c mutex c-2 --iterations 30
  start_peer python mutex python-1 --iterations 30
  run_peers || return 1
  expect_iterations 30 && expect_no_overlap && expect_fifo
}

# The control: a Kazoo Lock without extra_lock_patterns does not see
# "_c_<uuid>-lock-<seq>" nodes and takes the lock beside a zkr holder (zkr
# sees Kazoo's "__lock__" node and waits for it: one-sided). Both checks
# must see it, which also shows they can.
test_interop_mutex_kazoo_default_overlaps() {
  local n
  start_peer c mutex c-1 --iterations 20
  start_peer python mutex-default python-1 --iterations 20
  run_peers
  grep -q '^RESULT .* overlaps=[1-9]' "$dir/python-1.out" "$dir/c-1.out" ||
    fail "no overlap seen at the markers: $(cat "$dir"/*.out | tr '\n' ' ')" || return 1
  n=$(count_overlaps)
  [ "$n" -gt 0 ] || fail "no overlap in the logged times" || return 1
  info "  $n overlapping holds, as expected"
}

# --- cases: election -------------------------------------------------------------

# zkr_election and Curator's LeaderLatch on one path: one leader at a time,
# leadership alternating between them.
test_interop_election_curator() {
  start_peer c elect c-1 --iterations 12 --hold-ms 20
  start_peer java elect java-1 --iterations 12 --hold-ms 20
  run_peers || return 1
  expect_iterations 12 && expect_no_overlap && expect_alternation
}

# --- cases: read-write lock, semaphore ----------------------------------------

# zkr_rwlock and Curator's InterProcessReadWriteLock: readers share, a
# writer excludes everyone. Holds are granted in node order for writers
# only, so the check is the sweep.
test_interop_rwlock_curator() {
  start_peer c write c-w --iterations 15
  start_peer c read c-r --iterations 30
  start_peer java write java-w --iterations 15
  start_peer java read java-r --iterations 30
  run_peers || return 1
  expect_iterations_each && expect_no_overlap
}

# zkr_rwlock and Kazoo's WriteLock told Curator's names (zkr must count
# Kazoo's "__lock__" as a writer). Kazoo readers are the next case.
test_interop_rwlock_kazoo() {
  start_peer c write c-w --iterations 15
  start_peer c read c-r1 --iterations 30
  start_peer c read c-r2 --iterations 30
  start_peer python write python-w --iterations 15
  run_peers || return 1
  expect_iterations_each && expect_no_overlap
}

# Kazoo's ReadLock beside writers needs kazoo 2.9.0: before it (Debian 12
# has 2.8.0) a reader whose own "__rlock__" node is not a contender name to
# itself waits for the last writer in the directory, also one queued after
# it, which waits for the reader: a deadlock even among Kazoo processes
# alone (kazoo#649, fixed by #650). zkr must count "__rlock__" as a reader.
test_interop_rwlock_kazoo_readers() {
  "$PY" -c 'import sys, kazoo.version as v; sys.exit(tuple(map(int, v.__version__.split(".")[:2])) < (2, 9))' ||
    fail "kazoo $("$PY" -c 'import kazoo.version as v; print(v.__version__)') ReadLock deadlocks beside writers (kazoo#649, fixed in 2.9.0)" ||
    return 1
  start_peer c write c-w --iterations 15
  start_peer c read c-r --iterations 30
  start_peer python write python-w --iterations 15
  start_peer python read python-r --iterations 30
  run_peers || return 1
  expect_iterations_each && expect_no_overlap
}

# zkr_semaphore and Curator's InterProcessSemaphoreV2 with 2 leases, 5
# processes: never more than 2 holders.
test_interop_semaphore_curator() {
  local i
  for i in 1 2 3; do start_peer c sema c-$i --iterations 15 --leases 2; done
  for i in 1 2; do start_peer java sema java-$i --iterations 15 --leases 2; done
  run_peers || return 1
  expect_iterations 15 && LEASES=2 expect_no_overlap
}

# --- cases: barriers --------------------------------------------------------------

# Double barrier rounds (dbarrier peers log "ENTER_RETURNED EXIT B NAME
# ENTER_CALLED", one line per round): in every round, no participant
# entered before the last one had called enter.
expect_entered_together() {
  local early
  early=$(awk '{ r = FNR; if (!(r in last) || $5 > last[r]) last[r] = $5
                 if (!(r in first) || $1 < first[r]) first[r] = $1 }
               END { n = 0; for (r in last) if (first[r] < last[r]) n++; print n }' "$dir"/*.log)
  [ "$early" -eq 0 ] || fail "in $early rounds a participant entered before the last one came" || return 1
  info "  $(($(wc -l <"$dir/c-1.log"))) rounds of 4 (2 zkr, 2 Curator), $T_RUN ms"
}

# Two zkr_double_barrier processes and two Curator DistributedDoubleBarrier
# ones, 4 participants, 5 rounds (a fresh path each: Curator's leave may
# remove "ready" while a round's last participant is still inside); holds
# of different lengths shift each round's arrivals.
test_interop_double_barrier_curator() {
  start_peer c dbarrier c-1 --iterations 5 --count 4 --hold-ms 5
  start_peer c dbarrier c-2 --iterations 5 --count 4 --hold-ms 60
  start_peer java dbarrier java-1 --iterations 5 --count 4 --hold-ms 120
  start_peer java dbarrier java-2 --iterations 5 --count 4 --hold-ms 30
  run_peers || return 1
  expect_iterations 5 && expect_entered_together
}

# A barrier set by zkr holds a Curator DistributedBarrier waiter until zkr
# removes it; one set by Curator holds `zkr barrier wait` until Curator
# removes it.
test_interop_barrier_curator() {
  local zpid e
  "$ZKR" --hosts "$HOSTS" barrier set "$P" || fail "zkr barrier set" || return 1
  start_peer java bwait java-w --iterations 1
  e=${PIDS[-1]}
  await_file "$dir/java-w.ready" || fail "Curator waiter not connected: $(peer_said "$e")" || return 1
  : >"$dir/go"
  sleep 0.5 # the one fixed wait: give the waiter time to (wrongly) return
  gone "${e#*=}" && fail "Curator's waitOnBarrier returned while zkr's barrier was set: $(peer_said "$e")" && return 1
  "$ZKR" --hosts "$HOSTS" barrier remove "$P" || fail "zkr barrier remove" || return 1
  await_gone "${e#*=}" || fail "Curator's waiter still waits after zkr removed the barrier" || return 1
  wait "${e#*=}" || fail "Curator waiter: $(peer_said "$e")" || return 1

  start_peer java bset java-s --iterations 1
  e=${PIDS[-1]}
  { await_gone "${e#*=}" && wait "${e#*=}"; } || fail "Curator setBarrier: $(peer_said "$e")" || return 1
  "$ZKR" --hosts "$HOSTS" barrier wait "$P" &
  zpid=$!
  ALL_BG+=("$zpid")
  sleep 0.5 # as above
  gone "$zpid" && fail "zkr barrier wait returned while Curator's barrier was set" && return 1
  start_peer java bremove java-r --iterations 1
  e=${PIDS[-1]}
  await_gone "$zpid" || fail "zkr barrier wait still waits after Curator removed the barrier" || return 1
  wait "$zpid" || fail "zkr barrier wait exited $?" || return 1
  { await_gone "${e#*=}" && wait "${e#*=}"; } || fail "Curator removeBarrier: $(peer_said "$e")"
}

# await_file F / await_gone PID: up to ACQUIRE_MS, polling every 20 ms.
await_file() {
  local deadline=$(($(now_ms) + ACQUIRE_MS))
  until [ -e "$1" ]; do
    [ "$(now_ms)" -lt $deadline ] || return 1
    sleep 0.02
  done
}

await_gone() {
  local deadline=$(($(now_ms) + ACQUIRE_MS))
  until gone "$1"; do
    [ "$(now_ms)" -lt $deadline ] || return 1
    sleep 0.02
  done
}

# Peers of one case with different iteration counts: each peer's RESULT
# line must show the count it was given.
expect_iterations_each() {
  local f
  for f in "$dir"/*.out; do
    grep -q '^RESULT .* overlaps=0$' "$f" || fail "$(basename "$f" .out): $(cat "$f")" || return 1
  done
}

# --- runner ----------------------------------------------------------------------

PASSED=0
FAILED=0

# Runs test_interop_$1 in its own directory and path; on failure shows what
# the peers said.
run_case() {
  local name=$1 f e
  dir=$WORK/$name
  P=$BASE/$name
  PIDS=()
  REASON=""
  mkdir -p "$dir"
  if "test_interop_$name"; then
    echo "PASS: $name"
    PASSED=$((PASSED + 1))
  else
    echo "FAIL: $name: ${REASON:-failed}"
    FAILED=$((FAILED + 1))
    for f in "$dir"/*.err; do
      [ -s "$f" ] && info "  $(basename "$f"): $(head -c 600 "$f")"
    done
  fi
  for e in "${PIDS[@]}"; do
    gone "${e#*=}" || kill -KILL "${e#*=}" 2>/dev/null
    wait "${e#*=}" 2>/dev/null # reaped here: no "Killed" notice from bash
  done
}

CASES=(mutex_curator mutex_kazoo mutex_kazoo_default_overlaps election_curator rwlock_curator rwlock_kazoo semaphore_curator
  double_barrier_curator barrier_curator)
[ $# -gt 0 ] && CASES=("$@")
T_START=$(now_ms)
for c in "${CASES[@]}"; do
  run_case "$c"
done
info "total: $((($(now_ms) - T_START) / 1000)) s against $HOSTS"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
