#!/usr/bin/env bash
# make check: the contender protocol's Promela model (model/queue.pml),
# checked by spin. Fails when
#  - a C function the model names in its comments no longer has a
#    definition in src/ or recipes/ (the model must not drift silently),
#  - a check of the model finds an error (mutual exclusion, fencing token,
#    a node left behind, a waiter left waiting: an invalid end state, or,
#    under weak fairness, a run in which not every client ends),
#  - a variant with a wrong behaviour passes, or its counterexample does
#    not show what that variant breaks: two holders (-DNO_PREMISE,
#    -DNO_CONFIRM, -DCURATOR604, -DNO_EXHAUSTED), a fencing token out of
#    order (-DSTALE_TOKEN), a node left behind (-DNO_LOSS_ORPHAN), a waiter
#    never woken (-DLOST_WAKEUP), a result without its cause
#    (-DFALSE_GIVEUP), a broken hold never learnt (-DNO_OWN_EVENT, with
#    -DLEARN -DHOLD_FOREVER).
#
#   check-model.sh          the bounds of make check (under a minute, 2 CPUs)
#   check-model.sh --deep   deeper bounds (make model-deep; minutes, up to 14 GB)
#
# Writes only to a temporary directory. ZKR_MODEL_JOBS runs that many
# checks at once (default: the number of CPUs, at most 2).
set -u

src=${srcdir:-$(dirname "$0")/..}
model=$src/model/queue.pml
deep=0
[ "${1:-}" = --deep ] && deep=1

fail() { echo "check-model: $*"; echo "0 passed, 1 failed"; exit 1; }
[ -r "$model" ] || fail "no model at $model"
command -v spin >/dev/null || fail "spin missing (scripts/install-deps.sh installs it)"
command -v gcc >/dev/null || fail "gcc missing"

# --- 1. every function the model names exists in the C code ---------------
names=$(perl -0777 -ne 'while (m{/\*(.*?)\*/}gs) { my $c = $1; while ($c =~ /([A-Za-z_]\w*)\(\)/g) { print "$1\n" } }' "$model" | sort -u)
[ -n "$names" ] || fail "no function names found in the model's comments"
missing=0
for n in $names; do
  # A definition: a line starting with its type, the name, "(", not a
  # declaration (ending with ";").
  if ! grep -hE "^[A-Za-z_][A-Za-z_0-9 *]*[ *]$n\(" "$src"/src/*.c "$src"/src/*.h "$src"/recipes/*.c 2>/dev/null |
    grep -vq ';$'; then
    echo "check-model: the model names $n(), which src/ and recipes/ no longer define"
    missing=$((missing + 1))
  fi
done
echo "check-model: $(echo "$names" | wc -l) C functions named by the model, $missing missing"

# --- 2. the checks ------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/zkr-model.XXXXXX") || fail "mktemp -d failed"
trap 'rm -rf "$tmp"' EXIT INT TERM
cp "$model" "$tmp/queue.pml" || fail "cannot copy the model"

# name|expect|spin -D flags|gcc flags|pan flags
# expect: pass, or what the variant must show: two-holders, fencing,
# node-left, no-progress, no-cause. Large runs compile with -O1 (the best sum of
# compile and run time here); the variants, which fail within a second,
# with -O0. NC=2 (two clients) leaves room for two faults in a run.
if [ $deep -eq 0 ]; then
  checks="mutex|pass|-DMAXF=1 -DNO_OWNWATCH|-O1 -DSAFETY|-w24
rwlock|pass|-DMAXF=1 -DNO_OWNWATCH -DRWLOCK|-O1 -DSAFETY|-w24
rwlock-2w|pass|-DMAXF=1 -DNO_OWNWATCH -DRWLOCK=2|-O1 -DSAFETY|-w24
mutex-2f|pass|-DNC=2 -DMAXF=2|-O1 -DSAFETY|-w24
rwlock-2f|pass|-DNC=2 -DMAXF=2 -DRWLOCK|-O1 -DSAFETY|-w24
seqlimit|pass|-DMAXF=0 -DSEQLIMIT|-O1 -DSAFETY|-w20
ownwatch|pass|-DMAXF=0|-O1 -DSAFETY|-w22
renew|pass|-DMAXF=1 -DNO_OWNWATCH -DRENEW|-O1 -DSAFETY|-w24
progress|pass|-DMAXF=0 -DPROGRESS|-O1|-a -f -w22
progress-1f|pass|-DNC=2 -DMAXF=1 -DPROGRESS|-O1|-a -f -w22
learn-2f|pass|-DNC=2 -DMAXF=2 -DLEARN -DHOLD_FOREVER|-O1|-a -f -w23
no-premise|two-holders|-DMAXF=1 -DNO_OWNWATCH -DNO_PREMISE|-O0 -DSAFETY|-w22
no-confirm|two-holders|-DMAXF=1 -DNO_OWNWATCH -DNO_CONFIRM|-O0 -DSAFETY|-w22
curator604|two-holders|-DMAXF=1 -DNO_OWNWATCH -DCURATOR604|-O0 -DSAFETY|-w22
no-exhausted|two-holders|-DMAXF=0 -DNO_OWNWATCH -DSEQLIMIT -DNO_EXHAUSTED|-O0 -DSAFETY|-w22
stale-token|fencing|-DMAXF=1 -DNO_OWNWATCH -DSTALE_TOKEN|-O0 -DSAFETY|-w22
no-loss-orphan|node-left|-DMAXF=1 -DNO_OWNWATCH -DNO_LOSS_ORPHAN|-O0 -DSAFETY|-w22
lost-wakeup|no-progress|-DMAXF=0 -DPROGRESS -DLOST_WAKEUP|-O0|-a -f -w22
false-giveup|no-cause|-DMAXF=0 -DFALSE_GIVEUP|-O0 -DSAFETY|-w22
no-own-event|no-progress|-DNC=2 -DMAXF=1 -DLEARN -DHOLD_FOREVER -DNO_OWN_EVENT|-O0|-a -f -w22"
else
  checks="mutex|pass|-DMAXF=1|-O1 -DSAFETY -DHC4|-w27
rwlock|pass|-DMAXF=1 -DRWLOCK|-O1 -DSAFETY -DHC4|-w27
rwlock-2w|pass|-DMAXF=1 -DRWLOCK=2|-O1 -DSAFETY -DHC4|-w27
mutex-3f|pass|-DNC=2 -DMAXF=3|-O1 -DSAFETY -DHC4|-w27
seqlimit|pass|-DMAXF=1 -DSEQLIMIT|-O1 -DSAFETY -DCOLLAPSE|-w27
renew|pass|-DMAXF=1 -DNO_OWNWATCH -DRENEW|-O1 -DSAFETY|-w25
progress-1f|pass|-DMAXF=1 -DNO_OWNWATCH -DPROGRESS|-O1|-a -f -w25
progress-2f|pass|-DNC=2 -DMAXF=2 -DPROGRESS|-O1|-a -f -w25
learn-1f|pass|-DMAXF=1 -DLEARN -DHOLD_FOREVER|-O1|-a -f -w25
no-premise|two-holders|-DMAXF=1 -DNO_PREMISE|-O0 -DSAFETY|-w24
no-confirm|two-holders|-DMAXF=1 -DNO_CONFIRM|-O0 -DSAFETY|-w24
curator604|two-holders|-DMAXF=1 -DCURATOR604|-O0 -DSAFETY|-w24
no-exhausted|two-holders|-DMAXF=1 -DSEQLIMIT -DNO_EXHAUSTED|-O0 -DSAFETY|-w24
stale-token|fencing|-DMAXF=1 -DSTALE_TOKEN|-O0 -DSAFETY|-w24
no-loss-orphan|node-left|-DMAXF=1 -DNO_LOSS_ORPHAN|-O0 -DSAFETY|-w24
lost-wakeup|no-progress|-DMAXF=1 -DPROGRESS -DLOST_WAKEUP|-O0|-a -f -w24
false-giveup|no-cause|-DMAXF=1 -DFALSE_GIVEUP|-O0 -DSAFETY|-w24
no-own-event|no-progress|-DMAXF=1 -DLEARN -DHOLD_FOREVER -DNO_OWN_EVENT|-O0|-a -f -w24"
fi

# One check in its own directory: compile, run, judge. Writes verdict.txt.
run_one() {
  local name=$1 expect=$2 dflags=$3 cflags=$4 pflags=$5 d="$tmp/$1" t0 t1 verdict
  mkdir -p "$d" && cp "$tmp/queue.pml" "$d/" && cd "$d" || return
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086
  if ! spin -a $dflags queue.pml >spin.out 2>&1 || ! gcc -w -DMEMLIM=7000 $cflags -o pan pan.c >gcc.out 2>&1; then
    echo "FAIL $name: the model does not compile ($(head -3 spin.out gcc.out | tr '\n' ' '))" >verdict.txt
    return
  fi
  # shellcheck disable=SC2086
  ./pan -m300000 -c1 $pflags >pan.out 2>&1
  t1=$(date +%s.%N)
  local states depth errors secs
  states=$(awk '/states, stored/ { print $1; exit }' pan.out)
  depth=$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' pan.out | head -1)
  errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' pan.out | head -1)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  local figs="states=${states:-?} depth=${depth:-?} time=${secs}s"
  if grep -q "reached -DMEMLIM\|out of memory\|max search depth too small" pan.out; then
    verdict="FAIL $name: search incomplete ($figs): $(grep -m1 "MEMLIM\|memory\|depth too small" pan.out)"
  elif [ "$expect" = pass ]; then
    if [ "${errors:-x}" = 0 ]; then
      verdict="ok   $name: no error ($figs) [$dflags]"
    else
      verdict="FAIL $name: $(grep -m1 'pan:1:\|violated\|cycle\|invalid end' pan.out) ($figs)"
      spin -t $dflags queue.pml 2>&1 | grep 'MODEL:' | tail -5 | sed 's/^[ \t]*/      /' >>trail.txt
    fi
  else
    # A variant must fail, and its counterexample must show what it breaks.
    local claim replay
    case $expect in
    two-holders) claim='violated.*two_holders' replay='MODEL: TWO HOLDERS' ;;
    fencing) claim='violated.*fence_ok' replay='MODEL: FENCING' ;;
    node-left) claim='violated.*ex\[k_\]' replay='MODEL: NODE LEFT' ;;
    no-progress) claim='acceptance cycle' replay='START OF CYCLE' ;;
    no-cause) claim='violated.*nocause' replay='MODEL: NO CAUSE' ;;
    *) claim='no such expectation' replay="$expect" ;;
    esac
    if [ "${errors:-0}" = 0 ] || [ ! -f queue.pml.trail ]; then
      verdict="FAIL $name: the wrong behaviour passes: the model has no teeth here ($figs)"
    else
      # shellcheck disable=SC2086
      spin -t $dflags queue.pml >replay.out 2>&1
      if grep -q "$claim" pan.out && grep -q "$replay" replay.out; then
        verdict="ok   $name: fails as it must ($figs): $(grep -m1 "$replay" replay.out | sed 's/^[ \t]*//; s/^MODEL: //')"
      else
        verdict="FAIL $name: fails, but not with $expect ($figs): $(grep -m1 'violated\|cycle' pan.out)"
      fi
    fi
  fi
  echo "$verdict" >verdict.txt
  [ -f trail.txt ] && cat trail.txt >>verdict.txt
}

jobs=${ZKR_MODEL_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs" -gt 2 ] && [ -z "${ZKR_MODEL_JOBS:-}" ] && jobs=2
start=$(date +%s)
running=0
order=()
while IFS='|' read -r name expect dflags cflags pflags; do
  order+=("$name")
  (run_one "$name" "$expect" "$dflags" "$cflags" "$pflags") &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done <<<"$checks"
wait

passed=0
failed=$missing
for name in "${order[@]}"; do
  if [ -f "$tmp/$name/verdict.txt" ]; then
    cat "$tmp/$name/verdict.txt"
    if grep -q '^ok' "$tmp/$name/verdict.txt"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  else
    echo "FAIL $name: no verdict"
    failed=$((failed + 1))
  fi
done
echo "check-model: $(($(date +%s) - start)) s in all"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
