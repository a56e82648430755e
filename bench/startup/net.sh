# The benchmark's network: the registry in its own network namespace behind a veth pair, whose
# download direction (and upload, symmetrically) is shaped by `tc tbf`; round-trip time is added by
# latency-proxy.mjs on the host, which is the address every client uses (127.0.0.1:<port>).
# Source after scripts/lib/stack.sh, call net_up once, net_shape per profile; net_down at exit.
# Addresses are our own, inside the namespace we create: host 10.231.77.1, registry 10.231.77.2.

NET_NS="soci-bench-$$"
NET_VETH_HOST="sbh$$"
NET_VETH_NS="sbr$$"
NET_HOST_IP=10.231.77.1
NET_NS_IP=10.231.77.2
NET_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# net_up: namespace, veth, registry inside it. Sets REGISTRY_DIRECT (unshaped, no added latency;
# used to push images) and registers the registry's pid for stack_stop.
net_up() {
  ip netns add "$NET_NS"
  ip link add "$NET_VETH_HOST" type veth peer name "$NET_VETH_NS"
  ip link set "$NET_VETH_NS" netns "$NET_NS"
  ip addr add "$NET_HOST_IP/30" dev "$NET_VETH_HOST"
  ip link set "$NET_VETH_HOST" up
  ip netns exec "$NET_NS" ip addr add "$NET_NS_IP/30" dev "$NET_VETH_NS"
  ip netns exec "$NET_NS" ip link set "$NET_VETH_NS" up
  ip netns exec "$NET_NS" ip link set lo up

  mkdir -p "$STACK_DIR/registry"
  cat >"$STACK_DIR/registry/config.yml" <<YML
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $STACK_DIR/registry/data }, delete: { enabled: true } }
http: { addr: "$NET_NS_IP:5000", secret: bench }
YML
  ip netns exec "$NET_NS" /usr/bin/docker-registry serve "$STACK_DIR/registry/config.yml" \
    >"$STACK_DIR/registry/log" 2>&1 &
  REGISTRY_PID=$!
  STACK_PIDS+=("$REGISTRY_PID")
  REGISTRY_DIRECT="$NET_NS_IP:5000"
  wait_for 30 curl -fsS "http://$REGISTRY_DIRECT/v2/"
}

# tbf burst: 10 ms worth of bytes at the rate, at least 32 KiB (the timer tick needs some slack).
tbf_burst() {
  python3 -c '
import re, sys
m = re.fullmatch(r"(\d+(?:\.\d+)?)(k|m|g)?bit", sys.argv[1].lower())
if not m: sys.exit("bad rate: " + sys.argv[1] + " (use e.g. 100mbit)")
bps = float(m.group(1)) * {None: 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2)]
print(max(32768, int(bps / 8 / 100)))' "$1"
}

# net_shape RATE RTT_MS: RATE like 100mbit, or "none" for an unshaped link; restarts the latency
# proxy with RTT_MS and sets REGISTRY (what clients use) and PROXY_STATS_URL.
net_shape() {
  local rate="$1" rtt_ms="$2" burst
  ip netns exec "$NET_NS" tc qdisc del dev "$NET_VETH_NS" root 2>/dev/null || true
  tc qdisc del dev "$NET_VETH_HOST" root 2>/dev/null || true
  if [ "$rate" != none ]; then
    burst="$(tbf_burst "$rate")"
    ip netns exec "$NET_NS" tc qdisc add dev "$NET_VETH_NS" root tbf rate "$rate" burst "$burst" latency 200ms
    tc qdisc add dev "$NET_VETH_HOST" root tbf rate "$rate" burst "$burst" latency 200ms
  fi
  if [ -n "${PROXY_PID:-}" ]; then kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null || true; fi
  local out="$STACK_DIR/proxy.out"
  : >"$out"
  node "$NET_HERE/latency-proxy.mjs" --target "$REGISTRY_DIRECT" --rtt-ms "$rtt_ms" >"$out" 2>"$STACK_DIR/proxy.err" &
  PROXY_PID=$!
  STACK_PIDS+=("$PROXY_PID")
  wait_for 30 grep -q port "$out"
  REGISTRY="127.0.0.1:$(jq -r .port "$out")"
  PROXY_STATS_URL="http://127.0.0.1:$(jq -r .statsPort "$out")/"
  wait_for 30 curl -fsS "http://$REGISTRY/v2/"
}

# proxy_down: bytes the registry has sent through the proxy so far.
proxy_down() { curl -fsS "$PROXY_STATS_URL" | jq -r .down; }

net_down() {
  ip netns del "$NET_NS" 2>/dev/null || true
  ip link del "$NET_VETH_HOST" 2>/dev/null || true
}
