# Shell helpers that start the run path on loopback, for scripts/demo and bench/:
# a registry, the soci-ts snapshotter daemon and a private containerd using it.
# Source this file; call stack_init first and stack_stop (or let the EXIT trap) at the end.
# Everything lives under $STACK_DIR; nothing of the machine's own services is touched.

REPO_ROOT="${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
SOCI=(node "$REPO_ROOT/packages/cli/dist/bin.js")
SNAPSHOTTER_BIN="$REPO_ROOT/packages/snapshotter/dist/bin.js"
KEEPER_BIN="$REPO_ROOT/packages/snapshotter/bin/soci-fuse-keeper.cjs"

stack_init() {
  STACK_DIR="$(mktemp -d /tmp/soci-stack.XXXXXX)"
  STACK_PIDS=()
  trap stack_stop EXIT
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for() { # wait_for SECONDS COMMAND...
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "timed out waiting for: $*" >&2; return 1; }
    sleep 0.1
  done
}

# start_registry: Debian's docker-registry on a free loopback port; sets REGISTRY (host:port).
start_registry() {
  local port; port="$(free_port)"
  mkdir -p "$STACK_DIR/registry"
  cat >"$STACK_DIR/registry/config.yml" <<YML
version: 0.1
log: { level: error }
storage: { filesystem: { rootdirectory: $STACK_DIR/registry/data }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$port }
YML
  /usr/bin/docker-registry serve "$STACK_DIR/registry/config.yml" >"$STACK_DIR/registry/log" 2>&1 &
  REGISTRY_PID=$!
  STACK_PIDS+=("$REGISTRY_PID")
  REGISTRY="127.0.0.1:$port"
  wait_for 30 curl -fsS "http://$REGISTRY/v2/"
}

# start_snapshotter [background_fetch=true|false] [record_dir]: sets SNAPSHOTTER_SOCK and METRICS_URL.
# With record_dir, the daemon records the paths containers read there (prefetch.record_dir).
start_snapshotter() {
  local bg="${1:-true}" record="${2:-}" mport; mport="$(free_port)"
  SNAPSHOTTER_SOCK="$STACK_DIR/soci.sock"
  METRICS_URL="http://127.0.0.1:$mport/metrics"
  cat >"$STACK_DIR/soci-snapshotter.toml" <<TOML
root = "$STACK_DIR/soci-root"
socket = "$SNAPSHOTTER_SOCK"
containerd_address = "$STACK_DIR/containerd/containerd.sock"
metrics_address = "127.0.0.1:$mport"
log_level = "${SOCI_LOG_LEVEL:-info}"
[registry.hosts."$REGISTRY"]
plain_http = true
[span_cache]
dir = "$STACK_DIR/soci-root/cache"
[background_fetch]
enabled = $bg
[prefetch]
record_dir = "$record"
[fuse_keeper]
socket = "$STACK_DIR/keeper.sock"
start = false
TOML
  # The FUSE keeper owns the lazy mounts (they outlive a daemon restart): its own process.
  node "$KEEPER_BIN" --socket "$STACK_DIR/keeper.sock" >"$STACK_DIR/soci-fuse-keeper.log" 2>&1 &
  STACK_PIDS+=("$!")
  wait_for 30 test -S "$STACK_DIR/keeper.sock"
  node "$SNAPSHOTTER_BIN" --config "$STACK_DIR/soci-snapshotter.toml" >"$STACK_DIR/soci-snapshotter.log" 2>&1 &
  SNAPSHOTTER_PID=$!
  STACK_PIDS+=("$SNAPSHOTTER_PID")
  wait_for 30 test -S "$SNAPSHOTTER_SOCK"
}

# start_containerd: a private containerd with the daemon as proxy plugin `soci`; sets CTR (array).
# Which containerd: SOCI_TS_CONTAINERD, as in the tests: a release scripts/install-containerd built
# (e.g. v2.2.9), "system" for Debian's 1.6, or a directory with the binaries; default: the newest
# release scripts/install-containerd builds (2.x, the primary target).
start_containerd() {
  local d="$STACK_DIR/containerd" choice="${SOCI_TS_CONTAINERD:-}" bin_dir="" major
  [ -n "$choice" ] || choice="$(bash "$REPO_ROOT/scripts/install-containerd" | awk 'NR == 1 { print $1 }')"
  case "$choice" in
    system) ;;
    /*) bin_dir="$choice" ;;
    *) bin_dir="${SOCI_TS_CONTAINERD_DIR:-/opt/soci-ts/containerd}/$choice/bin" ;;
  esac
  local containerd_cmd="${bin_dir:+$bin_dir/}containerd" ctr_cmd="${bin_dir:+$bin_dir/}ctr"
  CONTAINERD_VERSION="$("$containerd_cmd" --version | awk '{ print $3 }')"
  major="${CONTAINERD_VERSION#v}"
  major="${major%%.*}"
  mkdir -p "$d"
  # 2.x reads config version 3, where the CRI plugin is three plugins.
  local version=2 disabled='"io.containerd.grpc.v1.cri"' transfer=""
  if [ "$major" -ge 2 ]; then
    version=3
    disabled='"io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime"'
    # `ctr image pull --snapshotter soci` goes through the transfer service: it unpacks into the
    # snapshotters its unpack_config lists and passes image labels to those exporting this.
    local platform="linux/$(uname -m | sed 's/x86_64/amd64/; s/aarch64/arm64/')" t="plugins.'io.containerd.transfer.v1.local'"
    transfer="[proxy_plugins.soci.exports]
  enable_remote_snapshot_annotations = \"true\"
[$t]
[[$t.unpack_config]]
  platform = \"$platform\"
  snapshotter = \"overlayfs\"
  differ = \"walking\"
[[$t.unpack_config]]
  platform = \"$platform\"
  snapshotter = \"soci\"
  differ = \"walking\""
  fi
  cat >"$d/config.toml" <<TOML
version = $version
root = "$d/root"
state = "$d/state"
disabled_plugins = [$disabled]
[grpc]
  address = "$d/containerd.sock"
[ttrpc]
  address = "$d/containerd.sock.ttrpc"
[proxy_plugins.soci]
  type = "snapshot"
  address = "$SNAPSHOTTER_SOCK"
$transfer
TOML
  # The release's own directory first on PATH: containerd starts the runc shim it finds there.
  PATH="${bin_dir:+$bin_dir:}$PATH" "$containerd_cmd" --config "$d/config.toml" >"$d/log" 2>&1 &
  CONTAINERD_PID=$!
  STACK_PIDS+=("$CONTAINERD_PID")
  CONTAINERD_SOCK="$d/containerd.sock"
  CTR=("$ctr_cmd" --address "$CONTAINERD_SOCK" -n demo)
  wait_for 30 "${CTR[@]}" version
}

# metric NAME: the value of one counter of the daemon (summed over labels).
metric() {
  curl -fsS "$METRICS_URL" | awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%.0f\n", s + 0 }'
}

stack_stop() {
  set +e
  [ -n "${CTR+x}" ] && { "${CTR[@]}" tasks ls -q 2>/dev/null | xargs -r -n1 "${CTR[@]}" tasks kill -s KILL >/dev/null 2>&1; }
  for ((i = ${#STACK_PIDS[@]} - 1; i >= 0; i--)); do
    kill "${STACK_PIDS[$i]}" 2>/dev/null && wait "${STACK_PIDS[$i]}" 2>/dev/null
  done
  pkill -f "containerd-shim-runc-v2 .*$STACK_DIR/containerd" 2>/dev/null
  if [ -n "${STACK_DIR:-}" ] && [ -d "$STACK_DIR" ]; then
    grep -o " $STACK_DIR[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || fusermount -uz "$m" 2>/dev/null; done
    rm -rf "$STACK_DIR"
  fi
  STACK_PIDS=()
}
