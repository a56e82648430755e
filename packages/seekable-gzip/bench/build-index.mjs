// Throughput of CheckpointBuilder vs `gzip -dc`. Usage: pnpm build && node bench/build-index.mjs [file.tgz] [spanSize]
// Make an input with: tar -C / -cf - usr | head -c 200000000 | gzip -6 > /tmp/usr.tgz
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { buildGzipIndex } from '../dist/index.js';

const file = process.argv[2] ?? '/tmp/usr.tgz';
const spanSize = Number(process.argv[3] ?? 4 * 1024 * 1024);

function time(fn) {
  const t0 = performance.now();
  const r = fn();
  return Promise.resolve(r).then((v) => [performance.now() - t0, v]);
}

const [gzipMs] = await time(() => execFileSync('sh', ['-c', `gzip -dc < '${file}' > /dev/null`]));
let bytes = 0;
const [ourMs, res] = await time(() =>
  buildGzipIndex(createReadStream(file, { highWaterMark: 1 << 20 }), {
    spanSize,
    onData: (c) => (bytes += c.length),
  }),
);
const [hashMs] = await time(() =>
  buildGzipIndex(createReadStream(file, { highWaterMark: 1 << 20 }), {
    spanSize,
    spanHasher: () => {
      const h = createHash('sha256');
      return { update: (d) => h.update(d), digest: () => `sha256:${h.digest('hex')}` };
    },
  }),
);
const mb = bytes / 1e6;
console.log(
  `input ${(statSync(file).size / 1e6).toFixed(1)} MB -> ${mb.toFixed(1)} MB, ${res.index.checkpoints.length} checkpoints`,
);
console.log(`gzip -dc            ${gzipMs.toFixed(0)} ms  ${(mb / (gzipMs / 1000)).toFixed(1)} MB/s`);
console.log(
  `CheckpointBuilder   ${ourMs.toFixed(0)} ms  ${(mb / (ourMs / 1000)).toFixed(1)} MB/s  ratio ${(gzipMs / ourMs).toFixed(2)}x`,
);
console.log(`  + span sha256     ${hashMs.toFixed(0)} ms  ratio ${(gzipMs / hashMs).toFixed(2)}x`);
