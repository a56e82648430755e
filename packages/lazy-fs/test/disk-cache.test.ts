// The disk cache never hands out bytes it cannot prove: entries carry the checksum taken when
// their span was verified, keys name spans exactly (two zTOCs of one layer never mix), writes are
// atomic across kill -9, and pending writes are bounded.

import { createReadStream } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnTs, waitUntil } from '@soci-ts/testing/process';
import { buildZtoc } from '@soci-ts/ztoc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CorruptEntry, DiskSpanCache, RemoteLayer, spanCacheKey } from '../src/index.js';
import { CACHE_WRITER_LAYER, cacheWriterEntry } from './fixtures/cache-writer-entries.js';
import {
  type BuiltLayer,
  buildLayer,
  compressibleBytes,
  FileBlobReader,
  tempDir,
  writeTree,
} from './helpers.js';

const files: Record<string, Uint8Array> = {};
let work: string;
let gz: BuiltLayer;

beforeAll(async () => {
  work = await tempDir('disk-cache');
  for (let i = 0; i < 12; i++) files[`d${i % 3}/f${i}.bin`] = compressibleBytes(40_000 + i * 37_000, i + 3);
  await writeTree(join(work, 'root'), files);
  gz = await buildLayer(join(work, 'root'), join(work, 'layer'), { spanSize: 64 * 1024 });
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const KEY = spanCacheKey(0, 5, `sha256:${'0'.repeat(64)}`);
const LAYER = `sha256:${'1'.repeat(64)}`;

async function readAll(layer: RemoteLayer): Promise<void> {
  for (const [path, bytes] of Object.entries(files)) {
    const got = await layer.read(path, 0, bytes.length);
    expect(Buffer.from(got).equals(Buffer.from(bytes)), path).toBe(true);
  }
}

/** Waits until the cache has no write in flight. */
const settled = (cache: DiskSpanCache) =>
  waitUntil('disk writes', async () => cache.pendingBytes === 0, 10_000);

describe('DiskSpanCache entries', () => {
  it('round-trips a span and names it by bounds and digest', async () => {
    const cache = await DiskSpanCache.open({ root: join(work, 'rt'), budgetBytes: 1 << 20 });
    expect(await cache.put(LAYER, KEY, Buffer.from('hello'))).toBe(true);
    expect(cache.has(LAYER, KEY)).toBe(true);
    expect(Buffer.from((await cache.get(LAYER, KEY))!).toString()).toBe('hello');
    expect(await readdir(join(work, 'rt', LAYER.replace(':', '-')))).toEqual([KEY]);
    // Another span of the layer with the same digest but other bounds is another entry.
    expect(cache.has(LAYER, spanCacheKey(0, 6, `sha256:${'0'.repeat(64)}`))).toBe(false);
  });

  it('refuses keys that are not span keys, and digests that are not sha256', async () => {
    const cache = await DiskSpanCache.open({ root: join(work, 'bad-keys'), budgetBytes: 1 << 20 });
    await expect(cache.put(LAYER, '../../etc/passwd', new Uint8Array(1))).rejects.toMatchObject({
      code: 'LAZYFS_BAD_OPTIONS',
    });
    expect(() => spanCacheKey(0, 1, 'md5:abc')).toThrow(/sha256/);
  });

  it('drops an entry whose bytes changed on disk, reports it once, and never returns it', async () => {
    const corrupt: CorruptEntry[] = [];
    const root = join(work, 'flip');
    const cache = await DiskSpanCache.open({ root, budgetBytes: 1 << 20, onCorrupt: (e) => corrupt.push(e) });
    const body = Buffer.alloc(4096, 7);
    await cache.put(LAYER, KEY, body);
    const file = join(root, LAYER.replace(':', '-'), KEY);
    const raw = await readFile(file);
    raw[raw.length - 2048]! ^= 0x10; // one bit in the middle of the span
    await writeFile(file, raw);
    expect(await cache.get(LAYER, KEY)).toBeUndefined();
    expect(corrupt).toEqual([
      expect.objectContaining({ layer: LAYER, key: KEY, reason: 'checksum mismatch' }),
    ]);
    expect(cache.has(LAYER, KEY)).toBe(false);
    await expect(readFile(file)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await cache.get(LAYER, KEY)).toBeUndefined();
    expect(corrupt).toHaveLength(1);
  });

  it('treats a short file and a file without header as bad entries', async () => {
    const corrupt: CorruptEntry[] = [];
    const root = join(work, 'short');
    const dir = join(root, LAYER.replace(':', '-'));
    const cache = await DiskSpanCache.open({ root, budgetBytes: 1 << 20 });
    const other = spanCacheKey(5, 10, `sha256:${'2'.repeat(64)}`);
    await cache.put(LAYER, KEY, Buffer.alloc(4096, 1));
    await cache.put(LAYER, other, Buffer.alloc(4096, 2));
    await writeFile(join(dir, KEY), (await readFile(join(dir, KEY))).subarray(0, 1000));
    await writeFile(join(dir, other), Buffer.alloc(4096 + 48, 2)); // the old format: no header
    const reopened = await DiskSpanCache.open({
      root,
      budgetBytes: 1 << 20,
      onCorrupt: (e) => corrupt.push(e),
    });
    expect(await reopened.get(LAYER, KEY)).toBeUndefined();
    expect(await reopened.get(LAYER, other)).toBeUndefined();
    expect(corrupt.map((c) => c.reason).sort()).toEqual(['checksum mismatch', 'no span header']);
  });

  it('skips writes beyond maxPendingBytes and tells a producer when it may write again', async () => {
    const cache = await DiskSpanCache.open({
      root: join(work, 'pending'),
      budgetBytes: 1 << 30,
      maxPendingBytes: 1 << 20,
    });
    const span = Buffer.alloc(600 * 1024, 3);
    const keys = [1, 2, 3].map((i) => spanCacheKey(i * 10, i * 10 + 5, `sha256:${String(i).repeat(64)}`));
    const writes = keys.map((k) => cache.put(LAYER, k, span));
    expect(cache.pendingBytes).toBeGreaterThan(0);
    expect(cache.pendingBytes).toBeLessThanOrEqual((1 << 20) + 600 * 1024);
    const stored = await Promise.all(writes);
    expect(stored).toEqual([true, false, false]);
    await cache.whenWritable();
    expect(cache.pendingBytes).toBe(0);
  });

  it("with whenFull 'wait' (background work) writes wait for room instead of being skipped", async () => {
    const cache = await DiskSpanCache.open({
      root: join(work, 'pending-wait'),
      budgetBytes: 1 << 30,
      maxPendingBytes: 1 << 20,
    });
    const span = Buffer.alloc(600 * 1024, 4);
    const keys = [1, 2, 3].map((i) => spanCacheKey(i * 10, i * 10 + 5, `sha256:${String(i).repeat(64)}`));
    const stored = await Promise.all(keys.map((k) => cache.put(LAYER, k, span, { whenFull: 'wait' })));
    expect(stored).toEqual([true, true, true]);
    for (const k of keys) expect(Buffer.from((await cache.get(LAYER, k))!).equals(span)).toBe(true);
  });

  it("with whenFull 'wait', a span over half the bound next to a small one still gets written (no spin)", async () => {
    const cache = await DiskSpanCache.open({
      root: join(work, 'pending-big'),
      budgetBytes: 1 << 30,
      maxPendingBytes: 1 << 20,
    });
    const small = spanCacheKey(0, 1, `sha256:${'7'.repeat(64)}`);
    const big = spanCacheKey(1, 2, `sha256:${'8'.repeat(64)}`);
    const stored = await Promise.all([
      cache.put(LAYER, small, Buffer.alloc(100 * 1024, 1), { whenFull: 'wait' }),
      cache.put(LAYER, big, Buffer.alloc(1000 * 1024, 2), { whenFull: 'wait' }),
    ]);
    expect(stored).toEqual([true, true]);
  });

  it('leaves only whole, verified entries after the writing process is killed with SIGKILL', async () => {
    const root = join(work, 'killed');
    const writer = spawnTs('test/fixtures/cache-writer.ts', [root]);
    await waitUntil(
      '20 stored spans',
      async () => (writer.output().match(/stored/g) ?? []).length >= 20,
      60_000,
      writer.child,
    );
    writer.child.kill('SIGKILL');
    await writer.done;
    const corrupt: CorruptEntry[] = [];
    const cache = await DiskSpanCache.open({ root, budgetBytes: 1 << 30, onCorrupt: (e) => corrupt.push(e) });
    const dir = join(root, CACHE_WRITER_LAYER.replace(':', '-'));
    expect((await readdir(dir)).filter((n) => n.includes('tmp'))).toEqual([]);
    let found = 0;
    for (let i = 0; i < 10_000 && found < cache.spanCount; i++) {
      const { start, end, digest, bytes } = cacheWriterEntry(i);
      const key = spanCacheKey(start, end, digest);
      if (!cache.has(CACHE_WRITER_LAYER, key)) continue;
      found++;
      expect(Buffer.from((await cache.get(CACHE_WRITER_LAYER, key))!).equals(Buffer.from(bytes))).toBe(true);
    }
    expect(found).toBeGreaterThanOrEqual(20);
    expect(corrupt).toEqual([]);
  }, 90_000);
});

describe('spans served through a cache whose files were damaged', () => {
  it('refetches every damaged span and serves the right bytes', async () => {
    const root = join(work, 'damaged');
    const first = await DiskSpanCache.open({ root, budgetBytes: 1 << 30 });
    const reader = new FileBlobReader(gz.blobPath, gz.size);
    const layer = new RemoteLayer({
      layer: { digest: gz.digest, size: gz.size },
      ztoc: gz.ztoc,
      blob: reader,
      cache: first,
    });
    await readAll(layer);
    await settled(first);
    const dir = join(root, gz.digest.replace(':', '-'));
    const names = await readdir(dir);
    expect(names.length).toBe(layer.stats().spanCount);
    for (const name of names) {
      const raw = await readFile(join(dir, name));
      raw[Math.floor(raw.length / 2)]! ^= 0x01;
      await writeFile(join(dir, name), raw);
    }
    const corrupt: CorruptEntry[] = [];
    const reopened = await DiskSpanCache.open({
      root,
      budgetBytes: 1 << 30,
      onCorrupt: (e) => corrupt.push(e),
    });
    const again = new RemoteLayer({
      layer: { digest: gz.digest, size: gz.size },
      ztoc: gz.ztoc,
      blob: new FileBlobReader(gz.blobPath, gz.size),
      cache: reopened,
    });
    await readAll(again);
    expect(corrupt).toHaveLength(names.length);
    expect(again.stats().fetches).toBeGreaterThan(0);
    await settled(reopened);
    // Refetched spans were stored again, whole.
    const third = new RemoteLayer({
      layer: { digest: gz.digest, size: gz.size },
      ztoc: gz.ztoc,
      blob: new FileBlobReader(gz.blobPath, gz.size),
      cache: await DiskSpanCache.open({ root, budgetBytes: 1 << 30, onCorrupt: (e) => corrupt.push(e) }),
    });
    await readAll(third);
    expect(third.stats().fetches).toBe(0);
    expect(corrupt).toHaveLength(names.length);
  });
});

describe('two zTOCs of one layer sharing a cache', () => {
  /** zTOCs of the same blob: spans of 64 KiB and 16 KiB, and a third with checkpoints elsewhere (40 KiB). */
  const layouts = [64 * 1024, 16 * 1024, 40 * 1024];

  for (const [a, b] of [
    [0, 1],
    [1, 0],
    [0, 2],
    [2, 0],
  ] as const) {
    it(`reads byte-exact through the ${layouts[a]! / 1024} KiB zTOC, then the ${layouts[b]! / 1024} KiB one`, async () => {
      const root = join(work, `two-${a}-${b}`);
      const cache = await DiskSpanCache.open({ root, budgetBytes: 1 << 30 });
      for (const spanSize of [layouts[a]!, layouts[b]!]) {
        const ztoc = await buildZtoc(createReadStream(gz.blobPath), { compression: 'gzip', spanSize });
        const layer = new RemoteLayer({
          layer: { digest: gz.digest, size: gz.size },
          ztoc,
          blob: new FileBlobReader(gz.blobPath, gz.size),
          cache,
          memoryBudgetBytes: 64 * 1024, // small: reads go through the disk cache
        });
        await readAll(layer);
        await settled(cache);
      }
    });
  }
});
