#!/usr/bin/env bash
# Installs what zkrecipes needs from Debian, if anything is missing.
# Used by .ci/run, demo.sh and test.sh; safe to run again.
# The JDK, Curator (libcurator-recipes-java) and Kazoo (python3-kazoo) are
# always installed: make check compiles a snapshot seeder against the
# server's classes and runs Curator and Kazoo peers beside zkr
# (tests/test_interop.sh). --peers is still accepted (bench/run.sh --peers
# passes it) and adds nothing more. spin checks the protocol's model
# (tests/check-model.sh, model/queue.pml). faketime skews a machine's
# clock for zkr once (tests/test_cli.sh, the demo).
set -euo pipefail

PKGS=(build-essential autoconf automake libtool pkg-config
      libzookeeper-mt-dev libcunit1-dev libglib2.0-dev zookeeper default-jdk-headless
      valgrind python3 clang-format clang libclang-rt-14-dev
      libcurator-recipes-java python3-kazoo spin faketime libuv1-dev libevent-dev)

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
