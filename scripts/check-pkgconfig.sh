#!/usr/bin/env bash
# Installs into a private prefix and builds a program with nothing but
# `pkg-config --cflags --libs zkrecipes`, then runs it (no server needed).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make install DESTDIR="$tmp" >/dev/null
prefix=$(sed -n 's/^prefix=//p' zkrecipes.pc)
export PKG_CONFIG_SYSROOT_DIR="$tmp" PKG_CONFIG_PATH="$tmp$prefix/lib/pkgconfig"
cat > "$tmp/use.c" <<'C'
#include <zkr/zkr.h>
#include <stdio.h>
int main(void) {
  zkr_session *s;
  zoo_op_t op; /* zkr_lock_multi() takes the client's own ops: its library links too */
  zoo_check_op_init(&op, "/x", -1);
  printf("zkrecipes %s: %s\n", zkr_version_string(), zkr_strerror(zkr_session_open(&s, "", NULL)));
  return 0;
}
C
cc -o "$tmp/use" "$tmp/use.c" $(pkg-config --cflags --libs zkrecipes) -Wl,-rpath,"$tmp$prefix/lib"
"$tmp/use"
# The adapters' examples, built as their "Build:" lines say, from the
# installed headers (zkr/adapters/ included): uv_lock.c is the README's.
for ex in uv_lock event_lock; do
  build=$(sed -n 's/^ \* Build: //p' "examples/$ex.c")
  case "$build" in
  "cc $ex.c \$(pkg-config --cflags --libs zkrecipes "*")") ;;
  *) echo "examples/$ex.c: unexpected Build: line: $build"; echo "pkg-config consumer: 1 passed, 1 failed"; exit 1 ;;
  esac
  cp "examples/$ex.c" "$tmp/"
  (cd "$tmp" && eval "$build -o $ex -Wl,-rpath,$tmp$prefix/lib")
done
# Both adapters in one file that uses neither, strict C11 and C++: no
# warning (static inline), extern "C" guards.
printf '#include <zkr/adapters/libuv.h>\n#include <zkr/adapters/libevent.h>\nint main(void) { return 0; }\n' > "$tmp/both.c"
cc -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -c "$tmp/both.c" -o "$tmp/both.o" \
  $(pkg-config --cflags zkrecipes libuv libevent)
c++ -x c++ -Wall -Wextra -Werror -c "$tmp/both.c" -o "$tmp/both.o" $(pkg-config --cflags zkrecipes libuv libevent)
echo "pkg-config consumer: 5 passed, 0 failed"
