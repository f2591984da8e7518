#!/usr/bin/env bash
# make check: the shared library exports exactly the public API.
#
# Every dynamic symbol defined by .libs/libzkrecipes.so must be a public zkr_
# name (not an internal zkr__ one) declared with ZKR_EXTERN in
# include/zkr/*.h, and every function declared there must be exported.
set -u

top_builddir=${top_builddir:-.}
# The headers are found relative to this script, so the check also works
# from a separate build directory (make distcheck).
src=$(cd "$(dirname "$0")/.." && pwd) || exit 1
lib=$top_builddir/.libs/libzkrecipes.so

fail() {
  echo "$*"
  echo "0 passed, 1 failed"
  exit 1
}

command -v nm >/dev/null 2>&1 || fail "nm not found (binutils)"
[ -r "$lib" ] || fail "$lib not found: build the library first"
headers=$(ls "$src"/include/zkr/*.h 2>/dev/null)
[ -n "$headers" ] || fail "no headers in $src/include/zkr"

# Functions declared ZKR_EXTERN: declarations start a line with it (comments
# and export.h's #define mention it elsewhere) and may span lines up to the
# ';'; the name is the last identifier before the first '('.
declared=$(awk '
  /^[[:space:]]*ZKR_EXTERN[[:space:]]/ { decl = ""; in_decl = 1 }
  in_decl { decl = decl " " $0 }
  in_decl && /;/ { print decl; in_decl = 0 }
' "$src"/include/zkr/*.h | grep -o 'ZKR_EXTERN[^;(]*(' |
  sed -e 's/[[:space:]]*($//' -e 's/.*[^A-Za-z0-9_]//' | sort -u)
[ -n "$declared" ] || fail "no ZKR_EXTERN declaration found in $src/include/zkr"

# Defined dynamic symbols, without version suffixes ("name@@VER").
if ! nm_out=$(nm -D --defined-only "$lib"); then
  fail "nm -D failed on $lib"
fi
exported=$(printf '%s\n' "$nm_out" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u)

passed=0
failed=0

for sym in $exported; do
  case "$sym" in
  _init | _fini | _edata | _end | __bss_start)
    # Defined by the linker in every shared object, not by us.
    continue
    ;;
  zkr__*)
    echo "internal symbol exported: $sym"
    failed=$((failed + 1))
    ;;
  zkr_*)
    if printf '%s\n' "$declared" | grep -qx "$sym"; then
      passed=$((passed + 1))
    else
      echo "exported but not declared ZKR_EXTERN in include/zkr: $sym"
      failed=$((failed + 1))
    fi
    ;;
  *)
    echo "exported symbol outside the zkr_ namespace: $sym"
    failed=$((failed + 1))
    ;;
  esac
done

for sym in $declared; do
  if printf '%s\n' "$exported" | grep -qx "$sym"; then
    passed=$((passed + 1))
  else
    echo "declared ZKR_EXTERN but not exported: $sym"
    failed=$((failed + 1))
  fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
