#!/usr/bin/env bash
# Benchmark: `soci create` on a multi-layer image (>= 300 MB compressed) in a local docker-registry,
# against `gzip -dc` of the same layers one after another, measured in the same run.
# Usage: bench/create/run.sh [runs=3]. Last line: `ratio <ours/gzip>`, where ours and gzip are
# throughputs (MB/s), i.e. gzip seconds / soci create seconds: 1.0 = as fast as gzip -dc.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="$repo/bench/.work/create"
runs="${1:-3}"
mkdir -p "$work"

pnpm --dir "$repo" --filter soci-cli build >/dev/null
soci=(node "$repo/packages/cli/dist/bin.js")

# ---- the image (cached): layers from parts of /usr and from random data, as an OCI layout ----
layout="$work/layout"
make_layer() { # name, then a command that writes a tar to stdout
  local name="$1"; shift
  [ -s "$work/$name.tar.gz" ] && return
  echo "making layer $name ..." >&2
  "$@" | pigz -6 -n > "$work/$name.tar.gz.tmp"
  mv "$work/$name.tar.gz.tmp" "$work/$name.tar.gz"
}
random_tar() {
  local dir="$work/random-src"
  rm -rf "$dir"; mkdir -p "$dir"
  head -c 120000000 /dev/urandom > "$dir/random.bin"
  tar -cf - -C "$dir" .
  rm -rf "$dir"
}
make_layer 1-usr-python tar -cf - -C / usr/lib/python3.11 usr/share/doc 2>/dev/null
make_layer 2-random random_tar
make_layer 3-usr-bin tar -cf - -C / usr/bin usr/include 2>/dev/null
layers=("$work"/*.tar.gz)

if [ ! -s "$layout/index.json" ]; then
  echo "assembling the OCI layout ..." >&2
  rm -rf "$layout"; mkdir -p "$layout/blobs/sha256"
  diff_ids=(); descs=()
  for l in "${layers[@]}"; do
    d="$(sha256sum "$l" | cut -d' ' -f1)"
    cp "$l" "$layout/blobs/sha256/$d"
    diff_ids+=("\"sha256:$(gzip -dc "$l" | sha256sum | cut -d' ' -f1)\"")
    descs+=("{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$(stat -c %s "$l")}")
  done
  put() { local d; d="$(printf '%s' "$1" | sha256sum | cut -d' ' -f1)"; printf '%s' "$1" > "$layout/blobs/sha256/$d"; echo "$d"; }
  config="{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[$(IFS=,; echo "${diff_ids[*]}")]}}"
  cd_="$(put "$config")"
  manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cd_\",\"size\":${#config}},\"layers\":[$(IFS=,; echo "${descs[*]}")]}"
  md="$(put "$manifest")"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$layout/oci-layout"
  echo "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$md\",\"size\":${#manifest},\"annotations\":{\"org.opencontainers.image.ref.name\":\"bench\"}}]}" > "$layout/index.json"
fi

# ---- a local docker-registry with the image ----
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
regdir="$(mktemp -d)"
cat > "$regdir/config.yml" <<YML
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $regdir/storage } }
http: { addr: "127.0.0.1:$port", secret: bench }
YML
docker-registry serve "$regdir/config.yml" 2>"$regdir/stderr" &
registry_pid=$!
root="$(mktemp -d)"
cleanup() { kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; rm -rf "$regdir" "$root"; }
trap cleanup EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
policy="$regdir/policy.json"; echo '{"default":[{"type":"insecureAcceptAnything"}]}' > "$policy"
ref="127.0.0.1:$port/bench:latest"
skopeo --policy "$policy" copy --quiet --dest-tls-verify=false "oci:$layout:bench" "docker://$ref"

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {print (b - a) / 1e9}'; }

ours=(); gz=()
for _ in $(seq "$runs"); do
  rm -rf "$root"; mkdir -p "$root"
  t0="$(now)"; "${soci[@]}" create "$ref" --root "$root" --quiet >/dev/null; t1="$(now)"
  ours+=("$(secs "$t0" "$t1")")
  t0="$(now)"; for l in "${layers[@]}"; do gzip -dc "$l" >/dev/null; done; t1="$(now)"
  gz+=("$(secs "$t0" "$t1")")
done

compressed="$(cat "${layers[@]}" | wc -c)"
ours_s="$(printf '%s\n' "${ours[@]}" | median)"
gz_s="$(printf '%s\n' "${gz[@]}" | median)"
echo "image: ${#layers[@]} layers, $compressed bytes compressed; $(nproc) cores; runs: $runs"
echo "soci create runs (s): ${ours[*]}"
echo "gzip -dc runs (s):    ${gz[*]}"
awk -v s="$compressed" -v t="$ours_s" 'BEGIN {printf "soci create: median %.2f s, %.1f MB/s (compressed)\n", t, s / t / 1e6}'
awk -v s="$compressed" -v t="$gz_s" 'BEGIN {printf "gzip -dc:    median %.2f s, %.1f MB/s (compressed, layers one after another)\n", t, s / t / 1e6}'
awk -v a="$ours_s" -v b="$gz_s" 'BEGIN {printf "ratio %.3f\n", b / a}'
