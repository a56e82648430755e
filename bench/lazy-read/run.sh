#!/usr/bin/env bash
# Benchmark: lazy reads through a FUSE-mounted remote layer (see bench.mjs for what is measured).
# Usage: bench/lazy-read/run.sh [--runs=5] [--latency-ms=0] [--only=first-byte,sequential,amplification,ops]
#        [--backend=keeper|fuse-native|both] [--disk-read-ahead=N]. Needs root and /dev/fuse.
# Every workload runs through each backend asked for (default both; the keeper in a child process,
# keeper.mjs, that bench.mjs starts and stops); each line names its backend.
# Last line: `ratio <fuse/local>` for sequential reads of a cached 100 MB file through the keeper
# (the daemon's backend; fuse-native when only it ran), target >= 0.5; with both, the line before is
# `fuse-native ratio <fuse/local>`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
pnpm --dir "$repo" --filter '@soci-ts/lazy-fs...' build >/dev/null
mkdir -p "$repo/bench/.work/lazy-read"
cd "$repo/bench" && node "$here/bench.mjs" --work="$repo/bench/.work/lazy-read" "$@"
