#!/usr/bin/env bash
# The tests' LOG_COMPILER: runs PROGRAM [ARGS] against a throw-away
# ZooKeeper server and exits with the program's status.
#
#   with-zk.sh PROGRAM [ARGS]
#
# With ZKR_TEST_HOSTS already set (a server of the caller's), the program
# just runs against it. Otherwise a fresh server is started in a private
# mktemp -d folder, ZKR_TEST_HOSTS is exported, and the server and folder
# are removed afterwards whatever happens (exit, ^C, TERM). A server that
# cannot be started fails the test (exit 1), it is never skipped.
#
# Shell-script tests are run with bash; the check-*.sh ones and the soak
# (which starts its own ensemble) need no server, so none is started for them.
set -u

if [ $# -lt 1 ]; then
  echo "usage: $0 PROGRAM [ARGS]" >&2
  exit 2
fi

case "$1" in
*/check-*.sh | check-*.sh | *soak-short.sh)
  exec bash "$@"
  ;;
*.sh)
  set -- bash "$@"
  ;;
esac

if [ -n "${ZKR_TEST_HOSTS:-}" ]; then
  exec "$@"
fi

here=$(cd "$(dirname "$0")" && pwd) || exit 1
dir=$(mktemp -d "${TMPDIR:-/tmp}/zkr-test.XXXXXX") || {
  echo "with-zk.sh: mktemp -d failed" >&2
  exit 1
}

cleanup() {
  "$here/zk-server.sh" stop "$dir" || echo "with-zk.sh: could not stop the server of $dir" >&2
  rm -rf "$dir"
}
# On a signal: clean up, then exit as killed by it (128 + number) so make
# reports the interruption; the EXIT trap is cleared so cleanup runs once.
trap 'cleanup' EXIT
trap 'trap - EXIT; cleanup; exit 130' INT
trap 'trap - EXIT; cleanup; exit 143' TERM

hosts=$("$here/zk-server.sh" start "$dir") || {
  echo "with-zk.sh: could not start a ZooKeeper server for $1" >&2
  exit 1
}
export ZKR_TEST_HOSTS=$hosts
# The one exit no trap sees is SIGKILL of this shell (a timeout -s KILL, a
# killed make): a watchdog, detached from our output so that nothing waits
# for it, stops the server once this shell is gone. After a normal exit the
# server is stopped already and it finds nothing to do.
setsid bash -c 'tail --pid="$1" -f /dev/null; "$2" stop "$3" && rm -rf "$3"' watchdog $$ "$here/zk-server.sh" "$dir" \
  </dev/null >/dev/null 2>&1 &

# Not exec: the trap must run after the program. Run in the background and
# wait, so a signal to this shell is handled at once (bash defers traps
# until a foreground child ends); the program is stopped with it.
"$@" &
child=$!
trap 'kill -TERM $child 2>/dev/null; wait $child; trap - EXIT; cleanup; exit 130' INT
trap 'kill -TERM $child 2>/dev/null; wait $child; trap - EXIT; cleanup; exit 143' TERM
wait "$child"
status=$?
exit "$status"
