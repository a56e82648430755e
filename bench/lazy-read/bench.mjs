// Benchmark of lazy reads through FUSE. Blob source: a local-file BlobRangeReader (no registry,
// so the figures are lazy-fs + FUSE costs without network latency; --latency-ms adds a fixed
// delay per range request to imitate one).
// Prints medians of >= 5 runs; the last line is `ratio <fuse/local>` for cached sequential reads.
import { execFile, execFileSync } from 'node:child_process';
import { createReadStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { mountRemoteLayer } from '@soci-ts/lazy-fs';
import { buildZtoc, decodeZtoc, encodeZtoc } from '@soci-ts/ztoc';

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k, v ?? 'true'];
  }),
);
const RUNS = Math.max(5, Number(args.runs ?? 5));
/** --only=first-byte,sequential,amplification runs just those sections (default: all). */
const ONLY = args.only ? new Set(args.only.split(',')) : undefined;
const section = (name) => !ONLY || ONLY.has(name);
const LATENCY_MS = Number(args['latency-ms'] ?? 0);
/** --disk-read-ahead=N: spans loaded from the disk cache ahead of a sequential reader (lazy-fs default when unset). */
const DISK_READ_AHEAD = args['disk-read-ahead'] === undefined ? undefined : Number(args['disk-read-ahead']);
const WORK = args.work ?? join(process.cwd(), '.work', 'lazy-read');
const BIG = 100 * 1024 * 1024;
const SPAN = 1 << 20;

const execFileAsync = promisify(execFile);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

class FileReader {
  constructor(path, size) {
    this.path = path;
    this.size = size;
    this.bytes = 0;
    this.requests = 0;
  }
  async readRange(start, end) {
    if (LATENCY_MS) await new Promise((r) => setTimeout(r, LATENCY_MS));
    const fh = await open(this.path, 'r');
    try {
      const buf = Buffer.alloc(end - start);
      const { bytesRead } = await fh.read(buf, 0, buf.length, start);
      this.bytes += bytesRead;
      this.requests++;
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }
}

/** A tree of real files (/usr/include, /usr/share/doc) plus one 100 MB generated file. */
async function makeLayer() {
  const blob = join(WORK, 'layer.tar.gz');
  const ztocPath = join(WORK, 'layer.ztoc');
  const tree = join(WORK, 'tree');
  if (!existsSync(ztocPath)) {
    console.error('making the layer (tar of /usr/include, /usr/share/doc and a 100 MB file; gzip -6) ...');
    await rm(tree, { recursive: true, force: true });
    await mkdir(join(tree, 'data'), { recursive: true });
    execFileSync('sh', [
      '-c',
      `tar -cf - -C / usr/include usr/share/doc 2>/dev/null | tar -xf - -C "${tree}"`,
    ]);
    const big = Buffer.alloc(BIG);
    let x = 12345;
    for (let i = 0; i < BIG; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      big[i] = (x >>> 16) % 7 === 0 ? x >>> 24 : 97 + ((x >>> 20) % 16);
    }
    writeFileSync(join(tree, 'data/big.bin'), big);
    execFileSync('sh', ['-c', `tar --sort=name -cf - -C "${tree}" . | gzip -6 -n > "${blob}"`]);
    const ztoc = await buildZtoc(createReadStream(blob, { highWaterMark: 1 << 20 }), {
      compression: 'gzip',
      spanSize: SPAN,
    });
    writeFileSync(ztocPath, encodeZtoc(ztoc));
  }
  const digest = `sha256:${execFileSync('sha256sum', [blob]).toString().split(' ')[0]}`;
  return { blob, tree, digest, ztoc: decodeZtoc(readFileSync(ztocPath)) };
}

/**
 * Runs a Python snippet in another process, asynchronously: the FUSE server's process must
 * never read its mount, nor block its event loop while another process does.
 */
async function py(code, ...argv) {
  const { stdout } = await execFileAsync('python3', ['-c', code, ...argv], { maxBuffer: 1 << 26 });
  return JSON.parse(stdout);
}

const FIRST_BYTE = `
import sys, time, json
t = time.perf_counter()
with open(sys.argv[1], 'rb') as f:
    f.read(1)
print(json.dumps((time.perf_counter() - t) * 1000))`;

const SEQUENTIAL = `
import sys, time, json
t = time.perf_counter(); n = 0
with open(sys.argv[1], 'rb', buffering=0) as f:
    while True:
        b = f.read(1 << 20)
        if not b: break
        n += len(b)
print(json.dumps(n / (time.perf_counter() - t)))`;

const DROP_PAGES = `
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.close(fd)
print(0)`;

const READ_ALL = `
import sys, json
n = 0
for p in sys.argv[1:]:
    with open(p, 'rb') as f: n += len(f.read())
print(json.dumps(n))`;

async function withMount(layer, name, options, fn) {
  const mountpoint = join(WORK, 'mnt', name);
  const reader = new FileReader(layer.blob, layer.ztoc.compressedArchiveSize);
  const m = await mountRemoteLayer({
    ztoc: layer.ztoc,
    blob: reader,
    layerDigest: layer.digest,
    mountpoint,
    background: false,
    diskReadAheadSpans: DISK_READ_AHEAD,
    ...options,
  });
  try {
    return await fn(mountpoint, reader, m);
  } finally {
    await m.unmount();
  }
}

const layer = await makeLayer();
const files = layer.ztoc.toc.filter((e) => e.type === 'reg' && e.uncompressedSize > 0);
const small = files.filter((e) => e.uncompressedSize < 64 * 1024);
const rel = (e) => e.name.replace(/^\.\//, '');
let seed = 42;
/** Uniform in [0, 1) (an LCG's high bits: its low bits repeat with short periods). */
const random01 = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32;
};
const rand = (n) => Math.floor(random01() * n);

/** `count` distinct entries drawn at random, each with probability proportional to `weight(e)`. */
function drawWithoutReplacement(entries, count, weight) {
  const left = [...entries];
  const out = [];
  while (out.length < count && left.length > 0) {
    let total = 0;
    for (const e of left) total += weight(e);
    let r = random01() * total;
    let i = 0;
    while (i < left.length - 1 && r >= weight(left[i])) r -= weight(left[i++]);
    out.push(left[i]);
    left.splice(i, 1);
  }
  return out;
}
console.log(
  `layer: ${layer.ztoc.compressedArchiveSize} bytes gzip, ${layer.ztoc.uncompressedArchiveSize} bytes tar, ` +
    `${layer.ztoc.toc.length} entries, ${layer.ztoc.compressionInfo.spanDigests.length} spans of ${SPAN} bytes; ` +
    `blob source: local file${LATENCY_MS ? `, +${LATENCY_MS} ms per request` : ''}`,
);

if (section('first-byte')) {
  // 1. Cold small-file first-byte latency, and what it fetched.
  const latency = [];
  const coldBytes = [];
  for (let i = 0; i < RUNS; i++) {
    await rm(join(WORK, 'cache-cold'), { recursive: true, force: true });
    const file = small[rand(small.length)];
    await withMount(layer, 'cold', { cacheDir: join(WORK, 'cache-cold') }, async (mnt, reader) => {
      latency.push(await py(FIRST_BYTE, join(mnt, rel(file))));
      coldBytes.push(reader.bytes);
    });
  }
  console.log(
    `cold small-file first byte: median ${median(latency).toFixed(2)} ms, fetched median ${median(coldBytes)} bytes`,
  );
}

let warmRatio;
if (section('sequential')) {
  // 2. Sequential read of a fully cached 100 MB file: FUSE vs the same file on local disk.
  //    warm: the file was read once through the mount (kernel_cache keeps its pages), vs local
  //          with its pages cached. cold: fresh mount (kernel page cache empty, span cache full)
  //          vs local with its pages dropped (posix_fadvise DONTNEED): both come from the disk.
  const cacheDir = join(WORK, 'cache-full');
  await withMount(layer, 'fill', { cacheDir }, async (_mnt, _reader, m) => {
    await m.layer.spans.ensureSpans(0, m.layer.spans.spanCount - 1, 'prefetch');
  });
  const localBig = join(layer.tree, 'data/big.bin');
  const rates = { fuseWarm: [], fuseCold: [], localWarm: [], localCold: [] };
  for (let i = 0; i < RUNS; i++) {
    await withMount(layer, 'seq', { cacheDir }, async (mnt, reader) => {
      rates.fuseCold.push(await py(SEQUENTIAL, join(mnt, 'data/big.bin')));
      rates.fuseWarm.push(await py(SEQUENTIAL, join(mnt, 'data/big.bin')));
      if (reader.bytes !== 0) throw new Error('the cached run fetched from the blob');
    });
    await py(DROP_PAGES, localBig);
    rates.localCold.push(await py(SEQUENTIAL, localBig));
    rates.localWarm.push(await py(SEQUENTIAL, localBig));
  }
  const mb = (xs) => `${(median(xs) / 1e6).toFixed(0)} MB/s`;
  console.log(
    `sequential 100 MB, span cache full: FUSE warm ${mb(rates.fuseWarm)} vs local warm ${mb(rates.localWarm)}; ` +
      `FUSE cold page cache ${mb(rates.fuseCold)} vs local cold ${mb(rates.localCold)} ` +
      `(cold ratio ${(median(rates.fuseCold) / median(rates.localCold)).toFixed(3)})`,
  );
  warmRatio = median(rates.fuseWarm) / median(rates.localWarm);
}

if (section('amplification')) {
  // 3. Bytes fetched / bytes read for a random set of files (1 MiB spans): a fresh mount and an
  //    empty span cache per run, 40 distinct files read whole by another process; fetched = blob
  //    bytes (compressed) asked for, read = file bytes (uncompressed) returned. The generated 100 MB
  //    file is left out of both draws (it exists for section 2). Two ways to draw the files:
  //    - uniform over files: every file equally likely. Most files here are small (headers, docs),
  //      and a small file costs a whole span, so this is the small-file worst case.
  //    - size-weighted: a file's chance is proportional to its size, i.e. the files under random
  //      bytes of the layer; this is what reading a random share of the layer's data costs.
  seed = 4242; // the same draws whichever sections ran before
  const pool = files.filter((e) => !rel(e).includes('big.bin'));
  const sizes = pool.map((e) => e.uncompressedSize).sort((a, b) => a - b);
  console.log(
    `files drawn from: ${pool.length} regular files, median size ${median(sizes)} bytes, ` +
      `mean ${Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length)} bytes`,
  );
  const draws = {
    'uniform over files': () => drawWithoutReplacement(pool, 40, () => 1),
    'size-weighted (random bytes)': () => drawWithoutReplacement(pool, 40, (e) => e.uncompressedSize),
  };
  for (const [label, draw] of Object.entries(draws)) {
    const ratios = [];
    const readBytes = [];
    for (let i = 0; i < RUNS; i++) {
      await rm(join(WORK, 'cache-rand'), { recursive: true, force: true });
      const pick = draw();
      await withMount(layer, 'rand', { cacheDir: join(WORK, 'cache-rand') }, async (mnt, reader) => {
        const read = await py(READ_ALL, ...pick.map((e) => join(mnt, rel(e))));
        const want = pick.reduce((a, e) => a + e.uncompressedSize, 0);
        if (read !== want) throw new Error(`read ${read} bytes, the files hold ${want}`);
        ratios.push(reader.bytes / read);
        readBytes.push(read);
      });
    }
    console.log(
      `fetched/read, 40 random files, ${label}: median ${median(ratios).toFixed(3)} ` +
        `(runs ${ratios.map((r) => r.toFixed(2)).join(' ')}; median read ${median(readBytes)} bytes) (target <= 1.5)`,
    );
  }
}
await rm(join(WORK, 'mnt'), { recursive: true, force: true });
if (warmRatio !== undefined) console.log(`ratio ${warmRatio.toFixed(3)}`); // warm FUSE / warm local
