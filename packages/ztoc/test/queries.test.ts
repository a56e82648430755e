import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildZtoc,
  extractFileBytes,
  extractRange,
  fileSpans,
  layerSpans,
  spansForRange,
  type Ztoc,
  ZtocError,
  ztocInfo,
} from '../src/index.js';
import { chunked, fetchFrom, makeTree, run } from './tools.js';

const work = mkdtempSync(join(tmpdir(), 'ztoc-queries-'));
const layers: Record<string, { ztoc: Ztoc; tar: Buffer; blob: Buffer }> = {};

beforeAll(async () => {
  makeTree(join(work, 'tree'), { portable: true });
  const tar = run('tar', ['--format=gnu', '-cf', '-', '-C', join(work, 'tree'), '.']);
  const blob = run('gzip', ['-6', '-c'], { input: tar });
  layers.gzip = {
    tar,
    blob,
    ztoc: await buildZtoc(chunked(blob), { compression: 'gzip', spanSize: 100_000 }),
  };
  layers.uncompressed = {
    tar,
    blob: tar,
    ztoc: await buildZtoc(chunked(tar), { compression: 'uncompressed', spanSize: 100_000 }),
  };
});

describe.each(['gzip', 'uncompressed'])('queries on a %s layer', (kind) => {
  it('plans cover exactly the spans holding any range, and extractRange returns its bytes', async () => {
    const { ztoc, tar, blob } = layers[kind]!;
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: tar.length - 1 }), fc.nat({ max: 400_000 }), async (offset, len) => {
        const length = Math.min(len, tar.length - offset);
        const plan = spansForRange(ztoc, offset, length);
        if (length > 0) {
          expect(plan.uncompressed.start).toBeLessThanOrEqual(offset);
          expect(plan.uncompressed.end).toBeGreaterThanOrEqual(offset + length);
          expect(plan.spanIds).toEqual(
            Array.from({ length: plan.endSpan - plan.startSpan + 1 }, (_, i) => plan.startSpan + i),
          );
          // The plan is in the ranges of the one span model, layerSpans.
          const spans = layerSpans(ztoc);
          expect(plan.compressed).toEqual({
            start: spans.compressedRange(plan.startSpan).start,
            end: spans.compressedRange(plan.endSpan).end,
          });
          // No span more than needed: the first ends after offset, the last starts before the end.
          expect(spans.uncompressedRange(plan.startSpan).end).toBeGreaterThan(offset);
          expect(spans.uncompressedRange(plan.endSpan).start).toBeLessThan(offset + length);
        } else {
          expect(plan.spanIds).toEqual([]);
          expect(plan.compressed.end - plan.compressed.start).toBe(0);
        }
        const got = await extractRange(ztoc, offset, length, fetchFrom(blob));
        expect(Buffer.from(got).equals(tar.subarray(offset, offset + length))).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('fileSpans and ztocInfo agree with the reference rule (end span = span of offset + size)', () => {
    const { ztoc } = layers[kind]!;
    const info = ztocInfo(ztoc);
    expect(info.num_files).toBe(ztoc.toc.length);
    expect(info.num_spans).toBe(ztoc.compressionInfo.maxSpanId + 1);
    expect(info.span_size).toBe(100_000);
    expect(info.size).toBe(ztoc.compressedArchiveSize);
    const big = info.files.find((f) => f.filename === './big.bin')!;
    const plan = fileSpans(ztoc, 'big.bin');
    expect(plan.file.name).toBe('./big.bin');
    expect(big.start_span).toBe(plan.startSpan);
    expect(big.end_span).toBeGreaterThanOrEqual(plan.endSpan);
    expect(plan.endSpan - plan.startSpan).toBeGreaterThan(20);
    expect(info.num_multi_span_files).toBe(info.files.filter((f) => f.start_span !== f.end_span).length);
  });

  it('refuses a span whose bytes do not match its digest', async () => {
    const { ztoc, blob } = layers[kind]!;
    const plan = fileSpans(ztoc, './small.txt');
    const bad = Buffer.from(blob);
    bad[plan.compressed.start + 3]! ^= 0x55;
    await expect(extractFileBytes(ztoc, './small.txt', fetchFrom(bad))).rejects.toMatchObject({
      code: 'ZTOC_DIGEST_MISMATCH',
    });
  });
});

describe('query errors', () => {
  it('are typed', async () => {
    const { ztoc, blob } = layers.gzip!;
    const fetch = fetchFrom(blob);
    await expect(extractFileBytes(ztoc, 'missing', fetch)).rejects.toMatchObject({ code: 'ZTOC_NOT_FOUND' });
    await expect(extractFileBytes(ztoc, './sticky/', fetch)).rejects.toMatchObject({
      code: 'ZTOC_INVALID_ARGUMENT',
    });
    expect(() => spansForRange(ztoc, ztoc.uncompressedArchiveSize, 1)).toThrow(ZtocError);
    expect(() => spansForRange(ztoc, -1, 1)).toThrow(ZtocError);
    const short = async (s: number, e: number) => blob.subarray(s, e - 1);
    await expect(extractFileBytes(ztoc, './big.bin', short)).rejects.toMatchObject({
      code: 'ZTOC_OUT_OF_RANGE',
    });
  });

  it('follows hardlinks to their content', async () => {
    const { ztoc, blob } = layers.gzip!;
    const data = await extractFileBytes(ztoc, './hardlink', fetchFrom(blob));
    expect(Buffer.from(data).toString()).toBe('hello, zTOC\n');
  });
});
