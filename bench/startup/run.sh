#!/usr/bin/env bash
# Startup benchmark: time until a container is ready, full pull vs lazy loading, side by side.
# Usage: bench/startup/run.sh [--runs N] [--rate 100mbit] [--rtt 20ms] [--workloads python,node,large,small]
#                             [--unshaped] [--span-size BYTES] [--prefetch record|none|DIR] [--out DIR] [--no-build]
#                             [--modes full,lazy,lazy-nobg,lazy-prefetch,noindex,noindex-ctr]
# --prefetch: the static prefetch list of mode lazy-prefetch: `record` (default) records it from one
# lazy start per workload (the daemon's prefetch.record_dir), DIR takes DIR/<workload>.paths, `none`
# skips the mode. `noindex` pulls a copy of the image that has no SOCI index (the daemon's parallel
# pull and unpack) with soci pull, `noindex-ctr` the same with `ctr image pull --snapshotter soci`
# (containerd 2.x's transfer service, as CRI pulls). Needs root (network namespace, tc, mounts,
# drop_caches). See bench/README.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
REPO_ROOT="$(cd "$here/../.." && pwd)"

runs=5 rate=100mbit rtt=20ms workloads=python,node,large,small unshaped=0 prefetch=record out="" build=1
span_size="" # soci create's own default (4 MiB) unless given
modes=""     # all but noindex unless given
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --rtt) rtt="$2"; shift 2 ;;
    --workloads) workloads="$2"; shift 2 ;;
    --unshaped) unshaped=1; shift ;;
    --span-size) span_size="$2"; shift 2 ;;
    --prefetch) prefetch="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --modes) modes="$2"; shift 2 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --runs must be a positive integer" >&2; exit 2; }
[[ "$span_size" =~ ^[0-9]*$ ]] || { echo "run.sh: --span-size must be a number of bytes" >&2; exit 2; }
case "$prefetch" in
  record | none) ;;
  *) [ -d "$prefetch" ] || { echo "run.sh: --prefetch takes record, none or a directory of <workload>.paths files" >&2; exit 2; }
     prefetch="$(cd "$prefetch" && pwd)" ;;
esac
rtt_ms="$(python3 -c '
import re, sys
m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s)", sys.argv[1])
if not m: sys.exit("run.sh: --rtt must look like 20ms or 0.1s")
print(float(m.group(1)) * (1 if m.group(2) == "ms" else 1000))' "$rtt")"
IFS=, read -r -a WORKLOADS <<<"$workloads"
for w in "${WORKLOADS[@]}"; do
  case "$w" in python | node | large | small) ;; *) echo "run.sh: unknown workload $w" >&2; exit 2 ;; esac
done
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root" >&2; exit 1; }
out="${out:-$here/results/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)" # absolute: the report runs from another directory
log() { echo "startup-bench: $*" >&2; }

if [ "$build" = 1 ]; then
  log "building soci-ts ..."
  (cd "$REPO_ROOT" && pnpm exec turbo run build --output-logs=errors-only >/dev/null)
fi

source "$REPO_ROOT/scripts/lib/stack.sh"
source "$REPO_ROOT/scripts/lib/python-image.sh"
source "$here/images.sh"
source "$here/net.sh"

# Other work may rebuild packages/*/dist while a long run goes on; the bench runs a private copy of
# the built packages (their node_modules are relative symlinks, so they resolve through the copy).
freeze_build() {
  local frozen="$STACK_DIR/build" p
  mkdir -p "$frozen/packages"
  ln -s "$REPO_ROOT/node_modules" "$frozen/node_modules"
  for p in "$REPO_ROOT"/packages/*/; do
    [ -d "$p/dist" ] || continue
    mkdir -p "$frozen/packages/$(basename "$p")"
    tar -C "$p" --exclude=./src --exclude=./test --exclude=./.turbo -cf - . | tar -C "$frozen/packages/$(basename "$p")" -xf -
  done
  SOCI=(node "$frozen/packages/cli/dist/bin.js")
  SNAPSHOTTER_BIN="$frozen/packages/snapshotter/dist/bin.js"
  BUILD_ID="$(cd "$frozen/packages" && find . -path '*/dist/*' -name '*.js' -type f | sort | xargs cat | sha256sum | cut -c1-12)"
}

# ---- the stack: registry in its namespace, latency proxy, daemon and containerd --------------
stack_init
freeze_build
BENCH_WAITER=""
bench_cleanup() {
  set +e # a failing step must not stop the rest of the cleanup
  if [ -n "$BENCH_WAITER" ]; then kill "$BENCH_WAITER" 2>/dev/null; fi
  stack_stop
  net_down
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# ---- modes --------------------------------------------------------------------------------------
notes=()
if [ -n "$modes" ]; then
  IFS=, read -r -a MODES <<<"$modes"
  for m in "${MODES[@]}"; do
    case "$m" in full | lazy | lazy-nobg | lazy-prefetch | noindex | noindex-ctr) ;; *) echo "run.sh: unknown mode $m" >&2; exit 2 ;; esac
  done
  [[ " ${MODES[*]} " == *" lazy-prefetch "* ]] || prefetch=none
else
  MODES=(full lazy lazy-nobg)
  if [ "$prefetch" = none ]; then
    notes+=("lazy-prefetch not run (--prefetch none)")
  else
    MODES+=(lazy-prefetch)
  fi
fi

net_up

now() { echo "$EPOCHREALTIME"; }

# Images go in over the direct, unshaped path; their SOCI indexes are built and pushed once.
declare -A IMAGE_BYTES
for w in "${WORKLOADS[@]}"; do
  if [ "$w" = python ]; then build_python_image_shared; else build_image "$w"; fi
  log "pushing $w and its SOCI index ..."
  direct="$REGISTRY_DIRECT/bench/$w:1"
  skopeo copy --quiet --dest-tls-verify=false "$LAYOUT" "docker://$direct"
  # The same image without an index (another repository: a referrers lookup finds nothing there).
  skopeo copy --quiet --dest-tls-verify=false "$LAYOUT" "docker://$REGISTRY_DIRECT/bench/$w-noindex:1"
  "${SOCI[@]}" create "$direct" --plain-http --root "$STACK_DIR/soci-store" --quiet ${span_size:+--span-size "$span_size"}
  "${SOCI[@]}" push "$direct" --plain-http --root "$STACK_DIR/soci-store" --quiet
  IMAGE_BYTES[$w]="$(skopeo inspect --tls-verify=false --raw "docker://$direct" |
    jq '[.layers[].size] + [.config.size] | add')"
done

# cold_reset BACKGROUND_FETCH [RECORD_DIR]: containerd and the daemon restarted on empty roots (no
# image, no snapshots, no content, no span cache), page caches dropped.
cold_reset() {
  local pid
  for pid in "${CONTAINERD_PID:-}" "${SNAPSHOTTER_PID:-}"; do
    [ -n "$pid" ] || continue
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  { grep -oE " $STACK_DIR/(containerd|soci-root)[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || fusermount -uz "$m" 2>/dev/null || true
  done
  rm -rf "$STACK_DIR/containerd" "$STACK_DIR/soci-root" "$STACK_DIR/soci.sock"
  sync
  echo 3 >/proc/sys/vm/drop_caches
  start_snapshotter "$1" "${2:-}"
  start_containerd
}

# wait_http PORT: polls until the port answers an HTTP GET; prints the epoch time it did.
wait_http() {
  exec python3 - "$1" <<'PY'
import socket, sys, time
port, deadline = int(sys.argv[1]), time.time() + 900
while time.time() < deadline:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            if s.recv(64).startswith(b"HTTP/"):
                print(f"{time.time():.6f}")
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.01)
sys.exit(1)
PY
}

hwm_bytes() { awk '/^VmHWM:/ { print $2 * 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# measure PROFILE WORKLOAD MODE RUN: one cold start; appends one JSON line to runs.jsonl. Mode
# `record` is a lazy start whose daemon records the paths read (into $STACK_DIR/recorded-WORKLOAD),
# logged to record.jsonl instead; lazy-prefetch starts the image copy whose index has the list.
measure() {
  local profile="$1" w="$2" mode="$3" run="$4"
  local ref="$REGISTRY/bench/$w:1" name="bench-$w-$mode-$run" snap=overlayfs bg=true record="" jsonl="$out/runs.jsonl"
  local t0 t_pulled t_ready t_exit down0 down_ready down_exit d_ready=0 d_exit=0 hwm err=""
  local run_args=() port="" waiter="" ctr_pid line
  case "$mode" in
    lazy-nobg) bg=false ;;
    lazy-prefetch) ref="$REGISTRY/bench/$w-prefetch:1" ;;
    noindex | noindex-ctr) ref="$REGISTRY/bench/$w-noindex:1" ;;
    record) record="$STACK_DIR/recorded-$w" jsonl="$out/record.jsonl" ;;
  esac
  [ "$mode" = full ] || snap=soci
  cold_reset "$bg" "$record"
  if [ "$w" = node ]; then
    port="$(free_port)"
    run_args=(--net-host --env "PORT=$port")
  fi
  local fifo="$STACK_DIR/out.$name"
  rm -f "$fifo" && mkfifo "$fifo"
  down0="$(proxy_down)"

  t0="$(now)"
  if [ -n "$port" ]; then
    wait_http "$port" >"$STACK_DIR/ready.$name" &
    waiter=$!
    BENCH_WAITER=$waiter
  fi
  if [ "$mode" = full ] || [ "$mode" = noindex-ctr ]; then
    timeout 900 "${CTR[@]}" image pull --plain-http --snapshotter "$snap" "$ref" >/dev/null || err="ctr image pull failed"
  else
    timeout 900 "${SOCI[@]}" pull "$ref" --plain-http --address "$CONTAINERD_SOCK" --namespace demo \
      --snapshotter soci --quiet || err="soci pull failed"
  fi
  t_pulled="$(now)"
  if [ -z "$err" ]; then
    timeout 900 "${CTR[@]}" run --rm --snapshotter "$snap" "${run_args[@]}" "$ref" "$name" >"$fifo" 2>"$STACK_DIR/err.$name" &
    ctr_pid=$!
    if [ -n "$port" ]; then
      # The container's own output is not the ready signal here: the first HTTP answer is.
      cat "$fifo" >/dev/null &
      if wait "$waiter"; then t_ready="$(cat "$STACK_DIR/ready.$name")"; else err="never answered HTTP"; fi
    else
      exec 7<"$fifo"
      IFS= read -r line <&7 || true
      t_ready="$(now)"
      cat <&7 >/dev/null & # keep draining, so later output never breaks the pipe
      exec 7<&-
      [ "$line" = READY ] || err="first line was '${line:-<none>}', not READY"
    fi
    down_ready="$(proxy_down)"
    [ "$snap" = soci ] && d_ready="$(metric soci_bytes_fetched_total)"
    wait "$ctr_pid" || err="${err:-ctr run exited $?: $(head -c 300 "$STACK_DIR/err.$name")}"
    t_exit="$(now)"
  fi
  [ -n "$waiter" ] && { kill "$waiter" 2>/dev/null || true; wait "$waiter" 2>/dev/null || true; }
  down_exit="$(proxy_down)"
  [ "$snap" = soci ] && d_exit="$(metric soci_bytes_fetched_total)"
  hwm="$(hwm_bytes "$SNAPSHOTTER_PID")"
  if [ "$snap" = soci ]; then # the daemon's log of this start, for a look at its timeline (not in git)
    mkdir -p "$out/logs" && cp "$STACK_DIR/soci-snapshotter.log" "$out/logs/$profile-$name.log"
  fi
  jq -nc --arg profile "$profile" --arg rate "$PROFILE_RATE" --argjson rtt_ms "$PROFILE_RTT" \
    --arg workload "$w" --arg mode "$mode" --argjson run "$run" --arg err "$err" \
    --argjson image_bytes "${IMAGE_BYTES[$w]}" \
    --arg t0 "$t0" --arg tp "$t_pulled" --arg tr "${t_ready:-}" --arg te "${t_exit:-}" \
    --argjson down0 "$down0" --argjson dr "${down_ready:-0}" --argjson de "$down_exit" \
    --argjson sr "$d_ready" --argjson se "$d_exit" --argjson hwm "${hwm:-0}" '
    def secs(a): if a == "" then null else ((a | tonumber) - ($t0 | tonumber)) end;
    { profile: $profile, rate: $rate, rtt_ms: $rtt_ms, workload: $workload, mode: $mode, run: $run,
      ok: ($err == ""), error: (if $err == "" then null else $err end), image_bytes: $image_bytes,
      pull_s: secs($tp), ready_s: secs($tr), exit_s: secs($te),
      registry_bytes_ready: ($dr - $down0), registry_bytes_exit: ($de - $down0),
      daemon_bytes_ready: $sr, daemon_bytes_exit: $se, daemon_peak_rss_bytes: $hwm }' >>"$jsonl"
  log "$(tail -n1 "$jsonl" | jq -r '"\(.profile) \(.workload) \(.mode) #\(.run): pull \(.pull_s // "-" | tostring | .[0:5])s ready \(.ready_s // "-" | tostring | .[0:5])s exit \(.exit_s // "-" | tostring | .[0:5])s, \((.registry_bytes_ready / 1e6 | floor)) MB before ready\(if .ok then "" else " FAILED: " + .error end)"')"
}

# ---- the prefetch lists and the image copies whose indexes carry them ---------------------------
# prefetch_index WORKLOAD LIST: pushes the image again as bench/WORKLOAD-prefetch:1 (same manifest,
# other repository) with a v1 index built with --prefetch LIST.
prefetch_index() {
  local w="$1" list="$2" src="$REGISTRY_DIRECT/bench/$1:1" dst="$REGISTRY_DIRECT/bench/$1-prefetch:1"
  skopeo copy --quiet --src-tls-verify=false --dest-tls-verify=false "docker://$src" "docker://$dst"
  "${SOCI[@]}" create "$dst" --plain-http --root "$STACK_DIR/soci-store-prefetch" --prefetch "$list" --quiet \
    ${span_size:+--span-size "$span_size"} 2>&1 | sed 's/^/startup-bench: /' >&2
  "${SOCI[@]}" push "$dst" --plain-http --root "$STACK_DIR/soci-store-prefetch" --quiet
}
if [ "$prefetch" != none ]; then
  mkdir -p "$out/prefetch"
  : >"$out/record.jsonl"
  net_shape none 0
  PROFILE_RATE=none PROFILE_RTT=0
  for w in "${WORKLOADS[@]}"; do
    if [ "$prefetch" = record ]; then
      log "recording what $w reads (one lazy start, unshaped) ..."
      measure record "$w" record 1
      cold_reset true # stops the daemon, which closes the recorded list
      cat "$STACK_DIR/recorded-$w/"*.paths >"$out/prefetch/$w.paths"
      notes+=("lazy-prefetch list for $w: recorded from one lazy start ($(wc -l <"$out/prefetch/$w.paths") paths, prefetch/$w.paths)")
    else
      [ -f "$prefetch/$w.paths" ] || { echo "run.sh: no $prefetch/$w.paths" >&2; exit 2; }
      cp "$prefetch/$w.paths" "$out/prefetch/$w.paths"
      notes+=("lazy-prefetch list for $w: $prefetch/$w.paths")
    fi
    prefetch_index "$w" "$out/prefetch/$w.paths"
  done
fi

# ---- the runs: per profile and workload, modes alternate (rotated each run) -------------------
profiles=("shaped $rate $rtt_ms")
[ "$unshaped" = 1 ] && profiles+=("unshaped none 0")
: >"$out/runs.jsonl"
for p in "${profiles[@]}"; do
  read -r PROFILE PROFILE_RATE PROFILE_RTT <<<"$p"
  net_shape "$PROFILE_RATE" "$PROFILE_RTT"
  log "profile $PROFILE: rate $PROFILE_RATE, rtt ${PROFILE_RTT} ms; clients use $REGISTRY"
  for w in "${WORKLOADS[@]}"; do
    for run in $(seq "$runs"); do
      for i in "${!MODES[@]}"; do
        measure "$PROFILE" "$w" "${MODES[$(((i + run - 1) % ${#MODES[@]}))]}" "$run"
      done
    done
  done
done

printf '%s\n' "${notes[@]}" | jq -R . | jq -s \
  --arg runs "$runs" --arg rate "$rate" --argjson rtt_ms "$rtt_ms" --arg host "$(nproc) cores, $(uname -r)" \
  --arg span_size "${span_size:-default (4 MiB)}" --argjson unshaped "$unshaped" \
  --arg when "$(date -u +%FT%TZ)" --arg commit "$(git -C "$REPO_ROOT" rev-parse --short HEAD)" --arg build "$BUILD_ID" \
  '{runs: ($runs | tonumber), rate: $rate, rtt_ms: $rtt_ms, unshaped: ($unshaped == 1), span_size: $span_size,
    host: $host, when: $when, commit: $commit, build: $build, notes: .}' \
  >"$out/meta.json"
(cd "$REPO_ROOT/bench" && node "$here/report.mjs" "$out")
log "results in $out"
