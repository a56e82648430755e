// Throughput of CheckpointBuilder (native zlib and pure JS) vs `gzip -dc`, and span decode latency.
// Usage: pnpm --filter @soci-ts/seekable-gzip build && node bench/build-index.mjs [file.tgz] [spanSize]
// Input example: tar -C / -cf - usr | head -c 200000000 | gzip -6 > /tmp/usr.tgz
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { buildGzipIndex, decodeSpan, decodeSpanSync, spanCount, spanRange } from '../dist/index.js';

const file = process.argv[2] ?? '/tmp/usr.tgz';
const spanSize = Number(process.argv[3] ?? 4 * 1024 * 1024);

/** CPU time (user + system) of this process or of a child, and wall time, in ms. */
async function measure(fn) {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const cpu = process.cpuUsage(cpu0);
  return { wall: performance.now() - t0, cpu: (cpu.user + cpu.system) / 1000, value };
}

function gzipDc() {
  const t0 = performance.now();
  const out = execFileSync('bash', [
    '-c',
    `TIMEFORMAT=%U+%S; { time gzip -dc < '${file}' > /dev/null; } 2>&1`,
  ]);
  const [u, s] = String(out).trim().split('+').map(Number);
  return { wall: performance.now() - t0, cpu: (u + s) * 1000 };
}

const sha256 = () => {
  const h = createHash('sha256');
  return {
    update: (d) => {
      h.update(d);
    },
    digest: () => `sha256:${h.digest('hex')}`,
  };
};

const build = (opts) => {
  let bytes = 0;
  const onData = (c) => {
    bytes += c.length;
  };
  return buildGzipIndex(createReadStream(file, { highWaterMark: 1 << 20 }), {
    spanSize,
    onData,
    ...opts,
  }).then((r) => ({ ...r, bytes }));
};

const gz = gzipDc();
const native = await measure(() => build({}));
const hashed = await measure(() => build({ spanHasher: sha256 }));
const js = await measure(() => build({ inflater: 'js' }));
const mb = native.value.bytes / 1e6;
const row = (name, m) =>
  `${name.padEnd(34)} wall ${m.wall.toFixed(0).padStart(6)} ms  cpu ${m.cpu.toFixed(0).padStart(6)} ms  ` +
  `${(mb / (m.cpu / 1000)).toFixed(0).padStart(4)} MB/s(cpu)  vs gzip -dc ${(gz.cpu / m.cpu).toFixed(2)}x`;
console.log(
  `input ${(statSync(file).size / 1e6).toFixed(1)} MB -> ${mb.toFixed(1)} MB, span ${spanSize}, ${native.value.index.checkpoints.length} checkpoints`,
);
console.log(row('gzip -dc', gz));
console.log(row('CheckpointBuilder (native zlib)', native));
console.log(row('  + sha256 span digests', hashed));
console.log(row('CheckpointBuilder (pure JS, pako)', js));

const blob = readFileSync(file);
const { index } = native.value;
const ids = Array.from({ length: Math.min(20, spanCount(index)) }, (_, i) =>
  Math.floor((i * spanCount(index)) / 20),
);
for (const [name, fn] of [
  ['decodeSpan (native)', (id, c) => decodeSpan(index, id, c)],
  ['decodeSpanSync (JS)', (id, c) => decodeSpanSync(index, id, c)],
]) {
  const m = await measure(async () => {
    for (const id of ids) {
      const r = spanRange(index, id);
      await fn(id, blob.subarray(r.compressedStart, r.compressedEnd));
    }
  });
  console.log(`${name.padEnd(34)} ${(m.wall / ids.length).toFixed(1)} ms per ${spanSize}-byte span (wall)`);
}
