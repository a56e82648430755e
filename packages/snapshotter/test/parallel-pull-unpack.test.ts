// ParallelPullUnpack (src/soci/parallel-pull-unpack.ts) against a real docker-registry: layers made by
// GNU tar and gzip, pushed with Repository.pushBlob, pulled through a real RegistryClient. The only fake is
// a thin wrapper around the Repository that counts, holds back or corrupts what the registry answers.
import { randomBytes } from 'node:crypto';
import {
  chmod,
  chown,
  link,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Descriptor, RegistryClient, type Repository } from '@soci-ts/oci-referrers';
import { noiseBytes, run, seededRandom, startRegistry, type TestRegistry, waitUntil } from '@soci-ts/testing';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config.js';
import {
  ParallelPullUnpack,
  type ParallelPullUnpackConfig,
  type UnpackLayerRequest,
} from '../src/soci/parallel-pull-unpack.js';
import { UnpackError } from '../src/unpack/errors.js';

const GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const KiB = 1024;
const logger = pino({ level: 'silent' });

let registry: TestRegistry;
let client: RegistryClient;
let repo: Repository;
/** Staging dirs, mountpoints, layer sources: all on one file system (rename(2) must move them). */
let scratch: string;
let counter = 0;

/** A layer pushed to the registry, with GNU tar's extraction of it to compare against. */
interface Layer {
  descriptor: Descriptor;
  blob: Buffer;
  expected: string;
}

/** 4 layers of small trees, with a file of 100-250 KB in some (so some are larger than 64 KiB). */
let small: Layer[];
/** 4 layers of ~1 MB each (a file of noise that gzip cannot shrink), for range-request tests. */
let big: Layer[];

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'soci-ppu-test-'));
  registry = await startRegistry();
  client = new RegistryClient({ hosts: { [registry.host]: { plainHttp: true } } });
  repo = client.repository(`${registry.host}/test/parallel-pull`);
  small = [];
  for (let i = 0; i < 4; i++) small.push(await makeLayer(100 + i, i % 2 ? 100_000 + i * 50_000 : 0));
  big = [];
  for (let i = 0; i < 4; i++) big.push(await makeLayer(200 + i, 1_000_000 + i * 10_000));
});

afterAll(async () => {
  await client?.close();
  await registry?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

// ---- layers ----

async function freshDir(label: string): Promise<string> {
  const dir = join(scratch, `${label}-${counter++}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** A random tree (dirs, files of random modes, owners and times, a symlink, a hardlink, an empty dir). */
async function randomTree(seed: number, bigFile: number): Promise<string> {
  const src = await freshDir('src');
  const rnd = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!;
  const dirs = ['', `d${seed}`, `d${seed}/sub`, 'etc', 'usr/share/doc'];
  for (const d of dirs) await mkdir(join(src, d), { recursive: true });
  const files: string[] = [];
  const count = 4 + Math.floor(rnd() * 6);
  for (let i = 0; i < count; i++) {
    const path = join(pick(dirs), `f${seed}-${i}.${pick(['txt', 'bin', 'conf'])}`);
    await writeFile(join(src, path), randomBytes(Math.floor(rnd() * 20_000)));
    await chmod(join(src, path), pick([0o644, 0o600, 0o755, 0o4755, 0o640]));
    if (rnd() < 0.3) await chown(join(src, path), 1000 + i, 2000 + i);
    const t = 1_600_000_000 + Math.floor(rnd() * 10_000_000);
    await utimes(join(src, path), t, t);
    files.push(path);
  }
  if (bigFile) await writeFile(join(src, 'big.bin'), noiseBytes(bigFile, seed));
  await symlink(`../${files[0]}`, join(src, `d${seed}`, 'link'));
  await link(join(src, files[1]!), join(src, `hard-${seed}`));
  await mkdir(join(src, 'empty'), { mode: 0o700 });
  return src;
}

/** tar (POSIX format) + gzip of a random tree, pushed; and `tar -x` of it into a directory of its own. */
async function makeLayer(seed: number, bigFile: number): Promise<Layer> {
  const src = await randomTree(seed, bigFile);
  const file = join(scratch, `layer-${seed}-${counter++}.tar`);
  await run('tar', ['--format=posix', '--numeric-owner', '-C', src, '-cf', file, '.']);
  await run('gzip', ['-n', file]);
  const blob = await readFile(`${file}.gz`);
  const expected = await freshDir('expected');
  await run('tar', ['-xz', '--same-owner', '-p', '--numeric-owner', '-f', `${file}.gz`, '-C', expected]);
  const descriptor = await repo.pushBlob(blob, { mediaType: GZIP });
  expect(descriptor.size).toBe(blob.length);
  return { descriptor, blob, expected };
}

interface NodeFacts {
  type: string;
  mode?: string;
  uid: number;
  gid: number;
  size?: number;
  content?: string;
  target?: string;
  mtimeMs?: string;
  links?: string[];
}

/** Everything a layer defines about each path of a tree (the root included, as ''). */
async function readTree(root: string): Promise<Record<string, NodeFacts>> {
  const facts: Record<string, NodeFacts> = {};
  const inodes = new Map<bigint, string[]>();
  const visit = async (path: string) => {
    const abs = join(root, path);
    const st = await lstat(abs, { bigint: true });
    const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'other';
    const f: NodeFacts = { type, uid: Number(st.uid), gid: Number(st.gid) };
    if (type !== 'symlink') f.mode = (Number(st.mode) & 0o7777).toString(8);
    // Not the root's: rename(2) to another parent rewrites its `..` entry, which updates its mtime.
    if (type !== 'symlink' && path !== '') f.mtimeMs = (st.mtimeNs / 1_000_000n).toString();
    if (type === 'file') {
      const bytes = await readFile(abs);
      f.size = bytes.length;
      f.content = bytes.toString('base64').slice(0, 64) + bytes.length;
      if (st.nlink > 1n) inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), path]);
    }
    if (type === 'symlink') f.target = await readlink(abs);
    facts[path] = f;
    if (type === 'dir') {
      for (const name of (await readdir(abs)).sort()) await visit(path ? `${path}/${name}` : name);
    }
  };
  await visit('');
  for (const paths of inodes.values()) for (const p of paths) facts[p]!.links = paths.filter((q) => q !== p);
  return facts;
}

async function expectLayerAt(mountpoint: string, layer: Layer): Promise<void> {
  const want = await readTree(layer.expected);
  expect(Object.keys(want).length).toBeGreaterThan(8);
  expect(await readTree(mountpoint)).toEqual(want);
}

// ---- the registry, seen through an instrumented Repository ----

interface RangeCall {
  digest: string;
  start: number;
  end: number;
}

interface Instrument {
  repo: Repository;
  /** Digests in the order they were first asked of the registry (a fetchBlob or a range). */
  requested: string[];
  fetchBlobCalls: string[];
  rangeCalls: RangeCall[];
  /** Range requests in flight now / at most, in total and per group (see `groupOf`). */
  ranges: Gauge;
  /** fetchBlob streams open (from the call until the stream is consumed or closed), likewise. */
  streams: Gauge;
  /** Blobs whose bytes come back with one byte flipped (after the client's own checks). */
  corrupt: Set<string>;
  /** Every request waits for this before it goes to the registry (it must honour the signal). */
  hold?: (digest: string, signal: AbortSignal | undefined) => Promise<void>;
  /** Signals of the requests that were held. */
  heldSignals: AbortSignal[];
  /** Milliseconds between the chunks of a fetchBlob stream (so that streams overlap if they may). */
  chunkDelayMs: number;
}

class Gauge {
  now = 0;
  max = 0;
  private readonly nowOf = new Map<string, number>();
  readonly maxOf = new Map<string, number>();
  constructor(private readonly groupOf: (digest: string) => string) {}
  up(digest: string): () => void {
    const group = this.groupOf(digest);
    this.now++;
    this.max = Math.max(this.max, this.now);
    const n = (this.nowOf.get(group) ?? 0) + 1;
    this.nowOf.set(group, n);
    this.maxOf.set(group, Math.max(this.maxOf.get(group) ?? 0, n));
    let down = false;
    return () => {
      if (down) return;
      down = true;
      this.now--;
      this.nowOf.set(group, this.nowOf.get(group)! - 1);
    };
  }
}

function flipped(bytes: Uint8Array): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[copy.length >> 1]! ^= 0xff;
  return copy;
}

/** An object that delegates to the real Repository, with fetchBlob and blobReader instrumented. */
function instrument(real: Repository, groupOf: (digest: string) => string = () => 'all'): Instrument {
  const ins: Instrument = {
    repo: Object.create(real) as Repository,
    requested: [],
    fetchBlobCalls: [],
    rangeCalls: [],
    ranges: new Gauge(groupOf),
    streams: new Gauge(groupOf),
    corrupt: new Set(),
    heldSignals: [],
    chunkDelayMs: 0,
  };
  const asked = (digest: string) => {
    if (!ins.requested.includes(digest)) ins.requested.push(digest);
  };
  const hold = async (digest: string, signal: AbortSignal | undefined) => {
    if (!ins.hold) return;
    if (signal) ins.heldSignals.push(signal);
    await ins.hold(digest, signal);
  };
  ins.repo.fetchBlob = async (blob, options) => {
    const digest = typeof blob === 'string' ? blob : blob.digest;
    ins.fetchBlobCalls.push(digest);
    asked(digest);
    const closed = ins.streams.up(digest);
    let inner: Readable;
    try {
      await hold(digest, options?.signal);
      inner = await real.fetchBlob(blob, options);
    } catch (err) {
      closed();
      throw err;
    }
    const corrupt = ins.corrupt.has(digest);
    const out = Readable.from(
      (async function* () {
        try {
          let first = true;
          for await (const chunk of inner as AsyncIterable<Buffer>) {
            if (ins.chunkDelayMs) await sleep(ins.chunkDelayMs);
            yield first && corrupt ? Buffer.from(flipped(chunk)) : chunk;
            first = false;
          }
        } finally {
          closed();
          inner.destroy();
        }
      })(),
      { objectMode: false },
    );
    out.on('close', closed);
    return out;
  };
  ins.repo.blobReader = (descriptor) => {
    const reader = real.blobReader(descriptor);
    const { digest } = descriptor;
    return {
      size: reader.size,
      readRange: async (start, end, options) => {
        ins.rangeCalls.push({ digest, start, end });
        asked(digest);
        const done = ins.ranges.up(digest);
        try {
          await hold(digest, options?.signal);
          const bytes = await reader.readRange(start, end, options);
          return start === 0 && ins.corrupt.has(digest) ? flipped(bytes) : bytes;
        } finally {
          done();
        }
      },
    };
  };
  return ins;
}

/** Waits until the signal aborts (rejecting with its reason) or `until` resolves. */
function heldUntil(signal: AbortSignal | undefined, until: Promise<unknown> = new Promise(() => {})) {
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal?.reason);
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    void until.then(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

/**
 * A hold for every request until `count()` has reached `n` once (then never again): proves that `n`
 * requests can be in flight at the same moment. Gives up after `ms`, so a limit that is too strict
 * makes the test fail on its assertions instead of hanging.
 */
function barrier(n: number, count: () => number, ms = 15_000) {
  let open = false;
  let opened: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    opened = resolve;
  });
  const timer = setTimeout(() => {
    open = true;
    opened();
  }, ms);
  return (_digest: string, signal: AbortSignal | undefined) => {
    if (!open && count() >= n) {
      open = true;
      clearTimeout(timer);
      opened();
    }
    return open ? Promise.resolve() : heldUntil(signal, gate);
  };
}

/** A promise with its resolve, for holding a request until the test lets it go. */
function latch(): { promise: Promise<void>; release: () => void } {
  let release: () => void = () => {};
  const promise = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { promise, release };
}

function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---- the unit ----

function config(overrides: Partial<ParallelPullUnpackConfig> = {}): ParallelPullUnpackConfig {
  return { ...defaultConfig().parallelPullUnpack, ...overrides };
}

interface Setup {
  pull: ParallelPullUnpack;
  staging: string;
}

async function setup(overrides: Partial<ParallelPullUnpackConfig> = {}, staging?: string): Promise<Setup> {
  const dir = staging ?? join(await freshDir('work'), 'staging');
  return { pull: new ParallelPullUnpack(config(overrides), dir, logger), staging: dir };
}

/** A Prepare of `layers[index]` of `image` into a fresh empty mountpoint. */
async function prepare(
  pull: ParallelPullUnpack,
  ins: Instrument,
  image: string,
  layers: readonly Layer[],
  index: number,
  extra: Partial<UnpackLayerRequest> = {},
) {
  const mountpoint = extra.mountpoint ?? (await freshDir('mnt'));
  const result = await pull.unpackInto({
    repo: ins.repo,
    image,
    layers: layers.map((l) => l.descriptor),
    index,
    mountpoint,
    signal: new AbortController().signal,
    ...extra,
  });
  return { result, mountpoint };
}

/** A staged layer that is complete: its fs dir filled and unpackLayer's work dir gone. */
async function stagedComplete(staging: string): Promise<number> {
  let complete = 0;
  for (const name of await readdir(staging).catch(() => [])) {
    const entries = await readdir(join(staging, name)).catch(() => [] as string[]);
    const fs = await readdir(join(staging, name, 'fs')).catch(() => [] as string[]);
    if (fs.length > 0 && !entries.some((e) => e.includes('.unpack-'))) complete++;
  }
  return complete;
}

async function expectRejects(promise: Promise<unknown>): Promise<unknown> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a rejection').toBeDefined();
  return err;
}

// ---- tests ----

describe('a Prepare per layer, bottom first (as containerd does)', () => {
  it.each<[string, Partial<ParallelPullUnpackConfig>]>([
    ['one request per layer (default chunk size)', {}],
    ['range requests of 64 KiB for the larger layers', { concurrentDownloadChunkSize: 64 * KiB }],
  ])('gives each mountpoint what tar -x makes of its layer, and leaves staging empty: %s', async (_, o) => {
    const { pull, staging } = await setup(o);
    const ins = instrument(repo);
    try {
      for (let i = 0; i < small.length; i++) {
        const { result, mountpoint } = await prepare(pull, ins, 'sha256:image-1', small, i);
        await expectLayerAt(mountpoint, small[i]!);
        expect(result.decoder).not.toBe('none');
        expect(result.entries).toBeGreaterThan(8);
        expect(result.waitedMs).toBeGreaterThanOrEqual(0);
      }
      expect(await readdir(staging)).toEqual([]);
      if (o.concurrentDownloadChunkSize) expect(ins.rangeCalls.length).toBeGreaterThan(0);
      else expect(ins.rangeCalls).toEqual([]);
    } finally {
      await pull.close();
    }
  });
});

describe('the first Prepare starts the layers above it', () => {
  it.each([
    ['one request per layer', 0],
    ['range requests', 64 * KiB],
  ])('%s: layers 1..3 are asked for before layer 0 is done, and each byte is fetched once', async (_, chunk) => {
    // No unpack limits: every layer above may start at once.
    const { pull, staging } = await setup({
      concurrentDownloadChunkSize: chunk,
      maxConcurrentUnpacks: 0,
      maxConcurrentUnpacksPerImage: 0,
    });
    const ins = instrument(repo);
    const above = small.slice(1).map((l) => l.descriptor.digest);
    const allAsked = waitUntil(
      'layers 1..3 asked for',
      async () => above.every((d) => ins.requested.includes(d)),
      15_000,
    );
    allAsked.catch(() => {});
    // Layer 0's bytes wait until the layers above have been asked for (at most 15 s).
    ins.hold = async (digest) => {
      if (digest === small[0]!.descriptor.digest) await allAsked.catch(() => {});
    };
    try {
      const { mountpoint } = await prepare(pull, ins, 'sha256:image-2', small, 0);
      const askedWhenLayer0Returned = [...ins.requested];
      expect(askedWhenLayer0Returned).toEqual(expect.arrayContaining(above));
      await expectLayerAt(mountpoint, small[0]!);
      ins.hold = undefined;
      for (let i = 1; i < small.length; i++) {
        const { mountpoint: mp } = await prepare(pull, ins, 'sha256:image-2', small, i);
        await expectLayerAt(mp, small[i]!);
      }
      // Every blob (or every range of it) was asked of the registry exactly once.
      const keys = [...ins.fetchBlobCalls, ...ins.rangeCalls.map((r) => `${r.digest}@${r.start}-${r.end}`)];
      expect(keys.length).toBe(new Set(keys).size);
      expect(new Set(ins.requested)).toEqual(new Set(small.map((l) => l.descriptor.digest)));
      for (const layer of small) {
        const { digest, size } = layer.descriptor;
        const fetched = ins.fetchBlobCalls.filter((d) => d === digest).length;
        const ranged = ins.rangeCalls
          .filter((r) => r.digest === digest)
          .reduce((n, r) => n + r.end - r.start, 0);
        expect(fetched * size + ranged, digest).toBe(size);
      }
      expect(await readdir(staging)).toEqual([]);
    } finally {
      await pull.close();
    }
  });

  it('a Prepare of a higher layer starts only the layers above it, not the ones below', async () => {
    const { pull, staging } = await setup({ maxConcurrentUnpacks: 0, maxConcurrentUnpacksPerImage: 0 });
    const ins = instrument(repo);
    try {
      const { mountpoint } = await prepare(pull, ins, 'sha256:image-3', small, 2);
      await expectLayerAt(mountpoint, small[2]!);
      await prepare(pull, ins, 'sha256:image-3', small, 3);
      expect(ins.requested.sort()).toEqual([small[2]!.descriptor.digest, small[3]!.descriptor.digest].sort());
      expect(await readdir(staging)).toEqual([]);
    } finally {
      await pull.close();
    }
  });
});

describe('limits', () => {
  /** Two images of two layers each, all four Prepares at once; the images' layers are distinct. */
  async function twoImagesAtOnce(
    layers: Layer[],
    overrides: Partial<ParallelPullUnpackConfig>,
    setHold: (ins: Instrument) => void,
  ): Promise<Instrument> {
    const { pull, staging } = await setup(overrides);
    const imageOf = new Map(layers.map((l, i) => [l.descriptor.digest, i < 2 ? 'x' : 'y']));
    const ins = instrument(repo, (digest) => imageOf.get(digest)!);
    setHold(ins);
    try {
      const x = layers.slice(0, 2);
      const y = layers.slice(2, 4);
      // Bottom first per image, as containerd does; both images at once.
      const pullImage = async (image: string, ls: Layer[]) => {
        for (let i = 0; i < ls.length; i++) {
          const { mountpoint } = await prepare(pull, ins, image, ls, i);
          await expectLayerAt(mountpoint, ls[i]!);
        }
      };
      await Promise.all([pullImage('sha256:image-x', x), pullImage('sha256:image-y', y)]);
      expect(await readdir(staging)).toEqual([]);
    } finally {
      await pull.close();
    }
    return ins;
  }

  it('maxConcurrentUnpacksPerImage: 1 unpacks one layer of an image at a time (two images: one each)', async () => {
    const ins = await twoImagesAtOnce(
      small,
      { maxConcurrentUnpacksPerImage: 1, maxConcurrentUnpacks: 0, concurrentDownloadChunkSize: 0 },
      (i) => {
        i.chunkDelayMs = 2;
        // Two streams open at once must be possible: one of each image.
        i.hold = barrier(2, () => i.streams.now);
      },
    );
    expect(ins.streams.maxOf.get('x')).toBe(1);
    expect(ins.streams.maxOf.get('y')).toBe(1);
    expect(ins.streams.max).toBe(2);
  });

  it('maxConcurrentUnpacksPerImage: 1 serializes the layers a Prepare starts (one image of four)', async () => {
    const { pull } = await setup({
      maxConcurrentUnpacksPerImage: 1,
      maxConcurrentUnpacks: 0,
      concurrentDownloadChunkSize: 0,
    });
    const ins = instrument(repo);
    ins.chunkDelayMs = 2;
    try {
      for (let i = 0; i < small.length; i++) {
        const { mountpoint } = await prepare(pull, ins, 'sha256:image-4', small, i);
        await expectLayerAt(mountpoint, small[i]!);
      }
      expect(ins.streams.max).toBe(1);
      expect(ins.fetchBlobCalls.length).toBe(4);
    } finally {
      await pull.close();
    }
  });

  it('maxConcurrentUnpacks: 1 unpacks one layer at a time over all images', async () => {
    const ins = await twoImagesAtOnce(
      small,
      { maxConcurrentUnpacks: 1, maxConcurrentUnpacksPerImage: 0, concurrentDownloadChunkSize: 0 },
      (i) => {
        i.chunkDelayMs = 2;
      },
    );
    expect(ins.streams.max).toBe(1);
  });

  it('maxConcurrentDownloads: 2 keeps at most 2 range requests in flight over everything', async () => {
    const ins = await twoImagesAtOnce(
      big,
      {
        maxConcurrentDownloads: 2,
        maxConcurrentDownloadsPerImage: 0,
        maxConcurrentUnpacks: 0,
        maxConcurrentUnpacksPerImage: 0,
        concurrentDownloadChunkSize: 64 * KiB,
      },
      (i) => {
        i.hold = barrier(2, () => i.ranges.now);
      },
    );
    expect(ins.fetchBlobCalls).toEqual([]);
    expect(ins.rangeCalls.length).toBeGreaterThanOrEqual(4 * 15);
    expect(ins.ranges.max).toBe(2);
  });

  it('maxConcurrentDownloadsPerImage: 2 keeps at most 2 range requests of each image in flight', async () => {
    const ins = await twoImagesAtOnce(
      big,
      {
        maxConcurrentDownloads: 0,
        maxConcurrentDownloadsPerImage: 2,
        maxConcurrentUnpacks: 0,
        maxConcurrentUnpacksPerImage: 0,
        concurrentDownloadChunkSize: 64 * KiB,
      },
      (i) => {
        // Four at once must be possible: two of each image.
        i.hold = barrier(4, () => i.ranges.now);
      },
    );
    expect(ins.ranges.maxOf.get('x')).toBe(2);
    expect(ins.ranges.maxOf.get('y')).toBe(2);
    expect(ins.ranges.max).toBe(4);
  });

  it('maxConcurrentDownloadsPerImage also counts the single requests of small layers', async () => {
    const { pull } = await setup({
      maxConcurrentDownloads: 0,
      maxConcurrentDownloadsPerImage: 1,
      maxConcurrentUnpacks: 0,
      maxConcurrentUnpacksPerImage: 0,
      concurrentDownloadChunkSize: 0,
    });
    const ins = instrument(repo);
    ins.chunkDelayMs = 2;
    try {
      for (let i = 0; i < small.length; i++) {
        const { mountpoint } = await prepare(pull, ins, 'sha256:image-5', small, i);
        await expectLayerAt(mountpoint, small[i]!);
      }
      expect(ins.streams.max).toBe(1);
    } finally {
      await pull.close();
    }
  });
});

describe('a layer whose bytes do not match its digest', () => {
  it.each([
    ['one request', 0],
    ['range requests', 64 * KiB],
  ])('%s: DIGEST_MISMATCH, nothing left behind, and the next Prepare fetches it afresh', async (_, chunk) => {
    const { pull, staging } = await setup({ concurrentDownloadChunkSize: chunk });
    const ins = instrument(repo);
    const layer = big[0]!;
    const { digest } = layer.descriptor;
    ins.corrupt.add(digest);
    try {
      const mountpoint = await freshDir('mnt');
      const err = await expectRejects(prepare(pull, ins, 'sha256:image-6', [layer], 0, { mountpoint }));
      expect(err).toBeInstanceOf(UnpackError);
      expect((err as UnpackError).code, (err as Error).message).toBe('SNAPSHOTTER_DIGEST_MISMATCH');
      expect(await readdir(mountpoint)).toEqual([]);
      expect(await readdir(staging)).toEqual([]);
      const asked = ins.fetchBlobCalls.length + ins.rangeCalls.length;
      expect(asked).toBeGreaterThan(0);

      ins.corrupt.delete(digest);
      await prepare(pull, ins, 'sha256:image-6', [layer], 0, { mountpoint });
      await expectLayerAt(mountpoint, layer);
      expect(ins.fetchBlobCalls.length + ins.rangeCalls.length).toBe(2 * asked);
      expect(await readdir(staging)).toEqual([]);
    } finally {
      await pull.close();
    }
  });

  it('a layer fetched ahead that failed is not handed to its Prepare: that one fetches it again', async () => {
    const { pull, staging } = await setup({ maxConcurrentUnpacks: 0, maxConcurrentUnpacksPerImage: 0 });
    const ins = instrument(repo);
    const layers = small.slice(0, 2);
    const upper = layers[1]!.descriptor.digest;
    ins.corrupt.add(upper);
    try {
      const { mountpoint } = await prepare(pull, ins, 'sha256:image-7', layers, 0);
      await expectLayerAt(mountpoint, layers[0]!);
      // The corrupt layer's job fails by itself and removes what it staged.
      // (its blob was asked for and read to the end, and staging is empty again).
      await waitUntil(
        'the failed job to clean up',
        async () =>
          ins.fetchBlobCalls.includes(upper) &&
          ins.streams.now === 0 &&
          (await readdir(staging)).length === 0,
        15_000,
      );
      expect(ins.fetchBlobCalls.filter((d) => d === upper)).toHaveLength(1);
      await sleep(50);
      ins.corrupt.delete(upper);
      const { mountpoint: mp } = await prepare(pull, ins, 'sha256:image-7', layers, 1);
      await expectLayerAt(mp, layers[1]!);
      expect(ins.fetchBlobCalls.filter((d) => d === upper)).toHaveLength(2);
    } finally {
      await pull.close();
    }
  });
});

describe('an aborted Prepare', () => {
  it('rejects, leaves the mountpoint empty, and hands its job to the next Prepare (no second fetch)', async () => {
    const { pull, staging } = await setup();
    const ins = instrument(repo);
    const layer = small[1]!;
    const { digest } = layer.descriptor;
    const gate = latch();
    ins.hold = (_, signal) => heldUntil(signal, gate.promise);
    try {
      const mountpoint = await freshDir('mnt');
      const gaveUp = new AbortController();
      const first = prepare(pull, ins, 'sha256:image-8', [layer], 0, { mountpoint, signal: gaveUp.signal });
      first.catch(() => {});
      await waitUntil('the blob to be asked for', async () => ins.requested.includes(digest), 15_000);
      const reason = new Error('containerd cancelled the Prepare');
      gaveUp.abort(reason);
      expect(await expectRejects(first)).toBe(reason);
      expect(await readdir(mountpoint)).toEqual([]);

      // The job goes on and finishes in staging, not on the mountpoint.
      gate.release();
      await waitUntil('the layer to be staged', async () => (await stagedComplete(staging)) === 1, 15_000);
      expect(await readdir(mountpoint)).toEqual([]);

      const { result } = await prepare(pull, ins, 'sha256:image-8', [layer], 0, { mountpoint });
      await expectLayerAt(mountpoint, layer);
      expect(result.entries).toBeGreaterThan(8);
      expect(ins.fetchBlobCalls).toEqual([digest]);
      expect(await readdir(staging)).toEqual([]);
    } finally {
      await pull.close();
    }
  });

  it('a Prepare aborted while its job still runs: the next Prepare takes over the same job', async () => {
    const { pull, staging } = await setup();
    const ins = instrument(repo);
    const layer = small[2]!;
    const { digest } = layer.descriptor;
    const gate = latch();
    ins.hold = (_, signal) => heldUntil(signal, gate.promise);
    try {
      const mountpoint = await freshDir('mnt');
      const gaveUp = new AbortController();
      const first = prepare(pull, ins, 'sha256:image-9', [layer], 0, { mountpoint, signal: gaveUp.signal });
      first.catch(() => {});
      await waitUntil('the blob to be asked for', async () => ins.requested.includes(digest), 15_000);
      gaveUp.abort(new Error('gave up'));
      await expectRejects(first);
      // The job is still held in the registry when the next Prepare comes.
      const second = prepare(pull, ins, 'sha256:image-9', [layer], 0, { mountpoint });
      await sleep(20);
      gate.release();
      await second;
      await expectLayerAt(mountpoint, layer);
      expect(ins.fetchBlobCalls).toEqual([digest]);
      expect(ins.heldSignals.every((s) => !s.aborted)).toBe(true);
      expect(await readdir(staging)).toEqual([]);
    } finally {
      await pull.close();
    }
  });

  it('a Prepare whose signal is already aborted rejects at once and leaves the mountpoint empty', async () => {
    const { pull, staging } = await setup();
    const ins = instrument(repo);
    const layer = small[3]!;
    try {
      const mountpoint = await freshDir('mnt');
      const reason = new Error('already cancelled');
      const err = await expectRejects(
        prepare(pull, ins, 'sha256:image-10', [layer], 0, { mountpoint, signal: AbortSignal.abort(reason) }),
      );
      expect(err).toBe(reason);
      expect(await readdir(mountpoint)).toEqual([]);
      await prepare(pull, ins, 'sha256:image-10', [layer], 0, { mountpoint });
      await expectLayerAt(mountpoint, layer);
      expect(ins.fetchBlobCalls).toEqual([layer.descriptor.digest]);
      expect(await readdir(staging)).toEqual([]);
    } finally {
      await pull.close();
    }
  });

  it('an aborted Prepare whose layer already has another job (same layer twice in the image) leaves nothing staged', async () => {
    const { pull, staging } = await setup({ maxConcurrentUnpacks: 0, maxConcurrentUnpacksPerImage: 0 });
    const ins = instrument(repo);
    const layer = small[0]!;
    // The same blob twice (an image that adds the same files twice): two snapshots, two jobs.
    const layers = [layer, layer];
    const gate = latch();
    ins.hold = (_, signal) => heldUntil(signal, gate.promise);
    try {
      const gaveUp = new AbortController();
      const first = prepare(pull, ins, 'sha256:image-16', layers, 0, { signal: gaveUp.signal });
      first.catch(() => {});
      // Index 0's job and index 1's (started ahead) are both in the registry now.
      await waitUntil('both jobs to ask for the blob', async () => ins.fetchBlobCalls.length === 2, 15_000);
      gaveUp.abort(new Error('containerd cancelled the Prepare'));
      await expectRejects(first);
      gate.release();
      const { mountpoint: mp0 } = await prepare(pull, ins, 'sha256:image-16', layers, 0);
      await expectLayerAt(mp0, layer);
      const { mountpoint: mp1 } = await prepare(pull, ins, 'sha256:image-16', layers, 1);
      await expectLayerAt(mp1, layer);
      // The aborted Prepare's own job cannot be handed on (index 1's job has the digest's slot):
      // it must be stopped, or its staged layer-* dir would stay in staging for good.
      await waitUntil(
        'the staging dir to be empty again',
        async () => ins.streams.now === 0 && (await readdir(staging)).length === 0,
        10_000,
      );
    } finally {
      await pull.close();
    }
  });
});

describe('close() and restarts', () => {
  it('also stops the job a Prepare is waiting for', async () => {
    const { pull, staging } = await setup();
    const ins = instrument(repo);
    const layer = small[3]!;
    const signals: AbortSignal[] = [];
    // The layer hangs in the registry until its request is aborted.
    ins.hold = async (_, signal) => {
      signals.push(signal!);
      await heldUntil(signal);
    };
    const gaveUp = new AbortController();
    const waiting = prepare(pull, ins, 'sha256:image-17', [layer], 0, { signal: gaveUp.signal });
    waiting.catch(() => {});
    await waitUntil('the blob to be asked for', async () => signals.length === 1, 15_000);
    try {
      await within(30_000, pull.close(), 'close()');
      // close() stops the job a Prepare has claimed too, not only the unclaimed ones.
      expect(signals[0]!.aborted).toBe(true);
      await expectRejects(waiting);
      expect(await readdir(staging)).toEqual([]);
    } finally {
      gaveUp.abort(new Error('test over'));
    }
  });

  /**
   * Layer 0 prepared; layer 1 fetched ahead and staged, unclaimed; layers 2 and 3 hanging in the
   * registry (until their requests are aborted). Then close().
   */
  async function closeWhileFetchingAhead(image: string) {
    const { pull, staging } = await setup({ maxConcurrentUnpacks: 0, maxConcurrentUnpacksPerImage: 0 });
    const ins = instrument(repo);
    const hung = new Set([small[2]!.descriptor.digest, small[3]!.descriptor.digest]);
    const hungSignals: AbortSignal[] = [];
    ins.hold = async (digest, signal) => {
      if (!hung.has(digest)) return;
      hungSignals.push(signal!);
      await heldUntil(signal);
    };
    const { mountpoint } = await prepare(pull, ins, image, small, 0);
    await expectLayerAt(mountpoint, small[0]!);
    await waitUntil('layer 1 to be staged', async () => (await stagedComplete(staging)) === 1, 15_000);
    await waitUntil('layers 2 and 3 to be asked for', async () => hungSignals.length === 2, 15_000);
    expect(hungSignals.some((s) => s.aborted)).toBe(false);
    await within(30_000, pull.close(), 'close()');
    return { staging, hungSignals };
  }

  it('stops the running jobs (their requests are aborted) and removes everything staged', async () => {
    const { staging, hungSignals } = await closeWhileFetchingAhead('sha256:image-11');
    expect(hungSignals.every((s) => s.aborted)).toBe(true);
    await waitUntil('the staging dir to be empty', async () => (await readdir(staging)).length === 0, 10_000);
    await sleep(100);
    expect(await readdir(staging)).toEqual([]);
  });

  it('has removed everything staged by the time it resolves', async () => {
    const { staging } = await closeWhileFetchingAhead('sha256:image-18');
    // close() resolves only once the staged, unclaimed layer 1 is removed.
    expect(await readdir(staging)).toEqual([]);
  });

  it('a new ParallelPullUnpack on the same staging dir removes what was left there before', async () => {
    const staging = join(await freshDir('work'), 'staging');
    await mkdir(join(staging, 'layer-old', 'fs', 'etc'), { recursive: true });
    await writeFile(join(staging, 'layer-old', 'fs', 'etc', 'passwd'), 'root:x:0:0\n');
    await writeFile(join(staging, 'stray-file'), 'left over');
    const { pull } = await setup({}, staging);
    const ins = instrument(repo);
    try {
      const { mountpoint } = await prepare(pull, ins, 'sha256:image-12', [small[0]!], 0);
      await expectLayerAt(mountpoint, small[0]!);
      expect(await readdir(staging)).toEqual([]);
    } finally {
      await pull.close();
    }
  });

  it('a new ParallelPullUnpack creates a staging dir that does not exist yet', async () => {
    const staging = join(await freshDir('work'), 'not', 'there', 'yet');
    const { pull } = await setup({}, staging);
    const ins = instrument(repo);
    try {
      const { mountpoint } = await prepare(pull, ins, 'sha256:image-13', [small[1]!], 0);
      await expectLayerAt(mountpoint, small[1]!);
      expect(await readdir(staging)).toEqual([]);
    } finally {
      await pull.close();
    }
  });
});

describe('how a layer is downloaded', () => {
  it('larger than a chunk: range requests covering it; up to one chunk: a single fetchBlob', async () => {
    // The chunk size is exactly the middle layer's size: that one is not larger than a chunk.
    const layers = [small[0]!, small[1]!, big[0]!];
    const sizes = layers.map((l) => l.descriptor.size);
    expect(sizes[0]).toBeLessThan(sizes[1]!);
    expect(sizes[1]).toBeLessThan(sizes[2]!);
    const chunk = sizes[1]!;
    const { pull } = await setup({ concurrentDownloadChunkSize: chunk });
    const ins = instrument(repo);
    try {
      for (let i = 0; i < layers.length; i++) {
        const { mountpoint } = await prepare(pull, ins, 'sha256:image-14', layers, i);
        await expectLayerAt(mountpoint, layers[i]!);
      }
      expect(ins.fetchBlobCalls.sort()).toEqual(
        [layers[0]!.descriptor.digest, layers[1]!.descriptor.digest].sort(),
      );
      const big0 = layers[2]!.descriptor;
      expect(ins.rangeCalls.every((r) => r.digest === big0.digest)).toBe(true);
      const ranges = ins.rangeCalls.map((r) => [r.start, r.end]).sort((a, b) => a[0]! - b[0]!);
      const want: number[][] = [];
      for (let start = 0; start < big0.size; start += chunk)
        want.push([start, Math.min(big0.size, start + chunk)]);
      expect(ranges).toEqual(want);
      expect(want.length).toBeGreaterThan(1);
    } finally {
      await pull.close();
    }
  });

  it('concurrentDownloadChunkSize: 0 fetches every layer with one fetchBlob', async () => {
    const layers = [small[2]!, big[1]!];
    const { pull } = await setup({ concurrentDownloadChunkSize: 0 });
    const ins = instrument(repo);
    try {
      for (let i = 0; i < layers.length; i++) {
        const { mountpoint } = await prepare(pull, ins, 'sha256:image-15', layers, i);
        await expectLayerAt(mountpoint, layers[i]!);
      }
      expect(ins.rangeCalls).toEqual([]);
      expect(ins.fetchBlobCalls.sort()).toEqual(layers.map((l) => l.descriptor.digest).sort());
    } finally {
      await pull.close();
    }
  });
});
