#!/usr/bin/env bash
# build-curator.sh OUTDIR: compiles CuratorLockBench.java and
# CuratorRecipesBench.java (read-write lock, semaphore) into OUTDIR and
# writes OUTDIR/classpath (one line) for
#   java -cp "$(cat OUTDIR/classpath)" CuratorLockBench ...
# Uses Debian's jars (JAR_DIR, default /usr/share/java).
set -eu

die() {
  echo "build-curator.sh: $*" >&2
  exit 1
}

[ $# -eq 1 ] || die "usage: build-curator.sh OUTDIR"
out=$1
here=$(cd "$(dirname "$0")" && pwd)
dir=${JAR_DIR:-/usr/share/java}

command -v javac >/dev/null || die "javac not found (install openjdk-17-jdk)"
command -v java >/dev/null || die "java not found"

# slf4j-nop comes first so it is the binding SLF4J finds even if some jar
# (or a jar's manifest Class-Path) brings another one. These are the jars
# classes are actually loaded from (java -verbose:class): the ZooKeeper
# client's default NIO socket needs neither netty nor metrics-core.
required="slf4j-nop slf4j-api curator-recipes curator-framework curator-client
  zookeeper zookeeper-jute guava"
optional="failureaccess audience-annotations"

cp=""
for j in $required; do
  [ -f "$dir/$j.jar" ] || die "missing $dir/$j.jar"
  cp="$cp:$dir/$j.jar"
done
for j in $optional; do
  if [ -f "$dir/$j.jar" ]; then cp="$cp:$dir/$j.jar"; fi
done

mkdir -p "$out" || die "cannot create $out"
out=$(cd "$out" && pwd)
javac -nowarn -d "$out" -cp "${cp#:}" "$here/CuratorLockBench.java" "$here/CuratorRecipesBench.java" || die "javac failed"
echo "$out$cp" >"$out/classpath"
