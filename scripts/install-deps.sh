#!/usr/bin/env bash
# Installs what zkrecipes needs from Debian, if anything is missing.
# Used by .ci/run, demo.sh and test.sh; safe to run again.
# With --peers, also what bench/run.sh --peers needs (Curator, Kazoo). The
# JDK is always installed: a test compiles a snapshot seeder against the
# server's classes.
set -euo pipefail

PKGS=(build-essential autoconf automake libtool pkg-config
      libzookeeper-mt-dev libcunit1-dev zookeeper default-jdk-headless
      valgrind python3 clang-format clang libclang-rt-14-dev)
if [ "${1:-}" = --peers ]; then
  PKGS+=(libcurator-recipes-java python3-kazoo)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo for: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
