import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  buildZtoc,
  DEFAULT_ZTOC_LIMITS,
  decodeZtoc,
  encodeZtoc,
  layerSpans,
  TarIndexer,
  ZtocReader,
} from '../src/index.js';
import { entry, gzipZtoc, sharedEntryZtoc, tarZtoc } from './hostile.js';
import { measureSync, RSS_GROWTH_BOUND, WALL_MS_BOUND } from './resource-bounds.js';
import { chunked, run } from './tools.js';

const code = (c: string) => expect.objectContaining({ code: c });

describe('plain-tar zTOCs whose TarZinfo disagrees with the archive', () => {
  it('reads one whose TarZinfo size is the archive size', () => {
    const z = tarZtoc(10_000, [entry('a', { type: 'reg', uncompressedOffset: 512, uncompressedSize: 9488 })]);
    expect(decodeZtoc(encodeZtoc(z)).toc).toHaveLength(1);
    expect(layerSpans(z).spanCount).toBe(3);
  });

  it.each([
    ['smaller than the archive', { size: 8192 }, 10_000],
    ['larger than the archive', { size: 20_000 }, 10_000],
  ])('refuses a TarZinfo size %s at decode time, and in layerSpans', (_, tarZinfo, size) => {
    const z = tarZtoc(size, [], tarZinfo);
    expect(() => decodeZtoc(encodeZtoc(z))).toThrow(code('ZTOC_INVALID'));
    expect(() => new ZtocReader(encodeZtoc(z))).toThrow(/describe a \d+-byte archive/);
    expect(() => layerSpans(z)).toThrow(code('ZTOC_INVALID'));
  });

  it('refuses a compressed size other than the uncompressed one (a plain tar is its own bytes)', () => {
    const z = tarZtoc(10_000, [], {}, 10_001);
    expect(() => decodeZtoc(encodeZtoc(z))).toThrow(code('ZTOC_INVALID'));
    expect(() => layerSpans(z)).toThrow(code('ZTOC_INVALID'));
  });

  it('refuses a file whose data reaches past the archive', () => {
    const z = tarZtoc(10_000, [
      entry('a', { type: 'reg', uncompressedOffset: 9_000, uncompressedSize: 1_001 }),
    ]);
    expect(() => decodeZtoc(encodeZtoc(z))).toThrow(code('ZTOC_INVALID'));
  });
});

describe('zTOC limits', () => {
  it('exports its defaults and refuses nonsense overrides', () => {
    expect(DEFAULT_ZTOC_LIMITS.maxNameBytes).toBe(4096);
    expect(Object.isFrozen(DEFAULT_ZTOC_LIMITS)).toBe(true);
    const bytes = encodeZtoc(tarZtoc(0, []));
    expect(() => decodeZtoc(bytes, { limits: { maxEntries: 0 } })).toThrow(code('ZTOC_INVALID_ARGUMENT'));
    expect(() => decodeZtoc(bytes, { limits: { maxEntrys: 5 } as never })).toThrow(
      code('ZTOC_INVALID_ARGUMENT'),
    );
  });

  it('refuses a million and one entries without decoding them', () => {
    const bytes = sharedEntryZtoc(DEFAULT_ZTOC_LIMITS.maxEntries + 1);
    const cost = measureSync(() => decodeZtoc(bytes));
    expect(cost.error).toMatchObject({
      code: 'ZTOC_LIMIT_EXCEEDED',
      message: expect.stringContaining('maxEntries'),
    });
    expect(cost.ms).toBeLessThan(WALL_MS_BOUND);
    expect(cost.rssGrowth).toBeLessThan(RSS_GROWTH_BOUND);
  });

  it('applies a lower entry limit exactly', () => {
    expect(decodeZtoc(sharedEntryZtoc(10), { limits: { maxEntries: 10 } }).toc).toHaveLength(10);
    expect(() => decodeZtoc(sharedEntryZtoc(11), { limits: { maxEntries: 10 } })).toThrow(
      code('ZTOC_LIMIT_EXCEEDED'),
    );
  });

  it('refuses a huge name before decoding it', () => {
    const bytes = encodeZtoc(tarZtoc(0, [entry('x'.repeat(32 << 20))]));
    const reader = new ZtocReader(bytes); // names are read when asked for
    const cost = measureSync(() => reader.fileName(0));
    expect(cost.error).toMatchObject({
      code: 'ZTOC_LIMIT_EXCEEDED',
      message: expect.stringContaining('maxNameBytes'),
    });
    expect(cost.ms).toBeLessThan(WALL_MS_BOUND);
    expect(cost.rssGrowth).toBeLessThan(RSS_GROWTH_BOUND);
    expect(() => decodeZtoc(bytes)).toThrow(code('ZTOC_LIMIT_EXCEEDED'));
  });

  it('counts names and link targets in UTF-8 bytes', () => {
    const at = (name: string, linkname = '') =>
      encodeZtoc(tarZtoc(0, [entry(name, { type: 'symlink', linkname })]));
    expect(decodeZtoc(at('é'.repeat(2048))).toc).toHaveLength(1);
    expect(() => decodeZtoc(at('é'.repeat(2049)))).toThrow(code('ZTOC_LIMIT_EXCEEDED'));
    expect(() => decodeZtoc(at('l', 'x'.repeat(4097)))).toThrow(/link target/);
  });

  it('refuses deep paths, by default and when names may be long', () => {
    expect(decodeZtoc(encodeZtoc(tarZtoc(0, [entry('a/'.repeat(1024))]))).toc).toHaveLength(1);
    expect(() => decodeZtoc(encodeZtoc(tarZtoc(0, [entry('a/'.repeat(1025))])))).toThrow(/maxPathDepth/);
    const deep = encodeZtoc(tarZtoc(0, [entry('a/'.repeat(20_000))]));
    const cost = measureSync(() => decodeZtoc(deep, { limits: { maxNameBytes: 1 << 20 } }));
    expect(cost.error).toMatchObject({
      code: 'ZTOC_LIMIT_EXCEEDED',
      message: expect.stringContaining('maxPathDepth'),
    });
    expect(cost.ms).toBeLessThan(WALL_MS_BOUND);
  });

  it('refuses oversized spans, declared or actual', () => {
    const GiB = 1 << 30;
    const tar = tarZtoc(GiB, [], { spanSize: GiB });
    expect(() => decodeZtoc(encodeZtoc(tar))).toThrow(/maxSpanBytes/);
    expect(decodeZtoc(encodeZtoc(tar), { limits: { maxSpanBytes: GiB } }).compressionInfo.maxSpanId).toBe(0);
    // The gzip span size field says 4 KiB, but the second span holds 200 MiB.
    const gzip = gzipZtoc([1000, 1000 + (200 << 20)], 1001 + (200 << 20));
    expect(() => decodeZtoc(encodeZtoc(gzip))).toThrow(/span 1's length is 209715200/);
    expect(decodeZtoc(encodeZtoc(gzipZtoc([1000, 2000], 3000))).compressionInfo.maxSpanId).toBe(2);
  });

  it('refuses too many spans and too big a zTOC', () => {
    const z = encodeZtoc(tarZtoc(40_960, []));
    expect(() => decodeZtoc(z, { limits: { maxSpans: 9 } })).toThrow(/number of spans is 10/);
    expect(decodeZtoc(z, { limits: { maxSpans: 10 } }).compressionInfo.maxSpanId).toBe(9);
    expect(() => decodeZtoc(z, { limits: { maxZtocBytes: z.length - 1 } })).toThrow(/zTOC size/);
  });
});

describe('building under the same limits', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ztoc-limits-'));
  const deep = join(dir, 'tree', ...Array.from({ length: 12 }, (_, i) => `d${i}`));
  mkdirSync(deep, { recursive: true });
  const tar = run('tar', ['--format=posix', '-cf', '-', '-C', join(dir, 'tree'), '.']);

  it('refuses a layer whose zTOC readers would refuse, while it streams', async () => {
    await expect(
      buildZtoc(chunked(tar), { compression: 'uncompressed', limits: { maxPathDepth: 10 } }),
    ).rejects.toThrow(code('ZTOC_LIMIT_EXCEEDED'));
    const indexer = new TarIndexer({ limits: { maxEntries: 5 } });
    expect(() => indexer.push(tar)).toThrow(/number of tar entries is 6/);
    const built = await buildZtoc(chunked(tar), { compression: 'uncompressed', spanSize: 1024 });
    expect(built.toc).toHaveLength(13); // "./" and d0 ... d11
    await expect(
      buildZtoc(chunked(tar), { compression: 'uncompressed', spanSize: 1024, limits: { maxSpans: 3 } }),
    ).rejects.toThrow(/number of spans/);
  });
});
