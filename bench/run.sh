#!/usr/bin/env bash
# One command for the lock benchmark: installs what is missing, builds
# bench/zkr_bench, starts a private ZooKeeper and prints the table (also
# written to bench/results/<time>/table.md). Not part of make check.
#
#   bench/run.sh [--peers] [--quick] [run.py options; see bench/run.py -h]
#
# --peers adds Curator InterProcessMutex and Kazoo Lock (Debian packages).
# --modes many runs only the 1,000-acquirer comparison: one loop thread on
# the asynchronous API against 1,000 threads on the blocking one (~2 min).
set -euo pipefail
cd "$(dirname "$0")/.."
deps=()
for a in "$@"; do
  if [ "$a" = --peers ]; then deps=(--peers); fi
done
scripts/install-deps.sh "${deps[@]}"
scripts/build.sh
make -s bench >/dev/null
exec /usr/bin/python3 bench/run.py "$@"
