import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { codesOf } from '@soci-ts/errors';
import { layerSpans } from '@soci-ts/ztoc';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DiskSpanCache, LazyFsError, RemoteLayer, type RemoteLayerOptions } from '../src/index.js';
import {
  type BuiltLayer,
  buildLayer,
  compressibleBytes,
  FaultyReader,
  FileBlobReader,
  tempDir,
  writeTree,
} from './helpers.js';

const SPAN = 64 * 1024;
const files: Record<string, Uint8Array> = {};
let gz: BuiltLayer;
let plain: BuiltLayer;
let work: string;

beforeAll(async () => {
  work = await tempDir('remote');
  const sizes = [0, 1, 511, 512, 4096, 65_535, 65_536, 200_000, 1_000_000, 3_000_000];
  sizes.forEach((size, i) => {
    files[`dir${i % 3}/file-${i}.bin`] = compressibleBytes(size, i + 1);
  });
  files['big/random.bin'] = new Uint8Array(require_random(700_000));
  await writeTree(join(work, 'root'), files);
  gz = await buildLayer(join(work, 'root'), join(work, 'layer'), { spanSize: SPAN });
  plain = await buildLayer(join(work, 'root'), join(work, 'plain'), {
    spanSize: SPAN,
    compression: 'uncompressed',
  });
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function require_random(n: number): Uint8Array {
  // Incompressible data: spans made of stored deflate blocks.
  const out = new Uint8Array(n);
  let x = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function layerOf(built: BuiltLayer, extra: Partial<RemoteLayerOptions> = {}) {
  const reader = new FileBlobReader(built.blobPath, built.size);
  const layer = new RemoteLayer({
    layer: { digest: built.digest, size: built.size },
    ztoc: built.ztoc,
    blob: reader,
    retryDelayMs: 1,
    ...extra,
  });
  return { layer, reader };
}

describe('RemoteLayer reads', () => {
  for (const kind of ['gzip', 'uncompressed'] as const) {
    it(`serves every file byte-exact (${kind})`, async () => {
      const { layer } = layerOf(kind === 'gzip' ? gz : plain);
      for (const [path, bytes] of Object.entries(files)) {
        const got = await layer.read(path, 0, bytes.length + 10);
        expect(Buffer.from(got).equals(Buffer.from(bytes)), path).toBe(true);
      }
      expect(layer.stats().verifyFailures).toBe(0);
    });
  }

  it('serves random ranges byte-exact (property)', async () => {
    const { layer } = layerOf(gz, { memoryBudgetBytes: 3 * SPAN });
    const paths = Object.keys(files);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...paths),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 300_000 }),
        async (path, at, length) => {
          const bytes = files[path]!;
          const offset = Math.floor(at * bytes.length);
          const got = await layer.read(path, offset, length);
          expect(Buffer.from(got).equals(Buffer.from(bytes.subarray(offset, offset + length)))).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('reads by zTOC index as by path', async () => {
    const { layer } = layerOf(gz);
    const index = gz.ztoc.toc.findIndex((e) => e.name.endsWith('file-7.bin'));
    const got = await layer.read(index, 10, 100);
    expect(Buffer.from(got).equals(Buffer.from(files['dir1/file-7.bin']!.subarray(10, 110)))).toBe(true);
  });

  it('rejects paths that are missing or not files with typed errors', async () => {
    const { layer } = layerOf(gz);
    await expect(layer.read('nope', 0, 1)).rejects.toMatchObject({ code: 'LAZYFS_NOT_FOUND', errno: 2 });
    await expect(layer.read('dir0', 0, 1)).rejects.toMatchObject({ code: 'LAZYFS_NOT_A_FILE' });
  });

  it('fetches adjacent missing spans of one read with one request', async () => {
    const { layer, reader } = layerOf(gz, { maxCoalesceBytes: 64 * 1024 * 1024 });
    const bytes = files['dir0/file-9.bin']!; // 3 MB: many 64 KiB spans
    await layer.read('dir0/file-9.bin', 0, bytes.length);
    expect(reader.requests.length).toBe(1);
    const limited = layerOf(gz, { maxCoalesceBytes: 1 });
    await limited.layer.read('dir0/file-9.bin', 0, bytes.length);
    expect(limited.reader.requests.length).toBeGreaterThan(10);
  });

  it('shares one fetch among concurrent readers of the same span', async () => {
    const { layer, reader } = layerOf(gz);
    const path = 'dir2/file-8.bin';
    const bytes = files[path]!;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => layer.read(path, (i * 37_000) % bytes.length, 50_000)),
    );
    results.forEach((got, i) => {
      const offset = (i * 37_000) % bytes.length;
      expect(Buffer.from(got).equals(Buffer.from(bytes.subarray(offset, offset + 50_000)))).toBe(true);
    });
    const fetched = reader.requests.reduce((n, r) => n + (r.end - r.start), 0);
    const spans = layer.spans;
    const { first, last } = spans.spansOfRange(
      layer.tree.lookup(`/${path}`)!.dataOffset,
      layer.tree.lookup(`/${path}`)!.dataOffset + bytes.length,
    );
    expect(fetched).toBeLessThanOrEqual(spans.compressedBytes(first, last));
  });

  it('serves many concurrent readers of different files', async () => {
    const { layer } = layerOf(gz, { memoryBudgetBytes: 4 * SPAN });
    const paths = Object.keys(files);
    const jobs = Array.from({ length: 60 }, (_, i) => paths[i % paths.length]!);
    const got = await Promise.all(jobs.map((p) => layer.read(p, 0, files[p]!.length)));
    for (const [i, bytes] of got.entries()) {
      expect(Buffer.from(bytes).equals(Buffer.from(files[jobs[i] as string]!))).toBe(true);
    }
  });
});

describe('faults', () => {
  it('refetches a span whose digest does not match and serves only verified bytes', async () => {
    const faulty = new FaultyReader(new FileBlobReader(gz.blobPath, gz.size));
    faulty.faults = ['corrupt', 'truncate'];
    const { layer } = layerOf(gz, { blob: faulty });
    const got = await layer.read('dir0/file-9.bin', 0, 100_000);
    expect(Buffer.from(got).equals(Buffer.from(files['dir0/file-9.bin']!.subarray(0, 100_000)))).toBe(true);
    expect(layer.stats().verifyFailures).toBeGreaterThanOrEqual(1);
  });

  for (const fault of ['corrupt', 'truncate', 'throw'] as const) {
    it(`fails with EIO while the fault lasts (${fault}) and recovers after`, async () => {
      const faulty = new FaultyReader(new FileBlobReader(gz.blobPath, gz.size));
      const failures: number[] = [];
      const { layer } = layerOf(gz, {
        blob: faulty,
        metrics: { onVerifyFailure: (id) => failures.push(id) },
      });
      faulty.always = fault;
      const err = await layer.read('dir1/file-4.bin', 0, 4096).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LazyFsError);
      expect((err as LazyFsError).errno).toBe(5);
      expect((err as LazyFsError).code).toBe(
        fault === 'corrupt' ? 'LAZYFS_SPAN_VERIFY_FAILED' : 'LAZYFS_SPAN_FETCH_FAILED',
      );
      if (fault === 'corrupt') expect(failures.length).toBe(3);
      faulty.always = undefined;
      const got = await layer.read('dir1/file-4.bin', 0, 4096);
      expect(Buffer.from(got).equals(Buffer.from(files['dir1/file-4.bin']!))).toBe(true);
    });
  }

  it('never returns a wrong byte under random faults (property)', async () => {
    const faulty = new FaultyReader(new FileBlobReader(gz.blobPath, gz.size));
    const { layer } = layerOf(gz, { blob: faulty, memoryBudgetBytes: 2 * SPAN, maxAttempts: 2 });
    const paths = Object.keys(files).filter((p) => files[p]!.length > 0);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...paths),
        fc.nat(),
        fc.array(
          fc.constantFrom<'corrupt' | 'truncate' | 'throw' | 'none'>('corrupt', 'truncate', 'throw', 'none'),
          {
            maxLength: 4,
          },
        ),
        async (path, seed, faults) => {
          faulty.faults = faults.map((f) => (f === 'none' ? (undefined as never) : f));
          const bytes = files[path]!;
          const offset = seed % bytes.length;
          try {
            const got = await layer.read(path, offset, 70_000);
            expect(Buffer.from(got).equals(Buffer.from(bytes.subarray(offset, offset + 70_000)))).toBe(true);
          } catch (err) {
            expect((err as LazyFsError).errno).toBe(5);
          }
          faulty.faults = [];
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('disk cache', () => {
  it('serves spans from a cache rebuilt on start, without the registry', async () => {
    const root = join(work, 'cache-reuse');
    const cache = await DiskSpanCache.open({ root, budgetBytes: 1 << 30 });
    const first = layerOf(gz, { cache });
    first.layer.startBackground();
    await first.layer.backgroundDone();
    await new Promise((r) => setTimeout(r, 50)); // disk writes finish behind the reads
    expect(first.layer.stats().complete).toBe(true);

    const reopened = await DiskSpanCache.open({ root, budgetBytes: 1 << 30 });
    const broken = new FaultyReader(new FileBlobReader(gz.blobPath, gz.size));
    broken.always = 'throw';
    const second = layerOf(gz, { cache: reopened, blob: broken });
    expect(second.layer.stats().spansCached).toBe(second.layer.stats().spanCount);
    for (const [path, bytes] of Object.entries(files)) {
      const got = await second.layer.read(path, 0, bytes.length);
      expect(Buffer.from(got).equals(Buffer.from(bytes)), path).toBe(true);
    }
    expect(second.layer.stats().diskHits).toBeGreaterThan(0);
  });

  it('stays within its byte budget and still serves correct bytes', async () => {
    const budget = 5 * SPAN;
    const cache = await DiskSpanCache.open({ root: join(work, 'cache-small'), budgetBytes: budget });
    const { layer } = layerOf(gz, { cache, memoryBudgetBytes: SPAN });
    for (const [path, bytes] of Object.entries(files)) {
      const got = await layer.read(path, 0, bytes.length);
      expect(Buffer.from(got).equals(Buffer.from(bytes))).toBe(true);
      expect(cache.usedBytes).toBeLessThanOrEqual(budget);
    }
    await new Promise((r) => setTimeout(r, 50));
    const reopened = await DiskSpanCache.open({ root: join(work, 'cache-small'), budgetBytes: budget });
    expect(reopened.usedBytes).toBeLessThanOrEqual(budget);
  });

  it('ignores interrupted writes and damaged span files', async () => {
    const root = join(work, 'cache-damaged');
    const cache = await DiskSpanCache.open({ root, budgetBytes: 1 << 30 });
    const { layer } = layerOf(gz, { cache });
    await layer.read('dir0/file-9.bin', 0, 1_000_000);
    await new Promise((r) => setTimeout(r, 50));
    const dir = join(root, gz.digest.replace(':', '-'));
    const { readdir, truncate, writeFile } = await import('node:fs/promises');
    const spanFiles = (await readdir(dir)).sort();
    await truncate(join(dir, spanFiles[0]!), 10);
    await writeFile(join(dir, '3.tmp-abc'), 'partial');
    const reopened = await DiskSpanCache.open({ root, budgetBytes: 1 << 30 });
    expect((await readdir(dir)).some((n) => n.includes('tmp'))).toBe(false);
    const again = layerOf(gz, { cache: reopened });
    const got = await again.layer.read('dir0/file-9.bin', 0, 1_000_000);
    expect(Buffer.from(got).equals(Buffer.from(files['dir0/file-9.bin']!.subarray(0, 1_000_000)))).toBe(true);
  });

  it('loads the next cached spans ahead of a sequential reader, and fetches nothing for that', async () => {
    const path = 'dir0/file-9.bin'; // 3 MB: many spans
    const cache = await DiskSpanCache.open({ root: join(work, 'cache-readahead'), budgetBytes: 1 << 30 });
    const filler = layerOf(gz, { cache });
    const inode = filler.layer.tree.lookup(`/${path}`)!;
    const cached = filler.layer.spans.spansOfRange(inode.dataOffset, inode.dataOffset + 1_000_000);
    expect(cached.last - cached.first).toBeGreaterThanOrEqual(3);
    await filler.layer.read(path, 0, 1_000_000);
    await vi.waitFor(() => expect(filler.layer.stats().spansCached).toBe(cached.last - cached.first + 1));

    const { layer, reader } = layerOf(gz, { cache });
    await layer.read(path, 0, 100);
    expect(layer.stats().diskHits).toBe(1);
    await layer.read(path, 100, 100); // sequential: the next two spans come from disk
    expect(reader.requests).toHaveLength(0);
    await vi.waitFor(() => expect(layer.stats().diskHits).toBe(3));

    // Past the cached spans, only what is read is fetched: read-ahead never asks the blob.
    const end = 2_000_000;
    const got = await layer.read(path, 200, end - 200);
    expect(Buffer.from(got).equals(Buffer.from(files[path]!.subarray(200, end)))).toBe(true);
    const lastRead = layer.spans.spansOfRange(inode.dataOffset, inode.dataOffset + end).last;
    const lastReadEnd = layerSpans(gz.ztoc).compressedRange(lastRead).end;
    expect(reader.requests.length).toBeGreaterThan(0);
    for (const r of reader.requests) expect(r.end).toBeLessThanOrEqual(lastReadEnd);
  });
});

describe('background fetcher and prefetch', () => {
  it('fetches prefetch files first, in order, then everything', async () => {
    const { layer, reader } = layerOf(gz, {
      prefetch: ['dir0/file-9.bin', 'dir2/file-5.bin'],
      background: { concurrency: 1, spansPerRequest: 2 },
      maxCoalesceBytes: 1,
    });
    layer.startBackground();
    await layer.backgroundDone();
    expect(layer.stats().complete).toBe(true);
    const firstFile = layer.tree.lookup('/dir0/file-9.bin')!;
    const { first } = layer.spans.spansOfRange(firstFile.dataOffset, firstFile.dataOffset + 1);
    // The very first request is the prefetch file's first span, not span 0.
    const startOf = (id: number) => layerSpans(gz.ztoc).compressedRange(id).start;
    expect(reader.requests[0]!.start).toBe(startOf(first));
    const total = reader.requests.reduce((n, r) => n + (r.end - r.start), 0);
    // Each span exactly once (spans whose boundary is not byte-aligned share one byte).
    let sum = 0;
    for (let id = 0; id < layer.spans.spanCount; id++) sum += layer.spans.compressedBytes(id, id);
    expect(total).toBe(sum);
    await layer.close();
  });

  /** The layer's blob, whose first range request hangs until `release()`; `requests` lists the starts. */
  function firstRequestGated() {
    const inner = new FileBlobReader(gz.blobPath, gz.size);
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const requests: number[] = [];
    const blob = {
      size: gz.size,
      async readRange(start: number, end: number) {
        requests.push(start);
        if (requests.length === 1) await gate;
        return inner.readRange(start, end);
      },
    };
    return { blob, requests, release: () => release() };
  }

  it('waits while a foreground read waits for bytes', async () => {
    const { blob: gated, requests: order, release } = firstRequestGated();
    const { layer } = layerOf(gz, { blob: gated, background: { concurrency: 2 } });
    const fg = layer.read('dir0/file-9.bin', 0, 10);
    await new Promise((r) => setTimeout(r, 5));
    layer.startBackground();
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    expect(order.length).toBe(1); // the background fetcher did not start while the read waited
    release();
    await fg;
    await layer.backgroundDone();
    expect(order.length).toBeGreaterThan(1);
    expect(layer.stats().complete).toBe(true);
  });

  it('prefetches while a foreground read waits (only background spans step aside)', async () => {
    const { blob: gated, requests, release } = firstRequestGated();
    const { layer } = layerOf(gz, { blob: gated, prefetch: ['dir2/file-5.bin'], background: false });
    const fg = layer.read('dir0/file-9.bin', 0, 10);
    await new Promise((r) => setTimeout(r, 5));
    layer.startBackground();
    // Poll (up to 10 s on a busy machine) until the prefetch request arrives while the read waits.
    for (let i = 0; i < 5000 && requests.length < 2; i++) await new Promise((r) => setTimeout(r, 2));
    const file = layer.tree.lookup('/dir2/file-5.bin')!;
    const { first } = layer.spans.spansOfRange(file.dataOffset, file.dataOffset + 1);
    expect(requests[1]).toBe(layerSpans(gz.ztoc).compressedRange(first).start);
    release();
    await fg;
    await layer.backgroundDone();
    await layer.close();
  });

  it('fetches each listed span once, however often the list repeats it', async () => {
    const { layer, reader } = layerOf(gz, {
      prefetch: [
        { startSpan: 0, endSpan: 3 },
        { startSpan: 0, endSpan: 3 },
        { startSpan: 2, endSpan: 5 },
        { startSpan: 1, endSpan: 10 ** 9 }, // clamped to the layer
      ],
      background: false,
      maxCoalesceBytes: 1,
    });
    layer.startBackground();
    await layer.backgroundDone();
    const total = reader.requests.reduce((n, r) => n + (r.end - r.start), 0);
    let sum = 0;
    for (let id = 0; id < layer.spans.spanCount; id++) sum += layer.spans.compressedBytes(id, id);
    expect(total).toBe(sum);
    expect(layer.stats().complete).toBe(true);
    await layer.close();
  });

  it('can be switched off and stops on close', async () => {
    const off = layerOf(gz, { background: false });
    off.layer.startBackground();
    await off.layer.backgroundDone();
    expect(off.reader.requests.length).toBe(0);

    const slow = layerOf(gz, { background: { concurrency: 1, bytesPerSecond: 10_000, spansPerRequest: 1 } });
    slow.layer.startBackground();
    await new Promise((r) => setTimeout(r, 20));
    await slow.layer.close();
    const n = slow.reader.requests.length;
    expect(n).toBeLessThan(slow.layer.stats().spanCount);
    await new Promise((r) => setTimeout(r, 50));
    expect(slow.reader.requests.length).toBe(n);
    await expect(slow.layer.read('dir0/file-9.bin', 0, 1)).rejects.toMatchObject({
      code: 'LAZYFS_LAYER_CLOSED',
    });
  });
});

describe('zTOC checks', () => {
  it('refuses a zTOC that belongs to another blob', () => {
    expect(
      () =>
        new RemoteLayer({
          layer: { digest: gz.digest, size: gz.size + 1 },
          ztoc: gz.ztoc,
          blob: new FileBlobReader(gz.blobPath, gz.size),
        }),
    ).toThrow(expect.objectContaining({ code: 'LAZYFS_BAD_ZTOC' }));
  });

  it('refuses a zTOC whose parts disagree, keeping the ztoc error as its cause', () => {
    const info = gz.ztoc.compressionInfo;
    const ztoc = { ...gz.ztoc, compressionInfo: { ...info, spanDigests: info.spanDigests.slice(1) } };
    const err = (() => {
      try {
        new RemoteLayer({
          layer: { digest: gz.digest, size: gz.size },
          ztoc,
          blob: new FileBlobReader(gz.blobPath, gz.size),
        });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toMatchObject({ code: 'LAZYFS_BAD_ZTOC', errno: 5 });
    expect((err as Error).message).toContain(gz.digest);
    expect(codesOf(err)).toEqual(['LAZYFS_BAD_ZTOC', 'ZTOC_INVALID']);
  });

  it('matches the tar produced by GNU tar byte for byte over the whole stream', async () => {
    const { layer } = layerOf(gz);
    const tar = await readFile(gz.tarPath);
    const target = new Uint8Array(tar.length);
    await layer.spans.readTar(0, target);
    expect(Buffer.from(target).equals(tar)).toBe(true);
  });
});

describe('a registry that accepts requests and never answers', () => {
  /** Hangs every request (ignoring the abort signal) until `silent` is switched off. */
  class SilentReader extends FileBlobReader {
    silent = true;
    hung = 0;
    override readRange(start: number, end: number): Promise<Uint8Array> {
      if (!this.silent) return super.readRange(start, end);
      this.hung++;
      return new Promise(() => {});
    }
  }

  it('fails the read with EIO within the fetch deadline, then serves once the registry answers', async () => {
    const reader = new SilentReader(gz.blobPath, gz.size);
    const { layer } = layerOf(gz, { blob: reader, fetchDeadlineMs: 300 });
    const path = 'dir0/file-9.bin';
    const started = performance.now();
    const err = await layer.read(path, 0, 4096).catch((e: unknown) => e);
    const waited = performance.now() - started;
    expect(err).toBeInstanceOf(LazyFsError);
    expect(err).toMatchObject({ code: 'LAZYFS_SPAN_FETCH_FAILED', errno: expect.any(Number) });
    expect((err as Error).message).toMatch(/within 300 ms/);
    expect(waited).toBeGreaterThanOrEqual(250);
    expect(waited).toBeLessThan(5_000);
    // Meanwhile nothing else is stuck: the event loop answered a timer on time.
    await new Promise((r) => setTimeout(r, 1));

    reader.silent = false;
    const got = await layer.read(path, 0, 4096);
    expect(Buffer.from(got).equals(Buffer.from(files[path]!.subarray(0, 4096)))).toBe(true);
  });

  it('passes the deadline to the reader as an abort signal', async () => {
    const signals: (AbortSignal | undefined)[] = [];
    const reader = {
      size: gz.size,
      readRange: (_start: number, _end: number, options?: { signal?: AbortSignal }) => {
        signals.push(options?.signal);
        return new Promise<Uint8Array>((_, reject) => {
          options?.signal?.addEventListener('abort', () => reject(options.signal!.reason));
        });
      },
    };
    const { layer } = layerOf(gz, { blob: reader, fetchDeadlineMs: 200 });
    await expect(layer.read('dir0/file-9.bin', 0, 10)).rejects.toMatchObject({
      code: 'LAZYFS_SPAN_FETCH_FAILED',
    });
    expect(signals.length).toBeGreaterThan(0);
    expect(signals.every((s) => s?.aborted)).toBe(true);
  });
});
