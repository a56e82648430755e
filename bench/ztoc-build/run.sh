#!/usr/bin/env bash
# Benchmark: buildZtoc throughput vs `gzip -dc`, and buildZtoc's peak RSS, on a real gzip -6 layer.
# Usage: bench/ztoc-build/run.sh [runs=5]. Last line: `ratio <ours/gzip>` (target >= 0.8).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="$repo/bench/.work"
runs="${1:-5}"
mkdir -p "$work"

pnpm --dir "$repo" --filter '@soci-ts/ztoc...' build >/dev/null

# A layer of real files (headers, docs, python: many small files and some large), > 100 MB uncompressed.
layer="$work/usr-layer.tar.gz"
if [ ! -s "$layer" ]; then
  echo "making $layer (tar of parts of /usr, gzip -6) ..." >&2
  tar -cf - -C / usr/include usr/share/doc usr/lib/python3.11 2>/dev/null | gzip -6 -n > "$layer.tmp"
  mv "$layer.tmp" "$layer"
fi

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

ours=()
rss=()
for _ in $(seq "$runs"); do
  line="$(cd "$repo/bench" && node "$here/build-once.mjs" "$layer")"
  ours+=("$(jq -r '.seconds' <<<"$line")")
  rss+=("$(jq -r '.maxRssBytes' <<<"$line")")
done
size="$(jq -r '.uncompressedBytes' <<<"$line")"

gz=()
for _ in $(seq "$runs"); do
  t0="$(date +%s%N)"
  gzip -dc "$layer" >/dev/null
  t1="$(date +%s%N)"
  gz+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print (b - a) / 1e9}')")
done

ours_s="$(printf '%s\n' "${ours[@]}" | median)"
gz_s="$(printf '%s\n' "${gz[@]}" | median)"
rss_b="$(printf '%s\n' "${rss[@]}" | sort -g | tail -1)"
echo "layer: $(stat -c %s "$layer") bytes gzip, $size bytes tar, $(jq -r '.files' <<<"$line") entries, $(jq -r '.spans' <<<"$line") spans, zTOC $(jq -r '.ztocBytes' <<<"$line") bytes"
awk -v s="$size" -v t="$ours_s" 'BEGIN {printf "buildZtoc: median %.3f s, %.1f MB/s (uncompressed)\n", t, s / t / 1e6}'
awk -v s="$size" -v t="$gz_s" 'BEGIN {printf "gzip -dc:  median %.3f s, %.1f MB/s (uncompressed)\n", t, s / t / 1e6}'
awk -v r="$rss_b" 'BEGIN {printf "buildZtoc peak RSS: %.1f MiB (max of runs; target <= 200)\n", r / 1048576}'
awk -v a="$ours_s" -v b="$gz_s" 'BEGIN {printf "ratio %.3f\n", b / a}'
