#!/usr/bin/env bash
# The README's C examples are files that make builds, word for word:
# examples/daily_report.c (run here: against the test server it takes the
# lock, prints its token and releases) and examples/uv_lock.c (run by
# tests/adapter-examples.sh).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${top_builddir:-.}/examples/daily_report

# The first ```c block after the README heading $1 must be the file $2.
same_as_file() {
  local block
  block=$(awk -v h="$1" '$0 == h {f=1; next} f && /^```c$/{c=1; next} c && /^```$/{exit} c' "$here/README.md")
  if [ "$block" != "$(cat "$here/$2")" ]; then
    echo "FAIL: the README's example under \"$1\" differs from $2"
    diff <(printf '%s\n' "$block") "$here/$2"
    exit 1
  fi
}
same_as_file "## The lock in a complete program" examples/daily_report.c
same_as_file "## Event loops (libuv, libevent, epoll)" examples/uv_lock.c
echo "PASS: the README's libuv example is examples/uv_lock.c"

out=$("$bin" "${ZKR_TEST_HOSTS:?run it through tests/with-zk.sh, which starts a server}") || { echo "FAIL: daily_report exited $?: $out"; exit 1; }
case "$out" in
"report runs under fencing token "[0-9]*) echo "PASS: README example compiles, runs and prints: $out" ;;
*) echo "FAIL: unexpected output: $out"; exit 1 ;;
esac
echo "2 passed, 0 failed"
