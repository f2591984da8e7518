#!/usr/bin/env bash
# A throw-away ZooKeeper ensemble on loopback for fault tests (Debian's
# package), all state inside DIR (made by the caller, e.g. mktemp -d).
#
#   zk-ensemble.sh start DIR [N=3] [OWNER_PID]  start N members; print the connect string; with
#                                      OWNER_PID, stop them once that process is gone
#   zk-ensemble.sh stop DIR            stop every member
#   zk-ensemble.sh stop-member DIR I   TERM member I (KILL after a bound)
#   zk-ensemble.sh kill-member DIR I   SIGKILL member I
#   zk-ensemble.sh start-member DIR I  restart member I with its data; wait until it serves
#   zk-ensemble.sh wait DIR            wait until the ensemble has a leader
#   zk-ensemble.sh leader DIR          print the index of the current leader (exit 1 if none)
#   zk-ensemble.sh port DIR I          print member I's client port
#
# A member that cannot be started is a failure (exit 1), never a skip.
#
# Ports are reserved by zk-ports.sh (below the ephemeral range, never given
# to two harnesses), but a process outside that scheme may still bind one
# before our member does. start then begins again on fresh ports: every
# member must list the same servers, so a new port for one is a new config
# for all, and nothing uses the ensemble before start returns, so all
# members are simply started over (up to PORT_TRIES times). A member
# restarted later (start-member) must keep its ports, since clients hold
# them in their connect string: a port taken by then is a clear failure.
#
# ZKR_ENSEMBLE_AFTER_CONFIGURE, when set, is a command run after each try's
# configs are written and before its members start, with DIR and the try's
# number as arguments: tests/test_ports.sh takes a port there to drive the
# start-over path.
set -u

JAR=/usr/share/java/zookeeper.jar
CLASSPATH_ZK="/etc/zookeeper/conf:$JAR:/usr/share/java/slf4j-simple.jar:/usr/share/java/*"
START_TIMEOUT=60 # seconds until every member serves (a start, a restart, a leader)
STOP_TIMEOUT=10  # seconds after TERM before KILL
PORT_TRIES=5     # whole-ensemble starts when another process takes a port first

die() {
  echo "zk-ensemble.sh: $*" >&2
  exit 1
}

four_letter() {
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1; printf "%s" "$1" >&3; cat <&3' "$1" "$2" 2>/dev/null
}

# shellcheck source=zk-ports.sh
. "$(dirname "$0")/zk-ports.sh"

# A free port reserved for this ensemble (zk-ports.sh: outside the
# ephemeral range, never handed to two harnesses), kept until stop: a
# restarted member binds the same ports again.
free_port() {
  reserve_port "$DIR" || die "no port could be reserved"
}

# 0 if member I runs. Its process is either our own child (launched by this
# shell: not yet exec'd into java, its command line is still this script's)
# or a java process whose command line names the member's config; a reused
# pid is neither. A zombie (state Z) has exited.
member_alive() {
  local i=$1 pid stat state ppid
  pid=$(cat "$DIR/m$i/zk.pid" 2>/dev/null) || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  # The fields after the command name (which may hold spaces): state, ppid.
  read -r state ppid _ <<< "${stat##*) }"
  [ "$state" != Z ] || return 1
  [ "$ppid" = "$$" ] && return 0
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "$DIR/m$i/zoo.cfg"
}

# 0 if member I's log, since its last launch, says it could not bind one of
# its ports.
bind_failed() {
  local from
  from=$(cat "$DIR/m$1/log.from" 2>/dev/null) || from=0
  tail -c +$((from + 1)) "$DIR/m$1/zk.log" 2>/dev/null | grep -qE 'BindException|Address already in use'
}

launch() {
  local i=$1
  # Where this run's part of the (appended) log begins.
  stat -c %s "$DIR/m$i/zk.log" > "$DIR/m$i/log.from" 2>/dev/null || echo 0 > "$DIR/m$i/log.from"
  nohup java -Dzookeeper.root.logger=WARN,CONSOLE -cp "$CLASSPATH_ZK" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$DIR/m$i/zoo.cfg" >> "$DIR/m$i/zk.log" 2>&1 < /dev/null &
  echo $! > "$DIR/m$i/zk.pid"
  # Out of the job table: a member killed by a restart is no news to print.
  disown $!
}

# Mode of member I as srvr reports it: leader, follower, or nothing.
mode() {
  four_letter "$(cat "$DIR/m$1/port")" srvr | sed -n 's/^Mode: //p'
}

serving() {
  case "$(mode "$1")" in leader | follower | standalone) return 0 ;; esac
  return 1
}

# Waits until member I serves (after start-member: its ports are fixed).
await_member() {
  local i=$1 deadline=$((SECONDS + START_TIMEOUT))
  while [ $SECONDS -lt $deadline ]; do
    serving "$i" && return 0
    if bind_failed "$i"; then
      stop_member "$i" KILL
      die "member $i cannot bind its ports (taken by another process since the ensemble started); see $DIR/m$i/zk.log"
    fi
    member_alive "$i" || die "member $i exited; see $DIR/m$i/zk.log"
    sleep 0.1
  done
  die "member $i did not serve within ${START_TIMEOUT}s; see $DIR/m$i/zk.log"
}

members() {
  ls -d "$DIR"/m[0-9]* 2>/dev/null | sed 's/.*m//' | sort -n
}

stop_member() {
  local i=$1 pid
  pid=$(cat "$DIR/m$i/zk.pid" 2>/dev/null) || return 0
  member_alive "$i" || return 0
  kill -"$2" "$pid" 2>/dev/null
  for _ in $(seq 1 $((STOP_TIMEOUT * 10))); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}

leader() {
  local i
  for i in $(members); do
    [ "$(mode "$i")" = leader ] && { echo "$i"; return 0; }
  done
  return 1
}

# Writes the configs of members 1..N on freshly reserved ports (the ports of
# an earlier try are given back first) with empty data dirs.
configure() {
  local n=$1 i q e servers=""
  release_ports "$DIR"
  for i in $(seq 1 "$n"); do
    rm -rf "$DIR/m$i/data"
    mkdir -p "$DIR/m$i/data" || die "cannot create $DIR/m$i/data"
    echo "$i" > "$DIR/m$i/data/myid"
    free_port > "$DIR/m$i/port"
    q=$(free_port) || exit 1
    e=$(free_port) || exit 1
    servers="${servers}server.$i=127.0.0.1:$q:$e
"
  done
  for i in $(seq 1 "$n"); do
    cat > "$DIR/m$i/zoo.cfg" << CFG
tickTime=200
initLimit=20
syncLimit=10
dataDir=$DIR/m$i/data
clientPort=$(cat "$DIR/m$i/port")
clientPortAddress=127.0.0.1
minSessionTimeout=1000
maxSessionTimeout=60000
forceSync=no
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=*
standaloneEnabled=false
reconfigEnabled=false
$servers
CFG
  done
}

# 0 if no follower's quorum port answers: only the leader listens on its
# own, so an answer there is another process, which would make that member
# fail the day it is elected (a taken quorum port shows no error before).
quorum_ports_ours() {
  local i q
  for i in $(seq 1 "$1"); do
    [ "$(mode "$i")" = leader ] && continue
    q=$(sed -n "s/^server\.$i=127\.0\.0\.1:\([0-9]*\):.*/\1/p" "$DIR/m$i/zoo.cfg")
    if [ -n "$q" ] && (exec 3<> "/dev/tcp/127.0.0.1/$q") 2> /dev/null; then
      echo "zk-ensemble.sh: member $i's quorum port $q is taken by another process" >&2
      return 1
    fi
  done
  return 0
}

# One try at starting members 1..N: 0 once every member serves and one
# leads; 1 as soon as a member reports a port taken (its log: the client
# port fails at once, the election port after the server's own bind
# retries, the quorum port when that member is elected, or, for a follower,
# when it answers: quorum_ports_ours); dies on anything
# else, which another try would only repeat.
start_once() {
  local n=$1 i deadline=$((SECONDS + START_TIMEOUT)) all
  for i in $(seq 1 "$n"); do
    # The log of the previous try is kept beside, for a failure report.
    [ -f "$DIR/m$i/zk.log" ] && mv "$DIR/m$i/zk.log" "$DIR/m$i/zk.log.prev"
    launch "$i"
  done
  while [ $SECONDS -lt $deadline ]; do
    all=1
    for i in $(seq 1 "$n"); do
      bind_failed "$i" && return 1
      if ! member_alive "$i"; then
        bind_failed "$i" && return 1
        tail -n 20 "$DIR/m$i/zk.log" >&2
        die "member $i exited; see $DIR/m$i/zk.log"
      fi
      serving "$i" || all=0
    done
    [ $all -eq 1 ] && leader > /dev/null && { quorum_ports_ours "$n" || return 1; return 0; }
    sleep 0.1
  done
  for i in $(seq 1 "$n"); do bind_failed "$i" && return 1; done
  die "the ensemble did not serve within ${START_TIMEOUT}s; see $DIR/m*/zk.log"
}

cmd=${1:-}
DIR=${2:-}
[ -n "$cmd" ] && [ -n "$DIR" ] || die "usage: zk-ensemble.sh start|stop|stop-member|kill-member|start-member|wait|leader|port DIR [I|N]"
[ -d "$DIR" ] || die "$DIR is not a directory"
DIR=$(cd "$DIR" && pwd)

case "$cmd" in
start)
  n=${3:-3}
  command -v java > /dev/null 2>&1 || die "java not found (install the zookeeper package)"
  [ -r "$JAR" ] || die "$JAR not found (install the zookeeper package)"
  # A start that fails leaves nothing behind: the members it launched are
  # killed and its ports given back (die exits through this trap).
  trap 'for i in $(members); do stop_member "$i" KILL; done; release_ports "$DIR"' EXIT
  started=0
  for try in $(seq 1 "$PORT_TRIES"); do
    configure "$n"
    if [ -n "${ZKR_ENSEMBLE_AFTER_CONFIGURE:-}" ]; then
      $ZKR_ENSEMBLE_AFTER_CONFIGURE "$DIR" "$try" || die "ZKR_ENSEMBLE_AFTER_CONFIGURE failed"
    fi
    if start_once "$n"; then
      started=1
      break
    fi
    echo "zk-ensemble.sh: a port was taken by another process (try $try of $PORT_TRIES); starting over on fresh ports" >&2
    for i in $(seq 1 "$n"); do stop_member "$i" KILL & done
    wait
  done
  if [ $started -eq 0 ]; then
    die "start: another process took one of our ports in each of $PORT_TRIES tries; see $DIR/m*/zk.log"
  fi
  trap - EXIT
  # A watchdog for an owner that dies where it cannot stop us (SIGKILL, a
  # crash: atexit never runs): it stops every member once the owner is
  # gone. Detached from our output so that nothing waits for it; after a
  # normal stop it finds nothing to do.
  if [ -n "${4:-}" ]; then
    setsid bash -c 'tail --pid="$1" -f /dev/null; [ -d "$3" ] && "$2" stop "$3"' watchdog "$4" "$0" "$DIR" \
      </dev/null >/dev/null 2>&1 &
  fi
  hosts=""
  for i in $(seq 1 "$n"); do hosts="$hosts${hosts:+,}127.0.0.1:$(cat "$DIR/m$i/port")"; done
  echo "$hosts"
  ;;
stop)
  for i in $(members); do stop_member "$i" TERM & done
  wait
  release_ports "$DIR"
  ;;
stop-member) stop_member "${3:?member}" TERM ;;
kill-member) stop_member "${3:?member}" KILL ;;
start-member)
  i=${3:?member}
  member_alive "$i" && die "member $i is running"
  launch "$i"
  await_member "$i"
  ;;
wait)
  deadline=$((SECONDS + START_TIMEOUT))
  until leader > /dev/null; do
    [ $SECONDS -lt $deadline ] || die "no leader within ${START_TIMEOUT}s"
    sleep 0.1
  done
  ;;
leader) leader ;;
port) cat "$DIR/m${3:?member}/port" ;;
*) die "unknown command $cmd" ;;
esac
