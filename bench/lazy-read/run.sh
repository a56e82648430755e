#!/usr/bin/env bash
# Benchmark: lazy reads through a FUSE-mounted remote layer (see bench.mjs for what is measured).
# Usage: bench/lazy-read/run.sh [--runs=5] [--latency-ms=0] [--only=first-byte,sequential,amplification] [--disk-read-ahead=N]. Needs root and /dev/fuse.
# Last line: `ratio <fuse/local>` for sequential reads of a cached 100 MB file (target >= 0.5).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
pnpm --dir "$repo" --filter '@soci-ts/lazy-fs...' build >/dev/null
mkdir -p "$repo/bench/.work/lazy-read"
cd "$repo/bench" && node "$here/bench.mjs" --work="$repo/bench/.work/lazy-read" "$@"
