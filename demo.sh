#!/usr/bin/env bash
# The demo: on a fresh Debian machine, installs what is missing, builds,
# starts a throw-away ZooKeeper on loopback, shows the oversell problem
# solved by zkr_lock, and stops the server. Leaves nothing running.
set -euo pipefail
cd "$(dirname "$0")"
say() { printf '\033[1m%s\033[0m\n' "$*"; }

say "[1/3] dependencies and build"
scripts/install-deps.sh
scripts/build.sh

say "[2/3] starting a throw-away ZooKeeper"
work=$(mktemp -d)
cleanup() { tests/zk-server.sh stop "$work/zk" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
mkdir -p "$work/zk"
hosts=$(tests/zk-server.sh start "$work/zk")
echo "    ZooKeeper at $hosts (data in $work/zk)"

say "[3/3] oversell: 100 items, 8 worker processes selling concurrently"
printf '100\n' > "$work/stock"
nolock=$(examples/oversell "$hosts" "$work/stock" nolock 8)
printf '100\n' > "$work/stock"
withlock=$(examples/oversell "$hosts" "$work/stock" lock 8)
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }
printf '\n    %-22s %-12s %-12s\n' "" "no lock" "zkr_lock"
printf '    %-22s %-12s %-12s\n' "items sold (of 100)" "$(field sold "$nolock")" "$(field sold "$withlock")"
printf '    %-22s %-12s %-12s\n' "stock left" "$(field stock "$nolock")" "$(field stock "$withlock")"
printf '    %-22s %-12s %-12s\n' "sales per worker" "$(field per_worker "$nolock")" "$(field per_worker "$withlock")"
echo
if [ "$(field sold "$withlock")" = 100 ] && [ "$(field stock "$withlock")" = 0 ]; then
  say "with zkr_lock exactly 100 were sold; without it $(field sold "$nolock") were."
else
  say "unexpected result: $withlock"; exit 1
fi
