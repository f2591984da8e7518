#!/usr/bin/env bash
# A throw-away ZooKeeper ensemble on loopback for fault tests (Debian's
# package), all state inside DIR (made by the caller, e.g. mktemp -d).
#
#   zk-ensemble.sh start DIR [N=3]     start N members; print the connect string
#   zk-ensemble.sh stop DIR            stop every member
#   zk-ensemble.sh stop-member DIR I   TERM member I (KILL after a bound)
#   zk-ensemble.sh kill-member DIR I   SIGKILL member I
#   zk-ensemble.sh start-member DIR I  restart member I with its data; wait until it serves
#   zk-ensemble.sh wait DIR            wait until the ensemble has a leader
#   zk-ensemble.sh leader DIR          print the index of the current leader (exit 1 if none)
#   zk-ensemble.sh port DIR I          print member I's client port
#
# A member that cannot be started is a failure (exit 1), never a skip.
set -u

JAR=/usr/share/java/zookeeper.jar
CLASSPATH_ZK="/etc/zookeeper/conf:$JAR:/usr/share/java/slf4j-simple.jar:/usr/share/java/*"
START_TIMEOUT=60
STOP_TIMEOUT=10

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

member_alive() {
  local pid
  pid=$(cat "$DIR/m$1/zk.pid" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF "$DIR/m$1/zoo.cfg"
}

launch() {
  local i=$1
  nohup java -Dzookeeper.root.logger=WARN,CONSOLE -cp "$CLASSPATH_ZK" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$DIR/m$i/zoo.cfg" >> "$DIR/m$i/zk.log" 2>&1 < /dev/null &
  echo $! > "$DIR/m$i/zk.pid"
}

# Mode of member I as srvr reports it: leader, follower, or nothing.
mode() {
  four_letter "$(cat "$DIR/m$1/port")" srvr | sed -n 's/^Mode: //p'
}

serving() {
  case "$(mode "$1")" in leader | follower | standalone) return 0 ;; esac
  return 1
}

await_member() {
  local i=$1 deadline=$((SECONDS + START_TIMEOUT))
  while [ $SECONDS -lt $deadline ]; do
    serving "$i" && return 0
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
  servers=""
  for i in $(seq 1 "$n"); do
    mkdir -p "$DIR/m$i/data"
    echo "$i" > "$DIR/m$i/data/myid"
    free_port > "$DIR/m$i/port"
    q=$(free_port)
    e=$(free_port)
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
    launch "$i"
  done
  for i in $(seq 1 "$n"); do await_member "$i"; done
  leader > /dev/null || die "no leader elected"
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
