#!/usr/bin/env bash
# A throw-away standalone ZooKeeper for the tests (Debian's package).
#
#   zk-server.sh start DIR   starts a server with all its state inside DIR
#                            (made by the caller, e.g. with mktemp -d) on a
#                            free loopback port reserved by zk-ports.sh, waits until it answers, and
#                            prints "127.0.0.1:PORT" on stdout.
#   zk-server.sh stop DIR    stops the server whose pid is in DIR/zk.pid.
#
# With ZKR_ZK_SEED set to a directory, start copies it into the new data
# dir first (a snapshot written by tests/seed/SeedSnapshot.java).
#
# A server that cannot be started is a failure (exit 1), never a skip.
set -u

JAR=/usr/share/java/zookeeper.jar
# slf4j-simple is named before the wildcard: /usr/share/java holds several
# SLF4J bindings and the first found wins; by directory order that is often
# slf4j-nop, which would leave zk.log empty (no bind error to read). The
# log4j binding cannot be used: log4j-over-slf4j is in the wildcard too.
CLASSPATH_ZK="/etc/zookeeper/conf:$JAR:/usr/share/java/slf4j-simple.jar:/usr/share/java/*"
START_TIMEOUT=30 # seconds until the server must answer ruok
STOP_TIMEOUT=10  # seconds after TERM before KILL
PORT_TRIES=5     # ports tried when another process takes ours first
# shellcheck source=zk-ports.sh
. "$(dirname "$0")/zk-ports.sh"

die() {
  echo "zk-server.sh: $*" >&2
  exit 1
}

# 0 if something accepts connections on 127.0.0.1:$1.
port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Sends a four-letter command to 127.0.0.1:$1 and prints the answer. The
# server closes the connection after answering, so cat ends; timeout bounds
# a server that accepted but hangs.
four_letter() {
  local port=$1 cmd=$2
  timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1; printf "%s" "$1" >&3; cat <&3' \
    "$port" "$cmd" 2>/dev/null
}

# 0 if pid $1 is alive and is the server started from DIR $2 (guards against
# the pid having been reused by another process). A zombie has an empty
# cmdline, so it counts as gone even where nobody reaps it.
is_our_server() {
  local pid=$1 dir=$2
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "QuorumPeerMain $dir/zoo.cfg"
}

# Ends the server this shell started (its child, so the pid cannot have been
# reused: it stays ours until waited for) and reaps it.
end_child() {
  local pid=$1

  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 $((STOP_TIMEOUT * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

start() {
  local dir=$1 port pid ans conf deadline timed_out

  [ -d "$dir" ] || die "start: $dir is not a directory"
  dir=$(cd "$dir" && pwd) || die "start: cannot enter $dir"
  command -v java >/dev/null 2>&1 || die "java not found (install the zookeeper package)"
  [ -r "$JAR" ] || die "$JAR not found (install the zookeeper package)"
  if [ -f "$dir/zk.pid" ] && is_our_server "$(cat "$dir/zk.pid")" "$dir"; then
    die "start: a server from $dir is already running (pid $(cat "$dir/zk.pid"))"
  fi

  for _ in $(seq 1 "$PORT_TRIES"); do
    # A reserved port outside the ephemeral range (zk-ports.sh). A process
    # that is no harness of ours may still take it before the server binds:
    # the server then exits, and we try another.
    release_ports "$dir"
    port=$(reserve_port "$dir") || die "start: no port could be reserved"
    # Each attempt starts from an empty data dir: the tests expect a fresh
    # server, and a half-started one may have written a snapshot.
    rm -rf "$dir/data"
    mkdir -p "$dir/data" || die "start: cannot create $dir/data"
    # $ZKR_ZK_SEED: a data dir to start from (a snapshot a test wrote).
    if [ -n "${ZKR_ZK_SEED:-}" ]; then
      cp -r "$ZKR_ZK_SEED"/. "$dir/data/" || die "start: cannot copy $ZKR_ZK_SEED"
    fi
    cat >"$dir/zoo.cfg" <<EOF
tickTime=500
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
minSessionTimeout=1000
maxSessionTimeout=60000
forceSync=no
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=*
EOF
    # Same process group as the caller: if the test run is killed as a
    # group, the server goes with it instead of leaking.
    java -Dorg.slf4j.simpleLogger.defaultLogLevel=info -Xmx256m -cp "$CLASSPATH_ZK" \
      org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" \
      >"$dir/zk.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/zk.pid"

    # SECONDS, not a count of tries: a try may itself wait (ruok on a port
    # that accepts but does not answer).
    deadline=$((SECONDS + START_TIMEOUT))
    timed_out=1
    while [ "$SECONDS" -lt "$deadline" ]; do
      # kill -0, not is_our_server: the child may not have exec'd java yet.
      if ! kill -0 "$pid" 2>/dev/null; then
        timed_out=0
        break
      fi
      ans=$(four_letter "$port" ruok)
      if [ "$ans" = imok ]; then
        # imok could come from someone else's server that took the port
        # after our check: ours reports our data dir. conf answers only
        # once the server serves requests (imok comes earlier), so this is
        # also the readiness check.
        conf=$(four_letter "$port" conf)
        if printf '%s\n' "$conf" | grep -qF "dataDir=$dir/data/"; then
          echo "127.0.0.1:$port"
          return 0
        fi
        if printf '%s\n' "$conf" | grep -q '^dataDir='; then
          timed_out=0
          break
        fi
      fi
      sleep 0.1
    done

    if [ "$timed_out" -eq 1 ]; then
      end_child "$pid"
      rm -f "$dir/zk.pid"
      tail -n 20 "$dir/zk.log" >&2
      die "start: no imok from 127.0.0.1:$port within ${START_TIMEOUT}s; log in $dir/zk.log"
    fi
    end_child "$pid"
    rm -f "$dir/zk.pid"
    # Retry only when the port was taken under us; any other failure of the
    # server would just repeat.
    if ! grep -qE 'BindException|Address already in use' "$dir/zk.log" && ! port_busy "$port"; then
      tail -n 20 "$dir/zk.log" >&2
      release_ports "$dir"
      die "start: the server exited; log in $dir/zk.log"
    fi
    echo "zk-server.sh: start: port $port was taken by another process; trying another" >&2
  done
  release_ports "$dir"
  die "start: another process took our port in each of $PORT_TRIES tries; log in $dir/zk.log"
}

stop() {
  local dir=$1 pid

  # The ports are given back only once the server is gone (below): another
  # harness must not pick a port this server still listens on.
  if [ ! -f "$dir/zk.pid" ]; then
    [ -d "$dir" ] && release_ports "$(cd "$dir" && pwd)"
    return 0
  fi
  dir=$(cd "$dir" && pwd) || return 1
  pid=$(cat "$dir/zk.pid")
  # Only ever signal the server this directory started.
  if ! is_our_server "$pid" "$dir"; then
    rm -f "$dir/zk.pid"
    release_ports "$dir"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 $((STOP_TIMEOUT * 10))); do
    is_our_server "$pid" "$dir" || break
    sleep 0.1
  done
  if is_our_server "$pid" "$dir"; then
    kill -KILL "$pid" 2>/dev/null
    # KILL cannot be ignored; the wait is for the kernel to take it down.
    for _ in $(seq 1 50); do
      is_our_server "$pid" "$dir" || break
      sleep 0.1
    done
  fi
  if is_our_server "$pid" "$dir"; then
    echo "zk-server.sh: stop: pid $pid still alive" >&2
    return 1
  fi
  rm -f "$dir/zk.pid"
  release_ports "$dir"
  return 0
}

case "${1:-}" in
start)
  [ $# -eq 2 ] || die "usage: $0 start|stop DIR"
  start "$2"
  ;;
stop)
  [ $# -eq 2 ] || die "usage: $0 start|stop DIR"
  stop "$2"
  ;;
*)
  die "usage: $0 start|stop DIR"
  ;;
esac
