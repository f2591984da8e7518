#!/usr/bin/env bash
# Configures (once) and builds the tree in place. Extra arguments go to
# configure, e.g. scripts/build.sh --enable-asan.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x configure ] || autoreconf -fi >/dev/null
if [ ! -f Makefile ] || [ "$*" != "$(cat .build-flags 2>/dev/null)" ]; then
  ./configure --quiet "$@"
  printf '%s' "$*" > .build-flags
fi
make -j"$(nproc)" >/dev/null
