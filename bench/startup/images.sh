# Workload images for the startup benchmark, built once and cached as OCI layouts (tag "bench")
# under $BENCH_CACHE. Source after scripts/lib/python-image.sh (for apt_mirror and the python image).
# build_image NAME and build_python_image_shared set LAYOUT to "oci:<dir>:<tag>" for skopeo.

BENCH_CACHE="${BENCH_CACHE:-/var/cache/soci-ts/bench}"

# The python image is the demo's (scripts/lib/python-image.sh). Its builder wipes its cache dir when
# it finds no done-flag, so wait while another process (scripts/demo) is still building it.
build_python_image_shared() {
  local cache="${DEMO_CACHE:-/var/cache/soci-ts/demo}" waited=0
  while [ ! -f "$cache/.python-image-done" ] && [ -f "$cache/debootstrap.log" ] &&
    [ $(($(date +%s) - $(stat -c %Y "$cache/debootstrap.log"))) -lt 600 ] &&
    pgrep -f "debootstrap .*$cache/rootfs" >/dev/null; do
    [ $waited -eq 0 ] && echo "bench: waiting for another build of $cache to finish ..." >&2
    waited=1; sleep 5
  done
  build_python_image || return 1
  LAYOUT="oci:$PYTHON_LAYOUT:demo"
}

# debootstrap_rootfs DIR PACKAGES: a minbase Debian/Ubuntu rootfs from this machine's apt mirror.
debootstrap_rootfs() {
  local dir="$1" include="$2" suite mirror
  suite="$(. /etc/os-release && echo "$VERSION_CODENAME")"
  mirror="$(apt_mirror)"
  [ -n "$mirror" ] || { echo "bench: cannot find this machine's apt mirror" >&2; return 1; }
  mkdir -p "$(dirname "$dir")"
  debootstrap --variant=minbase --include="$include" "$suite" "$dir" "$mirror" >"$dir.debootstrap.log" 2>&1 \
    || { tail -n 20 "$dir.debootstrap.log" >&2; return 1; }
  rm -rf "$dir/var/cache/apt/archives/"*.deb "$dir/var/lib/apt/lists/"* "$dir/dev/"* 2>/dev/null || true
}

# new_layout DIR: an empty umoci image DIR:bench.
new_layout() {
  rm -rf "$1"
  umoci init --layout "$1" >/dev/null
  umoci new --image "$1:bench" >/dev/null
}

# busybox_rootfs DIR: a root with the host's static busybox and its applet links in /bin.
busybox_rootfs() {
  mkdir -p "$1/bin" "$1/tmp" "$1/etc"
  cp /bin/busybox "$1/bin/busybox"
  for a in sh ls cat head md5sum sleep echo; do ln -sf busybox "$1/bin/$a"; done
}

# build_image NAME: the cached image NAME (node, large, small); sets LAYOUT. make_NAME_image DIR TMP
# fills the umoci image DIR/layout:bench (already created) from scratch files in TMP, under set -e.
build_image() {
  local d="$BENCH_CACHE/$1"
  LAYOUT="oci:$d/layout:bench"
  [ -f "$d/.done" ] && return 0
  echo "bench: building the $1 image (cached in $d) ..." >&2
  (
    set -euo pipefail
    rm -rf "$d" && mkdir -p "$d/build"
    new_layout "$d/layout"
    "make_$1_image" "$d/layout" "$d/build"
    umoci gc --layout "$d/layout" >/dev/null
    rm -rf "$d/build"
  ) || return 1
  touch "$d/.done"
}

# node: nodejs from the apt mirror; the app requires built-in modules, then serves HTTP on $PORT and
# exits after answering one request (so "ready" is the first answer, "exit" right after it).
make_node_image() {
  local image="$1:bench" tmp="$2"
  debootstrap_rootfs "$tmp/rootfs" nodejs
  mkdir -p "$tmp/app/app"
  cat >"$tmp/app/app/server.js" <<'JS'
// Loads a broad set of built-in modules, then serves HTTP; ready = the first answer.
const names = ['assert', 'async_hooks', 'buffer', 'child_process', 'cluster', 'crypto', 'dgram', 'dns',
  'events', 'fs', 'http', 'http2', 'https', 'net', 'os', 'path', 'perf_hooks', 'querystring', 'readline',
  'stream', 'string_decoder', 'timers', 'tls', 'url', 'util', 'v8', 'vm', 'worker_threads', 'zlib'];
for (const n of names) require(n);
new Intl.DateTimeFormat('de-DE').format(new Date()); // touches ICU data
const http = require('http');
const server = http.createServer((req, res) => {
  res.setHeader('Connection', 'close');
  res.end('READY\n');
  server.close();
});
server.listen(Number(process.env.PORT || 8080), '127.0.0.1', () => console.log('LISTENING'));
JS
  umoci insert --image "$image" "$tmp/rootfs" / >/dev/null
  umoci insert --image "$image" "$tmp/app" / >/dev/null
  umoci config --image "$image" --config.cmd node --config.cmd /app/server.js >/dev/null
}

# large: busybox plus 1 GiB of incompressible data in two layers (16 shards of 64 MiB, each starting
# with a small text header); the workload reads the headers of 4 shards, then is ready and exits.
make_large_image() {
  local image="$1:bench" tmp="$2" i part
  busybox_rootfs "$tmp/base"
  cat >"$tmp/base/bin/read-headers" <<'SH'
#!/bin/sh
# ML-style start: look at the headers of a few big shards, not their bodies.
for i in 00 05 10 15; do head -c 4096 /data/shard-$i.bin | md5sum >/dev/null || exit 1; done
echo READY
SH
  chmod 755 "$tmp/base/bin/read-headers"
  umoci insert --image "$image" "$tmp/base" / >/dev/null
  for part in 0 1; do
    mkdir -p "$tmp/data$part/data"
    for i in $(seq $((part * 8)) $((part * 8 + 7))); do
      i="$(printf %02d "$i")"
      { printf 'SHARD %s\nformat: float32\nshape: [16384, 1024]\n' "$i"; head -c 67108800 /dev/urandom; } \
        >"$tmp/data$part/data/shard-$i.bin"
    done
    umoci insert --image "$image" "$tmp/data$part" / >/dev/null
    rm -rf "$tmp/data$part"
  done
  umoci config --image "$image" --config.cmd /bin/read-headers >/dev/null
}

# small: busybox plus ~11 MB (gzip) of python sources as assets, one layer just over the 10 MiB zTOC
# threshold; the workload reads two files and is ready.
make_small_image() {
  local image="$1:bench" tmp="$2"
  busybox_rootfs "$tmp/base"
  mkdir -p "$tmp/assets/assets"
  cp -r /usr/lib/python3.11/. "$tmp/assets/assets/"
  rm -rf "$tmp/assets/assets/test"
  find "$tmp/assets" -name __pycache__ -prune -exec rm -rf {} +
  umoci insert --image "$image" "$tmp/base" / >/dev/null
  umoci insert --image "$image" "$tmp/assets" / >/dev/null
  umoci config --image "$image" --config.cmd /bin/sh --config.cmd -c \
    --config.cmd 'cat /assets/os.py /assets/json/__init__.py >/dev/null && echo READY' >/dev/null
}
