#!/usr/bin/env bash
# Builds the libFuzzer target (clang) and runs it for SECONDS (default 30)
# from the seed corpus. Exit status is the fuzzer's: a crash fails.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
[ -f config.h ] || scripts/build.sh
clang -g -O1 -fsanitize=fuzzer,address,undefined -DTHREADED -Iinclude -Isrc -I. \
  tests/fuzz/fuzz_names.c src/path.c src/name.c src/error.c -o "$out/fuzz_names"
cp tests/fuzz/corpus/* "$out/" 2>/dev/null || true
mkdir -p "$out/corpus" && cp tests/fuzz/corpus/* "$out/corpus/"
"$out/fuzz_names" -max_total_time="$secs" -max_len=2048 -print_final_stats=1 "$out/corpus" 2>&1 | tail -n 5
echo "fuzz: 1 passed, 0 failed"
