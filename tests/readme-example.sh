#!/usr/bin/env bash
# The README's C example is examples/daily_report.c, word for word, and it
# runs: against the test server it takes the lock, prints its token and
# releases.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${top_builddir:-.}/examples/daily_report
readme_block=$(awk '/^## The lock in a complete program/{f=1; next} f && /^```c$/{c=1; next} c && /^```$/{exit} c' "$here/README.md")
if [ "$readme_block" != "$(cat "$here/examples/daily_report.c")" ]; then
  echo "FAIL: the README's example differs from examples/daily_report.c"
  diff <(printf '%s\n' "$readme_block") "$here/examples/daily_report.c"
  exit 1
fi
out=$("$bin" "${ZKR_TEST_HOSTS:?run it through tests/with-zk.sh, which starts a server}") || { echo "FAIL: daily_report exited $?: $out"; exit 1; }
case "$out" in
"report runs under fencing token "[0-9]*) echo "PASS: README example compiles, runs and prints: $out" ;;
*) echo "FAIL: unexpected output: $out"; exit 1 ;;
esac
echo "1 passed, 0 failed"
