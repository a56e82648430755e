#!/usr/bin/env bash
# Benchmark: is our layer unpacker (unpackLayer from @soci-ts/snapshotter) at least as fast as GNU
# tar on the same layer? Per workload and run, every tool extracts the same cached input (in the
# page cache) into a fresh directory; the tool order rotates every run; `sync` and a quiet disk
# before each timed run; nothing is deleted until all runs are done. Medians of N runs.
# Why: this root fs is ext4 without a journal, where a new inode skips every inode deleted in the
# last 60 s (up to 360 s while its inode-table block is dirty: recently_deleted() in ialloc.c),
# so after a large delete creating files costs up to 10x the CPU for minutes. A canary (2,000
# empty files) detects that state; see bench/README.md.
#
# Usage: bench/unpack/run.sh [--runs N] [--workloads small-files,python,small-files-zstd]
#                            [--no-build] [--max-wait S] [--canary-max S] [--out DIR]
# Last line: `ratio <gnu-tar-seconds/ours-seconds>` for python, tar+gzip (>= 1.0: we are at least
# as fast as `gzip -dc | tar -x`). Results: bench/unpack/results/<stamp>/ (summary.md, times.tsv,
# verify-<workload>.txt). Run as root from anywhere.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

runs=5
workloads="small-files,python,small-files-zstd"
build=1
max_wait=60
canary_max=0.1
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --runs=*) runs="${1#*=}"; shift ;;
    --workloads) workloads="$2"; shift 2 ;;
    --workloads=*) workloads="${1#*=}"; shift ;;
    --no-build) build=0; shift ;;
    --max-wait) max_wait="$2"; shift 2 ;;
    --max-wait=*) max_wait="${1#*=}"; shift ;;
    --canary-max) canary_max="$2"; shift 2 ;;
    --canary-max=*) canary_max="${1#*=}"; shift ;;
    --out) out="$2"; shift 2 ;;
    --out=*) out="${1#*=}"; shift ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unpack: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "unpack: --runs must be a positive integer" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "unpack: run as root (GNU tar keeps owners only as root)" >&2; exit 2; }
IFS=, read -r -a wanted <<<"$workloads"
for w in "${wanted[@]}"; do
  case "$w" in small-files | python | small-files-zstd) ;; *) echo "unpack: unknown workload $w" >&2; exit 2 ;; esac
done

CACHE="${UNPACK_CACHE:-/var/cache/soci-ts/bench/unpack}"
PYTHON_BLOB_DIGEST=bf847311224a27b129bfe89c8f6c2f0b799770f68ca2c3bf723302b59acf6903
DEMO_CACHE="${DEMO_CACHE:-/var/cache/soci-ts/demo}"
MT_GZIP=application/vnd.oci.image.layer.v1.tar+gzip
MT_TAR=application/vnd.oci.image.layer.v1.tar
MT_ZSTD=application/vnd.oci.image.layer.v1.tar+zstd

stamp="$(date +%Y%m%d-%H%M%S)"
out="${out:-$here/results/$stamp}"
[ -e "$out" ] && { echo "unpack: $out exists already" >&2; exit 2; }
mkdir -p "$CACHE" "$out"
work="$(mktemp -d "$CACHE/work.XXXXXX")"
log="$work/tools.log"
: >"$log"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ ! -f "$out/summary.md" ]; then
    # Failed or interrupted: no half results in the repository; show the tools' stderr instead.
    [ -s "$log" ] && { echo "unpack: last lines of the tools' stderr:" >&2; tail -n 20 "$log" >&2; }
    rm -rf "$out"
  fi
  if [ -d "$work" ]; then
    echo "unpack: removing the extracted trees in $work ..." >&2
    rm -rf "$work"
    date +%s >"$CACHE/last-delete"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
notes=()

if [ "$build" = 1 ]; then
  echo "unpack: building @soci-ts/snapshotter ..." >&2
  (cd "$repo" && pnpm exec turbo run build --filter @soci-ts/snapshotter --output-logs=errors-only >/dev/null)
fi
# Every run uses one copy of the built bundle, so a rebuild in the working tree meanwhile cannot
# mix two builds (its dependencies still resolve through packages/snapshotter/node_modules).
pkg="$repo/packages/snapshotter"
[ -f "$pkg/dist/index.js" ] || { echo "unpack: $pkg/dist/index.js is missing; build first" >&2; exit 1; }
mkdir "$work/snapshotter"
cp -r "$pkg/dist" "$pkg/package.json" "$work/snapshotter/"
ln -s "$pkg/node_modules" "$work/snapshotter/node_modules"
export SOCI_UNPACK_MODULE="$work/snapshotter/dist/index.js"
dist_hash="$(cat "$work/snapshotter/dist/"*.js | sha256sum | cut -c1-12)"

# ---------------------------------------------------------------------------------------- inputs
exec {cache_lock}>"$CACHE.lock"
flock "$cache_lock"

# small-files: a generated tree, tarred by GNU tar (numeric owner 0/0, sorted), gzip -6, zstd -3.
small_inputs() {
  [ -f "$CACHE/small-files.done" ] && return 0
  echo "unpack: making the small-files layer in $CACHE (once) ..." >&2
  local tree="$CACHE/small-files.tree"
  rm -rf "$tree" "$CACHE"/small-files.tar*
  node "$here/make-small-files.mjs" "$tree" >"$CACHE/small-files.json"
  (cd "$tree" && tar --sort=name --numeric-owner --owner=0 --group=0 -cf "$CACHE/small-files.tar.tmp" -- *)
  mv "$CACHE/small-files.tar.tmp" "$CACHE/small-files.tar"
  gzip -6 -n -c "$CACHE/small-files.tar" >"$CACHE/small-files.tar.gz.tmp"
  mv "$CACHE/small-files.tar.gz.tmp" "$CACHE/small-files.tar.gz"
  zstd -3 -q -c "$CACHE/small-files.tar" >"$CACHE/small-files.tar.zst.tmp"
  mv "$CACHE/small-files.tar.zst.tmp" "$CACHE/small-files.tar.zst"
  rm -rf "$tree"
  date +%s >"$CACHE/last-delete"
  touch "$CACHE/small-files.done"
}

# python: the demo image's big layer (built by scripts/lib/python-image.sh if missing), and its tar.
PYTHON_GZ=""
python_inputs() {
  local blob="$DEMO_CACHE/python-layout/blobs/sha256/$PYTHON_BLOB_DIGEST"
  if [ ! -s "$blob" ] && [ ! -f "$DEMO_CACHE/.python-image-done" ]; then
    if command -v debootstrap >/dev/null && command -v umoci >/dev/null; then
      echo "unpack: building the demo python image (scripts/lib/python-image.sh, cached in $DEMO_CACHE) ..." >&2
      # shellcheck source=../../scripts/lib/python-image.sh
      (cd "$repo" && source scripts/lib/python-image.sh && build_python_image) || true
    fi
  fi
  if [ ! -s "$blob" ] && [ -f "$DEMO_CACHE/python-layout/index.json" ]; then
    # A rebuilt image has other digests: take the largest layer of its manifest.
    local manifest
    manifest="$(jq -r '.manifests[0].digest' "$DEMO_CACHE/python-layout/index.json" | cut -d: -f2)"
    blob="$DEMO_CACHE/python-layout/blobs/sha256/$(jq -r '.layers | max_by(.size) | .digest' \
      "$DEMO_CACHE/python-layout/blobs/sha256/$manifest" | cut -d: -f2)"
    [ -s "$blob" ] && notes+=("python: the demo layer is not $PYTHON_BLOB_DIGEST (image rebuilt): used $(basename "$blob")")
  fi
  if [ ! -s "$blob" ]; then
    notes+=("python: skipped, the demo image's layer is missing and could not be built (needs debootstrap, umoci and the apt mirror; see scripts/lib/python-image.sh)")
    return 1
  fi
  PYTHON_GZ="$blob"
  local tar="$CACHE/python-$(basename "$blob" | cut -c1-12).tar"
  if [ ! -s "$tar" ]; then
    echo "unpack: decompressing the python layer to $tar (once) ..." >&2
    gzip -dc "$blob" >"$tar.tmp" && mv "$tar.tmp" "$tar"
  fi
}

# sha256:<hex> of a file, cached in $CACHE as <name>.sha256 (recomputed when the file is newer).
digest_of() {
  local file="$1" memo
  memo="$CACHE/$(basename "$file").sha256"
  if [ ! -s "$memo" ] || [ "$memo" -ot "$file" ]; then sha256sum "$file" | cut -c1-64 >"$memo"; fi
  echo "sha256:$(cat "$memo")"
}

active=()
for w in "${wanted[@]}"; do
  case "$w" in
    small-files | small-files-zstd) small_inputs ;;
    python) python_inputs || continue ;;
  esac
  active+=("$w")
done
flock -u "$cache_lock"

# Tools per workload: ours-* is unpackLayer, gnu-* the GNU tar pipeline on the same bytes.
declare -A TOOLS TARFILE LABEL
TARFILE[small-files]="$CACHE/small-files.tar"
TARFILE[small-files-zstd]="$CACHE/small-files.tar"
TOOLS[small-files]="ours-gz gnu-gz ours-tar gnu-tar"
TOOLS[python]="ours-gz gnu-gz ours-tar gnu-tar"
TOOLS[small-files-zstd]="ours-zst gnu-zst"
# unpackLayer decodes gzip with ISA-L's igzip when it is on PATH: then GNU tar with igzip too, to
# tell the decompressor's share from the writer's.
if command -v igzip >/dev/null; then
  TOOLS[small-files]+=" gnu-igz"
  TOOLS[python]+=" gnu-igz"
fi
LABEL[ours-gz]='ours: unpackLayer, tar+gzip'
LABEL[gnu-gz]='GNU: `gzip -dc \| tar -x`'
LABEL[ours-tar]='ours: unpackLayer, tar'
LABEL[gnu-tar]='GNU: `tar -x` of the tar'
LABEL[ours-zst]='ours: unpackLayer, tar+zstd'
LABEL[gnu-igz]='GNU tar, ISA-L: `igzip -dc \| tar -x`'
LABEL[gnu-zst]='GNU: `zstd -dc \| tar -x`'
declare -A REFERENCE=([ours-gz]=gnu-gz [gnu-gz]=gnu-gz [gnu-igz]=gnu-gz [ours-tar]=gnu-tar [gnu-tar]=gnu-tar [ours-zst]=gnu-zst [gnu-zst]=gnu-zst)

input_of() { # workload tool -> the file the tool reads
  case "$2" in
    *-gz | *-igz) if [ "$1" = python ]; then echo "$PYTHON_GZ"; else echo "$CACHE/small-files.tar.gz"; fi ;;
    *-zst) echo "$CACHE/small-files.tar.zst" ;;
    *-tar) echo "${TARFILE[$1]}" ;;
  esac
}
media_of() { case "$1" in *-gz) echo "$MT_GZIP" ;; *-zst) echo "$MT_ZSTD" ;; *-tar) echo "$MT_TAR" ;; esac; }

if [ -n "$PYTHON_GZ" ]; then
  TARFILE[python]="$CACHE/python-$(basename "$PYTHON_GZ" | cut -c1-12).tar"
fi

# zstd: probe once (untimed); skip the workload when unpackLayer does not take zstd yet.
final=()
for w in "${active[@]}"; do
  if [ "$w" = small-files-zstd ]; then
    mkdir "$work/probe-zstd"
    if ! probe="$(node "$here/unpack-once.mjs" "$CACHE/small-files.tar.zst" "$MT_ZSTD" \
      "$(digest_of "$CACHE/small-files.tar.zst")" "$work/probe-zstd" 2>>"$log")"; then
      if [ "$(jq -r '.error // empty' <<<"$probe" 2>/dev/null)" = UNSUPPORTED_MEDIA_TYPE ]; then
        notes+=("small-files-zstd: skipped, unpackLayer throws UNSUPPORTED_MEDIA_TYPE for tar+zstd ($(jq -r .message <<<"$probe"))")
        continue
      fi
      echo "unpack: the zstd probe failed: $probe (see $log)" >&2
      exit 1
    fi
  fi
  final+=("$w")
done
active=("${final[@]}")
[ "${#active[@]}" -gt 0 ] || { printf '%s\n' "${notes[@]}" >&2; echo "unpack: no workload left to run" >&2; exit 1; }

# Disk space: every tree is kept until the end (about 1.5x its tar, plus our spool).
need=0
for w in "${active[@]}"; do
  read -r -a tools <<<"${TOOLS[$w]}"
  need=$((need + $(stat -c %s "${TARFILE[$w]}") * 5 / 2 * ${#tools[@]} * runs))
done
avail=$(($(df --output=avail -B1 "$work" | tail -n1)))
if [ "$avail" -lt "$need" ]; then
  echo "unpack: needs about $((need >> 30)) GiB free in $work, has $((avail >> 30)) GiB; use fewer --runs" >&2
  exit 1
fi

# ------------------------------------------------------------------------------------ measuring
io_some_avg10() { awk '/^some/ {sub("avg10=", "", $2); print $2}' /proc/pressure/io; }
# The canary: seconds to create 2,000 empty files (kept until the end). After a large delete on
# this disk (ours or anyone's) file creation costs ~10x the CPU in the kernel for 1-6 minutes
# (see the top of this file), and /proc/pressure/io does not show it; the canary does.
CANARY=0
canaries=0
canary() {
  local dir="$work/canary/$canaries" t0 t1
  canaries=$((canaries + 1))
  mkdir -p "$dir"
  t0="$(date +%s%N)"
  touch "$dir"/f{1..2000}
  t1="$(date +%s%N)"
  CANARY="$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')"
}
# Waits until the disk is quiet: /proc/pressure/io `some avg10` < 1.0 and the canary under
# --canary-max seconds (0.1; 0.01-0.09 s normally, 0.25-0.5 s in the slow state). At most
# --max-wait seconds, or 400 before the first timed run (the kernel's window is up to 360 s).
WAITED=0
NOT_QUIET=0
wait_io_quiet() {
  local start=$SECONDS limit=$1
  while true; do
    if awk -v p="$(io_some_avg10)" 'BEGIN {exit !(p < 1.0)}'; then
      canary
      awk -v c="$CANARY" -v m="$canary_max" 'BEGIN {exit !(c <= m)}' && break
    fi
    if [ $((SECONDS - start)) -ge "$limit" ]; then
      echo "unpack: disk not quiet after ${limit}s (io some avg10 $(io_some_avg10), canary ${CANARY}s); measuring anyway" >&2
      NOT_QUIET=$((NOT_QUIET + 1))
      break
    fi
    sleep 2
  done
  WAITED=$((SECONDS - start))
}

run_tool() { # workload tool dest -> stdout: ours' JSON line
  local input
  input="$(input_of "$1" "$2")"
  case "$2" in
    gnu-gz) gzip -dc "$input" | tar -x -C "$3" ;;
    gnu-igz) igzip -dc "$input" | tar -x -C "$3" ;;
    gnu-zst) zstd -dc -q "$input" | tar -x -C "$3" ;;
    gnu-tar) tar -x -f "$input" -C "$3" ;;
    ours-*) node "$here/unpack-once.mjs" "$input" "$(media_of "$2")" "$(digest_of "$input")" "$3" ;;
  esac
}

times="$out/times.tsv"
printf 'workload\trun\tposition\ttool\tseconds\twall_s\tuser_s\tsys_s\tprevious\tio_avg10_before\tcanary_s\twaited_s\tload1\tcanary_after_s\n' >"$times"
TIMEFORMAT='%3R %3U %3S'
declare -A ENTRIES DECODER
total_runs=0
for w in "${active[@]}"; do
  read -r -a tools <<<"${TOOLS[$w]}"
  total_runs=$((total_runs + ${#tools[@]} * runs))
done
done_runs=0
for w in "${active[@]}"; do
  read -r -a tools <<<"${TOOLS[$w]}"
  for r in $(seq "$runs"); do
    n=${#tools[@]}
    order=()
    for i in $(seq 0 $((n - 1))); do order+=("${tools[$(((i + r - 1) % n))]}"); done
    previous=-
    for pos in "${!order[@]}"; do
      tool="${order[$pos]}"
      dest="$work/$w/$tool.$r"
      mkdir -p "$dest"
      input="$(input_of "$w" "$tool")"
      cat "$input" >/dev/null
      [ "${tool%%-*}" = ours ] && digest_of "$input" >/dev/null
      sync
      if [ "$done_runs" = 0 ]; then
        last="$(cat "$CACHE/last-delete" 2>/dev/null || echo 0)"
        if [ $(($(date +%s) - last)) -lt 360 ]; then
          echo "unpack: files were deleted in $CACHE $(($(date +%s) - last)) s ago; waiting for new inodes to be cheap again (up to 400 s) ..." >&2
        fi
        wait_io_quiet $((max_wait > 400 ? max_wait : 400))
      else
        wait_io_quiet "$max_wait"
      fi
      avg10="$(io_some_avg10)"
      load1="$(cut -d' ' -f1 /proc/loadavg)"
      before="$CANARY"
      result="$work/result"
      { time run_tool "$w" "$tool" "$dest" >"$result" 2>>"$log"; } 2>"$work/time" || {
        echo "unpack: $tool failed on $w (run $r): $(cat "$result") (see $log)" >&2
        exit 1
      }
      read -r wall user sys <"$work/time"
      canary # right after: a slow state may have begun during the run (others' deletes)
      seconds="$wall"
      if [ "${tool%%-*}" = ours ]; then
        seconds="$(jq -r '.ms / 1000' "$result")"
        ENTRIES[$w]="$(jq -r .entries "$result")"
        DECODER[$tool]="$(jq -r '.decoder // "?"' "$result")"
      fi
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$r" "$((pos + 1))" "$tool" "$seconds" \
        "$wall" "$user" "$sys" "$previous" "$avg10" "$before" "$WAITED" "$load1" "$CANARY" >>"$times"
      done_runs=$((done_runs + 1))
      printf 'unpack: [%d/%d] %s run %d %-8s %6.3f s\n' "$done_runs" "$total_runs" "$w" "$r" "$tool" "$seconds" >&2
      previous="$tool"
    done
  done
done

[ "$NOT_QUIET" = 0 ] || notes+=("$NOT_QUIET runs started on a disk that was not quiet after ${max_wait}s (io_avg10_before, canary_s in times.tsv); a high sys_s there is the slow state")

# ---------------------------------------------------------------------------------- correctness
# Once per workload: our first tree against GNU tar's first tree of the same compression.
declare -A VERDICT
for w in "${active[@]}"; do
  read -r -a tools <<<"${TOOLS[$w]}"
  a="$work/$w/${tools[0]}.1"
  b="$work/$w/${REFERENCE[${tools[0]}]}.1"
  report="$out/verify-$w.txt"
  {
    echo "${LABEL[${tools[0]}]//\\/} (run 1) against ${LABEL[${REFERENCE[${tools[0]}]}]//\\/} (run 1)"
    echo "xattrs are not compared (GNU tar restores none without --xattrs)"
    echo "contents: diff -r --no-dereference"
  } >"$report"
  content_diffs=0
  if ! diff -r --no-dereference "$a" "$b" >"$work/diff" 2>&1; then
    content_diffs="$(grep -c . "$work/diff" || true)"
    sed "s#$work/$w/##g" "$work/diff" | head -n 40 | sed 's/^/  /' >>"$report"
  fi
  echo "content difference lines: $content_diffs" >>"$report"
  root_entry=()
  if [ -n "$(tar -tf "${TARFILE[$w]}" 2>/dev/null | grep -xE '\.?/|\.' || true)" ]; then
    root_entry=(--root-entry)
    echo "the layer has an entry for its root directory: its metadata is compared too" >>"$report"
  fi
  node "$here/compare-trees.mjs" "${root_entry[@]}" "$a" "$b" >>"$report"
  meta="$(tail -n1 "$report")"
  md="$(jq -r .differences <<<"$meta")"
  VERDICT[$w]="$(jq -r --arg c "$content_diffs" '
    (if ($c == "0" and .differences == 0) then "identical" else "**differs**: \($c) content diff lines, \(.differences) metadata differences" end)
    + " (\(.paths) paths; owners, modes, link counts, sizes, symlink targets, mtimes"
    + (if .subMicrosecondMtimes > 0 then "; \(.subMicrosecondMtimes) mtimes differ by < 1 µs" else "" end)
    + (if .rootMtime then "; the root directory mtime is not compared, the layer has no entry for it" else "" end) + ")"' <<<"$meta")"
  [ "$content_diffs" = 0 ] && [ "$md" = 0 ] || notes+=("$w: our tree differs from GNU tar's, see verify-$w.txt")
done

# ------------------------------------------------------------------------------------- summary
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
col() { awk -F'\t' -v w="$1" -v t="$2" -v c="$3" 'NR > 1 && $1 == w && $4 == t {print $c}' "$times"; }
summary="$out/summary.md"
commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
dirty="$(git -C "$repo" status --porcelain -- packages/snapshotter 2>/dev/null | grep -q . && echo ' (packages/snapshotter modified)' || true)"
{
  echo "# bench/unpack $stamp"
  echo
  echo "Commit \`$commit\`$dirty, bundle \`dist/*.js\` sha256 \`$dist_hash\`, $(nproc) cores, $(uname -r), $(tar --version | head -n1), node $(node --version)."
  echo "$runs runs per tool; each run extracts into a fresh directory; the tool order rotates every run."
  echo "Ours: the time inside one \`unpack-once.mjs\` process from the first read to the resolved"
  echo "promise (module loading excluded, as in the daemon). GNU: wall time of the pipeline."
  echo "MB/s: uncompressed tar bytes per second. vs GNU: GNU seconds / our seconds, same compression (>= 1.0: we are as fast)."
  echo "CPU s: median user+sys of the whole process tree (ours: node start included)."
  echo "Slow runs: runs with the canary (2,000 file creations) over ${canary_max} s just before or just after them, i.e."
  echo "runs that may have overlapped the slow state after a large delete (see bench/README.md; sys_s in times.tsv)."
  for w in "${active[@]}"; do
    read -r -a tools <<<"${TOOLS[$w]}"
    tarbytes="$(stat -c %s "${TARFILE[$w]}")"
    compressed="$(stat -c %s "$(input_of "$w" "${tools[0]}")")"
    echo
    echo "## $w"
    echo
    echo "${ENTRIES[$w]:-?} entries, $(awk -v b="$tarbytes" 'BEGIN {printf "%.1f", b / 1e6}') MB tar, $(awk -v b="$compressed" 'BEGIN {printf "%.1f", b / 1e6}') MB compressed. Ours vs GNU tar: ${VERDICT[$w]}."
    echo
    echo "| tool | median s | min-max s | MB/s | vs GNU | CPU s | slow runs |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for t in "${tools[@]}"; do
      m="$(col "$w" "$t" 5 | median)"
      ref="$(col "$w" "${REFERENCE[$t]}" 5 | median)"
      range="$(col "$w" "$t" 5 | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.3f-%.3f", lo, hi}')"
      cpu="$(awk -F'\t' -v w="$w" -v t="$t" 'NR > 1 && $1 == w && $4 == t {print $7 + $8}' "$times" | median)"
      slow="$(awk -F'\t' -v w="$w" -v t="$t" -v m="$canary_max" \
        'NR > 1 && $1 == w && $4 == t && ($11 > m || $14 > m) {n++} END {print n + 0}' "$times")"
      printf '| %s | %s |\n' "${LABEL[$t]}" "$(awk -v m="$m" -v ref="$ref" -v r="$range" -v b="$tarbytes" -v c="$cpu" \
        -v s="$slow" -v n="$runs" 'BEGIN {printf "%.3f | %s | %.1f | %.2f | %.2f | %d/%d", m, r, b / m / 1e6, ref / m, c, s, n}')"
    done
    if [[ " ${tools[*]} " == *" ours-"* ]]; then
      ours_wall="$(col "$w" "${tools[0]}" 6 | median)"
      echo
      echo "Our process, node start and module loading included: median ${ours_wall} s (${LABEL[${tools[0]}]})."
      decoders=()
      for t in "${tools[@]}"; do [ "${t%%-*}" = ours ] && decoders+=("${LABEL[$t]#ours: unpackLayer, } by ${DECODER[$t]:-?}"); done
      echo "Our decompressor (\`decoder\` in its result): $(IFS=,; echo "${decoders[*]}" | sed 's/,/, /g')."
    fi
  done
  if [ "${#notes[@]}" -gt 0 ]; then
    echo
    echo "Notes:"
    echo
    printf -- '- %s\n' "${notes[@]}"
  fi
  echo
  if [[ " ${active[*]} " == *" python "* ]]; then
    awk -v g="$(col python gnu-gz 5 | median)" -v o="$(col python ours-gz 5 | median)" 'BEGIN {printf "ratio %.3f\n", g / o}'
  else
    echo "ratio n/a (python not measured)"
  fi
} >"$summary"
grep -v -e "Removing leading \`/' from" "$log" >"$out/tools.log" || true
[ -s "$out/tools.log" ] || rm -f "$out/tools.log"
cat "$summary"
