#!/usr/bin/env bash
# The test servers' ports: reservations (tests/zk-ports.sh) and the
# ensemble's start over on fresh ports when another process takes one
# (tests/zk-ensemble.sh).
#
#   tests/test_ports.sh [CASE...]
#
# The reservation cases need no server; the last case starts a 3-node
# ensemble of its own. Each case prints "PASS: name" or "FAIL: name:
# reason"; the last line is "N passed, M failed"; exit 1 if any failed.
# Every process started here is ended by the EXIT trap.
set -u

here=${srcdir:-$(dirname "$0")/..}/tests
WORK=$(mktemp -d "${TMPDIR:-/tmp}/zkr-ports.XXXXXX") || exit 1
HOLDERS=() # pids of the port holders
ENS=""     # the ensemble's directory, once started

cleanup() {
  [ -n "$ENS" ] && "$here/zk-ensemble.sh" stop "$ENS" > /dev/null 2>&1
  for pid in "${HOLDERS[@]}"; do kill "$pid" 2> /dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# hold.py PORT: listens on 127.0.0.1:PORT in a child that lives until
# killed (at most an hour); prints the child's pid once the port is bound,
# exits 1 if it cannot be bound.
cat > "$WORK/hold.py" << 'EOF'
import os, signal, socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
s.listen(1)
pid = os.fork()
if pid:
    print(pid)
    sys.exit(0)
os.close(1)
os.close(2)
signal.alarm(3600)
while True:  # accepts, as a server would: a full backlog looks free to a probe
    s.accept()[0].close()
EOF

# Holds PORT (hold.py); the holder's pid is kept for the EXIT trap.
hold_port() {
  local pid
  pid=$(/usr/bin/python3 "$WORK/hold.py" "$1") || return 1
  HOLDERS+=("$pid")
  echo "$pid" > "$WORK/holder.$1"
}

listening() { (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }

# Three consecutive ports of the harness's range that nothing listens on.
quiet_ports() {
  local lo hi p
  read -r lo hi <<< "$(ports_range)"
  for _ in $(seq 1 50); do
    p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo - 2)))
    listening "$p" || listening $((p + 1)) || listening $((p + 2)) || {
      echo "$p"
      return 0
    }
  done
  return 1
}

# shellcheck source=zk-ports.sh
. "$here/zk-ports.sh"

# --- cases ---------------------------------------------------------------------

# The range lies outside the kernel's ephemeral range, so no outgoing
# connection can take a port between our check and the server's bind.
case_range_outside_ephemeral() {
  local lo hi elo ehi
  read -r lo hi <<< "$(ports_range)"
  read -r elo ehi < /proc/sys/net/ipv4/ip_local_port_range || {
    REASON="cannot read ip_local_port_range"
    return 1
  }
  if [ "$hi" -ge "$elo" ] && [ "$lo" -le "$ehi" ]; then
    REASON="range $lo-$hi overlaps the ephemeral range $elo-$ehi"
    return 1
  fi
}

# A port reserved by a live owner is never handed to another; one whose
# owner is gone (a killed run) is taken back; release gives back all.
case_never_two_owners() {
  local p a b got=() x
  p=$(quiet_ports) || {
    REASON="no three quiet ports found"
    return 1
  }
  export ZKR_PORTS_DIR="$WORK/res" ZKR_PORTS_RANGE="$p $((p + 2))"
  a="$WORK/owner-a" b="$WORK/owner-b"
  mkdir -p "$a" "$b"
  for _ in 1 2 3; do
    x=$(reserve_port "$a") || {
      REASON="owner a could not reserve its ports"
      return 1
    }
    got+=("$x")
  done
  if [ "$(printf '%s\n' "${got[@]}" | sort -u | wc -l)" -ne 3 ]; then
    REASON="owner a got the same port twice: ${got[*]}"
    return 1
  fi
  if x=$(reserve_port "$b"); then
    REASON="owner b got port $x, which owner a holds"
    return 1
  fi
  rm -rf "$a" # a run killed before it could release
  x=$(reserve_port "$b") || {
    REASON="owner b could not take back a port of a gone owner"
    return 1
  }
  release_ports "$b"
  if grep -rqs "$b" "$ZKR_PORTS_DIR"; then
    REASON="release_ports left a reservation of owner b"
    return 1
  fi
  unset ZKR_PORTS_DIR ZKR_PORTS_RANGE
}

# A port something else listens on is never reserved.
case_listening_port_skipped() {
  local p x
  p=$(quiet_ports) || {
    REASON="no quiet port found"
    return 1
  }
  hold_port "$p" || {
    REASON="could not listen on $p"
    return 1
  }
  mkdir -p "$WORK/owner-c"
  export ZKR_PORTS_DIR="$WORK/res" ZKR_PORTS_RANGE="$p $p"
  if x=$(reserve_port "$WORK/owner-c"); then
    REASON="port $x was reserved while another process listened on it"
    return 1
  fi
  kill "$(cat "$WORK/holder.$p")"
  while kill -0 "$(cat "$WORK/holder.$p")" 2> /dev/null; do sleep 0.025; done
  x=$(reserve_port "$WORK/owner-c") || {
    REASON="port $p not reserved once free"
    return 1
  }
  unset ZKR_PORTS_DIR ZKR_PORTS_RANGE
}

# Starts a 3-node ensemble in $WORK/ens whose try 1 runs HOOK_BODY (a bash
# snippet; $1 is the ensemble's directory) between configuring and starting
# the members (ZKR_ENSEMBLE_AFTER_CONFIGURE). Sets HOSTS_OUT and START_RC;
# stderr in $WORK/ens.err; the port a hook took, if it wrote one, in
# $WORK/stolen.
start_with_hook() {
  ENS="$WORK/ens"
  rm -rf "$ENS" "$WORK/stolen" "$WORK/hook.pid"
  mkdir -p "$ENS"
  {
    echo '#!/usr/bin/env bash'
    echo '[ "$2" = 1 ] || exit 0'
    echo "$1"
  } > "$WORK/hook.sh"
  chmod +x "$WORK/hook.sh"
  HOSTS_OUT=$(ZKR_ENSEMBLE_AFTER_CONFIGURE="$WORK/hook.sh" "$here/zk-ensemble.sh" start "$ENS" 3 $$ 2> "$WORK/ens.err")
  START_RC=$?
  [ -f "$WORK/hook.pid" ] && HOLDERS+=("$(cat "$WORK/hook.pid")")
  return 0
}

# 0 if no member of $ENS runs and none of its ports is reserved.
ensemble_gone() {
  if grep -rqsx "$ENS" "${ZKR_PORTS_DIR:-/tmp/zkr-ports-$(id -u)}"; then
    REASON="ports of the ensemble are still reserved"
    return 1
  fi
  if pgrep -f "$ENS/m" > /dev/null; then
    REASON="a member still runs"
    return 1
  fi
}

# After a start that had to begin again: it said so, the taken port is no
# longer ours, every member serves on the ports of the connect string, one
# leads; stop then leaves nothing.
check_started_over() {
  local stolen p i
  if [ "$START_RC" -ne 0 ]; then
    REASON="start failed: $(tail -3 "$WORK/ens.err" | tr '\n' ' ')"
    return 1
  fi
  stolen=$(cat "$WORK/stolen" 2> /dev/null) || {
    REASON="the hook never ran"
    return 1
  }
  if ! grep -q "a port was taken by another process (try 1 of" "$WORK/ens.err"; then
    REASON="start did not report the taken port: $(tr '\n' ' ' < "$WORK/ens.err")"
    return 1
  fi
  if grep -qw "$stolen" "$ENS"/m*/zoo.cfg; then
    REASON="the taken port $stolen is still in a member's config"
    return 1
  fi
  for i in 1 2 3; do
    p=$("$here/zk-ensemble.sh" port "$ENS" "$i")
    case ",$HOSTS_OUT," in
    *",127.0.0.1:$p,"*) ;;
    *)
      REASON="connect string $HOSTS_OUT lacks member $i's port $p"
      return 1
      ;;
    esac
    if [ "$(timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"; printf ruok >&3; cat <&3' "$p" 2> /dev/null)" != imok ]; then
      REASON="member $i does not answer on port $p"
      return 1
    fi
  done
  "$here/zk-ensemble.sh" leader "$ENS" > /dev/null || {
    REASON="no leader"
    return 1
  }
  "$here/zk-ensemble.sh" stop "$ENS"
  ensemble_gone || return 1
  ENS=""
}

# Another process binds member 2's client port after its config is written
# and before it starts (the race no check can close): the member cannot
# bind, and start begins again on fresh ports; the ensemble then serves.
case_ensemble_starts_over() {
  start_with_hook "p=\$(cat \"\$1/m2/port\"); echo \"\$p\" > '$WORK/stolen'
/usr/bin/python3 '$WORK/hold.py' \"\$p\" > '$WORK/hook.pid'"
  check_started_over
}

# The same with member 1's quorum port, which only a leader binds: taken
# from a follower it shows no error until that member is elected, so start
# must notice it (the port answers) and begin again.
case_ensemble_quorum_port_taken() {
  start_with_hook "p=\$(sed -n 's/^server\\.1=127\\.0\\.0\\.1:\\([0-9]*\\):.*/\\1/p' \"\$1/m1/zoo.cfg\")
echo \"\$p\" > '$WORK/stolen'
/usr/bin/python3 '$WORK/hold.py' \"\$p\" > '$WORK/hook.pid'"
  check_started_over
}

# A start that fails for another reason (member 3's id file is garbage)
# fails, and leaves no member running and no port reserved.
case_failed_start_leaves_nothing() {
  start_with_hook 'echo abc > "$1/m3/data/myid"'
  if [ "$START_RC" -eq 0 ]; then
    REASON="start succeeded with a broken member"
    return 1
  fi
  ensemble_gone || return 1
  ENS=""
}

# --- run -------------------------------------------------------------------------

cases="range_outside_ephemeral never_two_owners listening_port_skipped ensemble_starts_over ensemble_quorum_port_taken
  failed_start_leaves_nothing"
[ $# -gt 0 ] && cases="$*"
passed=0 failed=0
for c in $cases; do
  REASON=""
  unset ZKR_PORTS_DIR ZKR_PORTS_RANGE # a case that failed may have left them
  if "case_$c"; then
    echo "PASS: $c"
    passed=$((passed + 1))
  else
    echo "FAIL: $c: ${REASON:-no reason given}"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
