#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, runs every CUnit
# program and the CLI suite against throw-away ZooKeeper servers (standalone
# and a 3-node ensemble, with the fault soak), valgrind, the demo, the
# fuzzer, the packaging checks, and the suite again under ASan+UBSan and
# under ThreadSanitizer.
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

echo "== valgrind (memcheck) on the session, queue and loop-mode suites"
for t in test_error test_names test_session test_async; do
  tests/with-zk.sh valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --suppressions=tests/valgrind.supp \
    "tests/$t" > "tests/$t.valgrind.out" 2>&1 || { status=1; cat "tests/$t.valgrind.out"; }
  tail -n 8 "tests/$t.valgrind.out"
done

echo "== the demo (README command 1) must not bit-rot"
./demo.sh > demo.log 2>&1 || { status=1; echo "demo failed:"; }
sed -n '/summary/,$p' demo.log

echo "== pkg-config consumer"
scripts/check-pkgconfig.sh || status=1

echo "== fuzzing path checks and contender-name parsing (libFuzzer, 30 s)"
scripts/fuzz.sh 30 || status=1

# The whole suite again from the release tarball, instrumented: distcheck
# also proves the tarball builds, installs and uninstalls cleanly.
distcheck() { # NAME CONFIGURE-FLAGS
  echo "== make distcheck, suite under $1"
  if make distcheck DISTCHECK_CONFIGURE_FLAGS="$2" > "distcheck-$1.log" 2>&1; then
    grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP|# )' "distcheck-$1.log"
  else
    status=1
    grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP|# )' "distcheck-$1.log" || tail -n 40 "distcheck-$1.log"
    for log in $(grep -l -E '^:test-result: (FAIL|ERROR)' zkrecipes-*/_build/sub/tests/*.trs 2>/dev/null); do
      echo "---- ${log%.trs}.log"; cat "${log%.trs}.log"
    done
  fi
}
distcheck asan --enable-asan
distcheck tsan --enable-tsan

[ $status -eq 0 ] && echo "ALL TESTS PASSED" || echo "SOME TESTS FAILED"
exit $status
