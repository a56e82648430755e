// Benchmark of lazy reads through FUSE. Blob source: a local-file BlobRangeReader (no registry,
// so the figures are lazy-fs + FUSE costs without network latency; --latency-ms adds a fixed
// delay per range request to imitate one).
// Every workload runs through each FUSE backend asked for (--backend=keeper|fuse-native|both,
// default both; the runs alternate the backends' order) and each output line names its backend.
// The keeper backend talks to a FUSE keeper in a child process (keeper.mjs) that this script
// starts and stops.
// Prints medians of >= 5 runs; the last line is `ratio <fuse/local>` for cached sequential reads
// through the keeper (the daemon's backend) when it ran, the line before it fuse-native's.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { closeSync, createReadStream, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { FuseNativeBackend, KeeperFuseBackend, mountRemoteLayer } from '@soci-ts/lazy-fs';
import { buildZtoc, decodeZtoc, encodeZtoc } from '@soci-ts/ztoc';

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k, v ?? 'true'];
  }),
);
const RUNS = Math.max(5, Number(args.runs ?? 5));
/** --only=first-byte,sequential,amplification,ops runs just those sections (default: all). */
const ONLY = args.only ? new Set(args.only.split(',')) : undefined;
const section = (name) => !ONLY || ONLY.has(name);
const LATENCY_MS = Number(args['latency-ms'] ?? 0);
/** --disk-read-ahead=N: spans loaded from the disk cache ahead of a sequential reader (lazy-fs default when unset). */
const DISK_READ_AHEAD = args['disk-read-ahead'] === undefined ? undefined : Number(args['disk-read-ahead']);
const WORK = args.work ?? join(process.cwd(), '.work', 'lazy-read');
const BIG = 100 * 1024 * 1024;
const SPAN = 1 << 20;
const HERE = dirname(fileURLToPath(import.meta.url));
/** --backend=keeper|fuse-native|both: the FUSE backends every workload runs through. */
const BACKENDS = { both: ['keeper', 'fuse-native'], keeper: ['keeper'], 'fuse-native': ['fuse-native'] }[
  args.backend ?? 'both'
];
if (!BACKENDS) {
  console.error(`--backend=${args.backend}: keeper, fuse-native or both`);
  process.exit(2);
}
/** The backends in the order run `i` uses them: alternating, so drift hits both alike. */
const order = (i) => (i % 2 ? [...BACKENDS].reverse() : BACKENDS);
/** One output line of a backend's figures. */
const say = (backend, text) => console.log(`[${backend}] ${text}`);
const perBackend = (make) => Object.fromEntries(BACKENDS.map((b) => [b, make()]));

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
  const { stdout } = await execFileAsync('python3', ['-c', code, ...argv], { maxBuffer: 1 << 26 }).catch(
    (err) => {
      // Its stderr, not the whole script the error message repeats.
      throw new Error(`a python reader failed: ${String(err.stderr ?? err.message).trim()}`);
    },
  );
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

/**
 * Times small operations through a mount (or the local tree), one batch each, in µs per op:
 * stat() of every listed existing file (first touch: one LOOKUP each, plus one per directory on
 * first use), stat() of distinct missing names (one LOOKUP each), and 4 KiB preads at random
 * aligned offsets in the first 16 MiB of data/big.bin (spans in the daemon's memory after a
 * warm-up pass). O_DIRECT on a mount makes every pread one READ request; the local tree is read
 * from its page cache instead (O_DIRECT there would time the disk).
 */
const OPS = `
import os, sys, time, json, mmap, random
root, existing, missing, big, n, seed, direct = sys.argv[1:8]
n = int(n)
existing = [os.path.join(root, p) for p in open(existing).read().split('\\n') if p]
missing = [os.path.join(root, p) for p in open(missing).read().split('\\n') if p]
REGION = 16 << 20
t0 = time.perf_counter()
for p in existing: os.stat(p)
t1 = time.perf_counter()
for p in missing:
    try: os.stat(p)
    except FileNotFoundError: continue
    raise SystemExit('exists: ' + p)
t2 = time.perf_counter()
fd = os.open(os.path.join(root, big), os.O_RDONLY | (os.O_DIRECT if direct == '1' else 0))
warm = mmap.mmap(-1, 1 << 20)
for o in range(0, REGION, 1 << 20): os.preadv(fd, [warm], o)
rng = random.Random(int(seed))
offsets = [rng.randrange(REGION // 4096) * 4096 for _ in range(n)]
buf = mmap.mmap(-1, 4096)
t3 = time.perf_counter()
for o in offsets:
    if os.preadv(fd, [buf], o) != 4096: raise SystemExit('short read at %d' % o)
t4 = time.perf_counter()
os.close(fd)
print(json.dumps({'stat': (t1 - t0) * 1e6 / len(existing), 'missing': (t2 - t1) * 1e6 / len(missing),
                  'pread': (t4 - t3) * 1e6 / n}))`;

// The keeper backend: a FUSE keeper in a child process (its own thread pool of 64), stopped with
// SIGTERM at the end, on an error, on SIGINT/SIGTERM of this process, and when this process exits
// any other way (and by itself when its stdin closes, should this process be killed).
let keeper;

async function startKeeper() {
  const socketPath = join(WORK, 'keeper.sock');
  const logPath = join(WORK, 'keeper.log');
  const logFd = openSync(logPath, 'w');
  const child = spawn(process.execPath, [join(HERE, 'keeper.mjs'), socketPath], {
    env: { ...process.env, UV_THREADPOOL_SIZE: '64' },
    stdio: ['pipe', 'pipe', logFd],
  });
  closeSync(logFd);
  child.stdin.on('error', () => {});
  const k = { child, socketPath, logPath, stopping: false, died: undefined };
  k.exited = new Promise((done) => {
    child.once('exit', (code, signal) => {
      if (!k.stopping) {
        k.died = `exit code ${code}, signal ${signal}`;
        console.error(`the FUSE keeper exited unexpectedly (${k.died}); see ${logPath}`);
      }
      done();
    });
  });
  keeper = k;
  await new Promise((ok, fail) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('ready\n')) ok();
    });
    child.once('error', fail);
    k.exited.then(() => fail(new Error(`the FUSE keeper did not start (${k.died}); see ${logPath}`)));
  });
  k.backend = new KeeperFuseBackend({ socketPath });
  return k;
}

const running = (k) => k && k.child.exitCode === null && k.child.signalCode === null;

let keeperStopped;
/** Stops the keeper once (later calls wait for the same stop); tells what it complained about. */
function stopKeeper() {
  keeperStopped ??= (async () => {
    if (!running(keeper)) return;
    keeper.stopping = true;
    keeper.child.kill('SIGTERM');
    // A keeper with a session still busy can hang in its exit (a /dev/fuse read the thread pool
    // cannot join); do not wait for it forever.
    const timer = setTimeout(() => keeper.child.kill('SIGKILL'), 20_000);
    await keeper.exited;
    clearTimeout(timer);
    const complaints = readFileSync(keeper.logPath, 'utf8')
      .split('\n')
      .filter((l) => /"level":"(warn|error)"/.test(l));
    if (complaints.length > 0) {
      console.error(`the FUSE keeper logged ${complaints.length} warnings/errors (${keeper.logPath}):`);
      for (const l of complaints.slice(0, 5)) console.error(`  ${l}`);
    }
  })();
  return keeperStopped;
}

process.on('exit', () => {
  if (!running(keeper)) return;
  keeper.stopping = true;
  keeper.child.kill('SIGTERM');
});
for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
]) {
  process.on(signal, () => {
    console.error(`${signal}: stopping the FUSE keeper`);
    stopKeeper().finally(() => process.exit(code));
  });
}

const fuseNative = new FuseNativeBackend();

async function withMount(layer, backend, name, options, fn) {
  if (backend === 'keeper' && keeper.died) throw new Error(`the FUSE keeper is gone (${keeper.died})`);
  const mountpoint = join(WORK, 'mnt', backend, name);
  const reader = new FileReader(layer.blob, layer.ztoc.compressedArchiveSize);
  const m = await mountRemoteLayer({
    ztoc: layer.ztoc,
    blob: reader,
    layer: { digest: layer.digest, size: layer.ztoc.compressedArchiveSize },
    mountpoint,
    background: false,
    diskReadAheadSpans: DISK_READ_AHEAD,
    backend: backend === 'keeper' ? keeper.backend : fuseNative,
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
const rel = (e) => e.name.replace(/^\.\//, '').replace(/\/$/, '');
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

/** A span cache holding every span of the layer (filled once, then only read). */
let fullCache;
async function fullSpanCache() {
  if (fullCache) return fullCache;
  fullCache = join(WORK, 'cache-full');
  await withMount(layer, BACKENDS[0], 'fill', { cache: { root: fullCache } }, async (_mnt, _reader, m) => {
    await m.layer.spans.ensureSpans(0, m.layer.spans.spanCount - 1, 'prefetch');
  });
  return fullCache;
}

console.log(
  `layer: ${layer.ztoc.compressedArchiveSize} bytes gzip, ${layer.ztoc.uncompressedArchiveSize} bytes tar, ` +
    `${layer.ztoc.toc.length} entries, ${layer.ztoc.compressionInfo.spanDigests.length} spans of ${SPAN} bytes; ` +
    `blob source: local file${LATENCY_MS ? `, +${LATENCY_MS} ms per request` : ''}; ` +
    `FUSE backends: ${BACKENDS.join(', ')}`,
);

const warmRatio = {};
try {
  // Before any fuse-native mount: libfuse 2's /dev/fuse fd is inherited by children spawned after it.
  if (BACKENDS.includes('keeper')) await startKeeper();

  if (section('first-byte')) {
    // 1. Cold small-file first-byte latency, and what it fetched (the same file for every backend).
    const latency = perBackend(() => []);
    const coldBytes = perBackend(() => []);
    for (let i = 0; i < RUNS; i++) {
      const file = small[rand(small.length)];
      for (const b of order(i)) {
        await rm(join(WORK, 'cache-cold'), { recursive: true, force: true });
        await withMount(
          layer,
          b,
          'cold',
          { cache: { root: join(WORK, 'cache-cold') } },
          async (mnt, reader) => {
            latency[b].push(await py(FIRST_BYTE, join(mnt, rel(file))));
            coldBytes[b].push(reader.bytes);
          },
        );
      }
    }
    for (const b of BACKENDS) {
      say(
        b,
        `cold small-file first byte: median ${median(latency[b]).toFixed(2)} ms ` +
          `(runs ${latency[b].map((x) => x.toFixed(2)).join(' ')}), fetched median ${median(coldBytes[b])} bytes`,
      );
    }
  }

  if (section('sequential')) {
    // 2. Sequential read of a fully cached 100 MB file: FUSE vs the same file on local disk.
    //    warm: the file was read once through the mount (kernel_cache keeps its pages), vs local
    //          with its pages cached. cold: fresh mount (kernel page cache empty, span cache full)
    //          vs local with its pages dropped (posix_fadvise DONTNEED): both come from the disk.
    const cacheDir = await fullSpanCache();
    const localBig = join(layer.tree, 'data/big.bin');
    const rates = perBackend(() => ({ warm: [], cold: [] }));
    const local = { warm: [], cold: [] };
    for (let i = 0; i < RUNS; i++) {
      for (const b of order(i)) {
        await withMount(layer, b, 'seq', { cache: { root: cacheDir } }, async (mnt, reader) => {
          rates[b].cold.push(await py(SEQUENTIAL, join(mnt, 'data/big.bin')));
          rates[b].warm.push(await py(SEQUENTIAL, join(mnt, 'data/big.bin')));
          if (reader.bytes !== 0) throw new Error('the cached run fetched from the blob');
        });
      }
      await py(DROP_PAGES, localBig);
      local.cold.push(await py(SEQUENTIAL, localBig));
      local.warm.push(await py(SEQUENTIAL, localBig));
    }
    const mb = (xs) => `${(median(xs) / 1e6).toFixed(0)} MB/s`;
    for (const b of BACKENDS) {
      say(
        b,
        `sequential 100 MB, span cache full: FUSE warm ${mb(rates[b].warm)} vs local warm ${mb(local.warm)}; ` +
          `FUSE cold page cache ${mb(rates[b].cold)} vs local cold ${mb(local.cold)} ` +
          `(cold ratio ${(median(rates[b].cold) / median(local.cold)).toFixed(3)})`,
      );
      warmRatio[b] = median(rates[b].warm) / median(local.warm);
    }
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
    //    Each run's draw is read through every backend.
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
      const ratios = perBackend(() => []);
      const readBytes = perBackend(() => []);
      for (let i = 0; i < RUNS; i++) {
        const pick = draw();
        for (const b of order(i)) {
          await rm(join(WORK, 'cache-rand'), { recursive: true, force: true });
          await withMount(
            layer,
            b,
            'rand',
            { cache: { root: join(WORK, 'cache-rand') } },
            async (mnt, reader) => {
              const read = await py(READ_ALL, ...pick.map((e) => join(mnt, rel(e))));
              const want = pick.reduce((a, e) => a + e.uncompressedSize, 0);
              if (read !== want) throw new Error(`read ${read} bytes, the files hold ${want}`);
              ratios[b].push(reader.bytes / read);
              readBytes[b].push(read);
            },
          );
        }
      }
      for (const b of BACKENDS) {
        say(
          b,
          `fetched/read, 40 random files, ${label}: median ${median(ratios[b]).toFixed(3)} ` +
            `(runs ${ratios[b].map((r) => r.toFixed(2)).join(' ')}; median read ${median(readBytes[b])} bytes) ` +
            '(target <= 1.5)',
        );
      }
    }
  }

  if (section('ops')) {
    // 4. The cost of one small operation through the mount, timed in another process (the FUSE
    //    server must not measure while it serves): a fresh mount per run with a full span cache;
    //    see OPS for the three batches. `local` runs the same batches on the extracted tree: the
    //    syscall and interpreter floor.
    const cacheDir = await fullSpanCache();
    const existing = files.map(rel);
    const dirs = layer.ztoc.toc.filter((e) => e.type === 'dir').map(rel);
    const missing = Array.from({ length: 20_000 }, (_, i) => {
      const dir = dirs[i % dirs.length];
      return dir && dir !== '.' ? `${dir}/.no-such-file-${i}` : `.no-such-file-${i}`;
    });
    const existingList = join(WORK, 'ops-existing.txt');
    const missingList = join(WORK, 'ops-missing.txt');
    writeFileSync(existingList, `${existing.join('\n')}\n`);
    writeFileSync(missingList, `${missing.join('\n')}\n`);
    const PREADS = 5000;
    const ops = (root, direct, i) =>
      py(OPS, root, existingList, missingList, 'data/big.bin', String(PREADS), String(1000 + i), direct);
    const us = perBackend(() => ({ stat: [], missing: [], pread: [] }));
    const local = { stat: [], missing: [], pread: [] };
    const add = (to, r) => {
      for (const k of Object.keys(to)) to[k].push(r[k]);
    };
    for (let i = 0; i < RUNS; i++) {
      for (const b of order(i)) {
        await withMount(layer, b, 'ops', { cache: { root: cacheDir } }, async (mnt, reader) => {
          add(us[b], await ops(mnt, '1', i));
          if (reader.bytes !== 0) throw new Error('the ops run fetched from the blob');
        });
      }
      add(local, await ops(layer.tree, '0', i));
    }
    const fmt = (r) =>
      `stat existing ${median(r.stat).toFixed(1)} µs, stat missing ${median(r.missing).toFixed(1)} µs, ` +
      `pread 4 KiB ${median(r.pread).toFixed(1)} µs`;
    const counts = `${existing.length} + ${missing.length} stats, ${PREADS} preads`;
    for (const b of BACKENDS) say(b, `per op (${counts}; pread O_DIRECT, span in memory): ${fmt(us[b])}`);
    console.log(`[local] per op (same; pread from the page cache): ${fmt(local)}`);
  }
} finally {
  await stopKeeper();
}
await rm(join(WORK, 'mnt'), { recursive: true, force: true });
// The keeper's warm FUSE / warm local last (the daemon's backend), fuse-native's before it.
if (warmRatio['fuse-native'] !== undefined && warmRatio.keeper !== undefined) {
  console.log(`fuse-native ratio ${warmRatio['fuse-native'].toFixed(3)}`);
}
const headline = warmRatio.keeper ?? warmRatio['fuse-native'];
if (headline !== undefined) console.log(`ratio ${headline.toFixed(3)}`);
