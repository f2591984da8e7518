#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, runs every CUnit
# program against throw-away ZooKeeper servers, the memory checks, and the
# packaging checks (make distcheck, a pkg-config consumer).
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
scripts/build.sh
status=0

echo "== make check"
make -j2 check || status=1
for f in tests/*.log; do
  [ "$f" = tests/test-suite.log ] || { echo "---- $f"; cat "$f"; }
done

echo "== valgrind (memcheck) on the session and queue suites"
for t in test_error test_queue test_session; do
  tests/with-zk.sh valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    "tests/$t" > "tests/$t.valgrind.out" 2>&1 || { status=1; cat "tests/$t.valgrind.out"; }
  tail -n 8 "tests/$t.valgrind.out"
done

echo "== pkg-config consumer"
scripts/check-pkgconfig.sh || status=1

echo "== make distcheck"
make distcheck TESTS= >/dev/null || { echo "distcheck failed"; status=1; }

[ $status -eq 0 ] && echo "ALL TESTS PASSED" || echo "SOME TESTS FAILED"
exit $status
