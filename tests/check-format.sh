#!/usr/bin/env bash
# make check: every C file of the project follows .clang-format.
set -u
src=${srcdir:-$(dirname "$0")/..}
cd "$src" || exit 1
command -v clang-format >/dev/null || { echo "clang-format missing (scripts/install-deps.sh installs it)"; echo "0 passed, 1 failed"; exit 1; }
files=$(ls include/zkr/*.h include/zkr/adapters/*.h src/*.[ch] recipes/*.c tools/*.[ch] examples/*.c tests/*.[ch] bench/*.[ch] 2>/dev/null)
bad=0
for f in $files; do
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f (run: clang-format -i $f)"
    bad=$((bad + 1))
  fi
done
n=$(echo "$files" | wc -w)
echo "$((n - bad)) passed, $bad failed"
[ "$bad" -eq 0 ]
