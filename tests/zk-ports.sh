# Port reservations for the test servers, sourced by zk-server.sh and
# zk-ensemble.sh (bash).
#
#   reserve_port OWNER   prints a free loopback port, reserved for OWNER (a
#                        directory: the server's or the ensemble's)
#   release_ports OWNER  gives back every port OWNER reserved
#
# Ports come from below the kernel's ephemeral range
# (/proc/sys/net/ipv4/ip_local_port_range), so no client's outgoing
# connection can take one between our check and the server's bind. A
# reservation is a file named after the port in a machine-wide folder,
# created under a flock, so two harnesses running at once never pick the
# same port; a reservation whose owner directory is gone (a run killed
# before it could clean up) is taken back.

ZKR_PORTS_DIR=${ZKR_PORTS_DIR:-/tmp/zkr-ports-$(id -u)}

# The range we pick from: 10000 up to the start of the ephemeral range (or,
# when that starts too low, from its end up to 65535). ZKR_PORTS_RANGE="LO
# HI" sets it instead (a machine whose firewall opens only some ports;
# tests/test_ports.sh, to make a pick predictable).
ports_range() {
  local lo hi
  if [ -n "${ZKR_PORTS_RANGE:-}" ]; then
    echo "$ZKR_PORTS_RANGE"
    return
  fi
  read -r lo hi < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || { lo=32768; hi=60999; }
  if [ "$lo" -gt 12000 ]; then
    echo "10000 $((lo - 1))"
  elif [ "$hi" -lt 64535 ]; then
    echo "$((hi + 1)) 65535"
  else
    # No room outside the ephemeral range: the reservation files and the
    # connect probe still keep harnesses apart, and a taken port restarts.
    echo "10000 65535"
  fi
}

reserve_port() {
  local owner=$1 first last p f
  read -r first last <<< "$(ports_range)"
  mkdir -p "$ZKR_PORTS_DIR" 2>/dev/null
  for _ in $(seq 1 100); do
    p=$((first + (RANDOM * 32768 + RANDOM) % (last - first + 1)))
    f=$ZKR_PORTS_DIR/$p
    # 0 if we now own the reservation; the flock orders us against other
    # harnesses reclaiming a stale one.
    if (
      flock 9
      if [ -e "$f" ]; then
        [ -d "$(cat "$f" 2>/dev/null)" ] && exit 1
        rm -f "$f"
      fi
      (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && exit 1 # in use by something else
      printf '%s\n' "$owner" > "$f"
    ) 9> "$ZKR_PORTS_DIR/.lock"; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

release_ports() {
  local owner=$1 f
  [ -d "$ZKR_PORTS_DIR" ] || return 0
  (
    flock 9
    for f in "$ZKR_PORTS_DIR"/[0-9]*; do
      [ -e "$f" ] && [ "$(cat "$f" 2>/dev/null)" = "$owner" ] && rm -f "$f"
    done
  ) 9> "$ZKR_PORTS_DIR/.lock"
  return 0
}
