#!/usr/bin/env bash
# The event-loop adapters (include/zkr/adapters/) drive a loop-mode session:
# examples/uv_lock (libuv) and examples/event_lock (libevent) each run 20
# asynchronous acquisitions of one lock against the test server, all on the
# loop's thread, and exit 0 only if the holders came one at a time with
# increasing tokens and the cancelled waiter got ZKR_ECANCELLED. uv_lock
# takes its hosts from argv, event_lock from $ZKR_HOSTS, as each documents.
set -u
hosts=${ZKR_TEST_HOSTS:?run it through tests/with-zk.sh, which starts a server}
bin=${top_builddir:-.}/examples
passed=0
failed=0

# Each acquisition waits 30 s at most, so a stuck example ends by itself;
# the timeout only backs that up.
run() {
  local name=$1 out status
  shift
  out=$(timeout 120 "$@" 2>&1)
  status=$?
  case "$status:$out" in
  "0:$name: 19 holders one at a time on the "*", 1 cancelled")
    echo "PASS: $out"
    passed=$((passed + 1))
    ;;
  *)
    echo "FAIL: $name exited $status: $out"
    failed=$((failed + 1))
    ;;
  esac
}

run uv_lock "$bin/uv_lock" "$hosts"
run event_lock env ZKR_HOSTS="$hosts" "$bin/event_lock"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
