// The span model other packages use (layerSpans): ranges, digests and decode checked against the
// layer's own bytes, for gzip (GNU gzip and multi-member pigz) and plain tar layers at several span sizes.
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findCode } from '@soci-ts/errors';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildZtoc, layerSpans, type Ztoc, ZtocError } from '../src/index.js';
import { chunked, makeTree, run } from './tools.js';

const code = (c: string) => expect.objectContaining({ code: c });
const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Layer {
  name: string;
  ztoc: Ztoc;
  tar: Buffer;
  blob: Buffer;
}

const work = mkdtempSync(join(tmpdir(), 'ztoc-layer-spans-'));
const layers: Layer[] = [];
let tar: Buffer;

beforeAll(async () => {
  makeTree(join(work, 'tree'), { portable: true });
  tar = run('tar', ['--format=gnu', '-cf', '-', '-C', join(work, 'tree'), '.']);
  const blobs = {
    gzip: run('gzip', ['-6', '-c'], { input: tar }),
    // Independent blocks: many members' worth of block boundaries, spans crossing member ends.
    pigz: run('pigz', ['-i', '-b', '64', '-c'], { input: tar }),
  };
  for (const spanSize of [32 * 1024, 300_000, 2 * 1024 * 1024]) {
    for (const [name, blob] of Object.entries(blobs)) {
      const ztoc = await buildZtoc(chunked(blob, spanSize), { compression: 'gzip', spanSize });
      layers.push({ name: `${name} @${spanSize}`, ztoc, tar, blob });
    }
    const ztoc = await buildZtoc(chunked(tar, spanSize), { compression: 'uncompressed', spanSize });
    layers.push({ name: `tar @${spanSize}`, ztoc, tar, blob: tar });
  }
});

describe('layerSpans', () => {
  it('cuts the blob and the tar into contiguous spans; each decodes to its slice of the tar', async () => {
    expect(layers.length).toBe(9);
    for (const { name, ztoc, blob } of layers) {
      const spans = layerSpans(ztoc);
      expect(spans.spanCount, name).toBe(ztoc.compressionInfo.spanDigests.length);
      expect(spans.uncompressedSize, name).toBe(tar.length);
      let uncompressedEnd = 0;
      for (let id = 0; id < spans.spanCount; id++) {
        const c = spans.compressedRange(id);
        const u = spans.uncompressedRange(id);
        expect(u.start, `${name} span ${id}`).toBe(uncompressedEnd);
        uncompressedEnd = u.end;
        const compressed = blob.subarray(c.start, c.end);
        expect(spans.digest(id), `${name} span ${id}`).toBe(sha256(compressed));
        const decoded = await spans.decode(id, compressed);
        expect(Buffer.from(decoded).equals(tar.subarray(u.start, u.end)), `${name} span ${id}`).toBe(true);
      }
      expect(uncompressedEnd, name).toBe(tar.length);
      expect(spans.compressedRange(spans.spanCount - 1).end, name).toBe(blob.length);
    }
  });

  it('spanForOffset names the span whose uncompressed range holds the offset', () => {
    for (const { name, ztoc } of layers) {
      const spans = layerSpans(ztoc);
      fc.assert(
        fc.property(fc.nat({ max: tar.length - 1 }), (offset) => {
          const id = spans.spanForOffset(offset);
          const r = spans.uncompressedRange(id);
          expect(r.start <= offset && offset < r.end, `${name} offset ${offset} -> span ${id}`).toBe(true);
        }),
        { numRuns: 200 },
      );
      // Span starts themselves, and the end of the tar (mapped to the last span).
      for (let id = 0; id < spans.spanCount; id++) {
        expect(spans.spanForOffset(spans.uncompressedRange(id).start), name).toBe(id);
      }
      expect(spans.spanForOffset(tar.length), name).toBe(spans.spanCount - 1);
      expect(() => spans.spanForOffset(-1)).toThrow(code('ZTOC_OUT_OF_RANGE'));
    }
  });

  it('decodes any part of a span to that slice of the tar, and refuses a part outside it', async () => {
    for (const { name, ztoc, blob } of layers.filter((_, i) => i % 2 === 0)) {
      const spans = layerSpans(ztoc);
      await fc.assert(
        fc.asyncProperty(fc.nat(), fc.nat(), fc.nat(), async (idSeed, a, b) => {
          const id = idSeed % spans.spanCount;
          const c = spans.compressedRange(id);
          const u = spans.uncompressedRange(id);
          const size = u.end - u.start;
          const offset = a % (size + 1);
          const length = b % (size - offset + 1);
          const part = await spans.decode(id, blob.subarray(c.start, c.end), { offset, length });
          const want = tar.subarray(u.start + offset, u.start + offset + length);
          expect(Buffer.from(part).equals(want), `${name} span ${id} [${offset}, +${length})`).toBe(true);
        }),
        { numRuns: 25 },
      );
      const c = spans.compressedRange(0);
      const size = spans.uncompressedRange(0).end - spans.uncompressedRange(0).start;
      await expect(
        spans.decode(0, blob.subarray(c.start, c.end), { offset: size, length: 1 }),
      ).rejects.toEqual(code('ZTOC_INVALID_ARGUMENT'));
    }
  });

  it('plain-tar spans decode to a copy, never a view of the fetch buffer', async () => {
    const { ztoc } = layers.find((l) => l.name.startsWith('tar'))!;
    const spans = layerSpans(ztoc);
    const r = spans.compressedRange(0);
    const fetched = Buffer.from(tar.subarray(r.start, r.end));
    const decoded = await spans.decode(0, fetched);
    fetched.fill(0);
    expect(Buffer.from(decoded).equals(tar.subarray(r.start, r.end))).toBe(true);
  });

  it('refuses a zTOC whose span digests do not match its checkpoints (ZTOC_INVALID)', () => {
    for (const { name, ztoc } of layers) {
      const digests = ztoc.compressionInfo.spanDigests;
      for (const wrong of [digests.slice(1), [...digests, digests[0]!]]) {
        const bad = { ...ztoc, compressionInfo: { ...ztoc.compressionInfo, spanDigests: wrong } };
        expect(() => layerSpans(bad), name).toThrow(code('ZTOC_INVALID'));
      }
    }
  });

  it('refuses unknown span ids, bytes of the wrong length and bytes that do not decode', async () => {
    const { ztoc, blob } = layers.find((l) => l.name.startsWith('gzip'))!;
    const spans = layerSpans(ztoc);
    for (const id of [-1, spans.spanCount, 0.5]) {
      expect(() => spans.compressedRange(id)).toThrow(code('ZTOC_OUT_OF_RANGE'));
      expect(() => spans.uncompressedRange(id)).toThrow(code('ZTOC_OUT_OF_RANGE'));
      expect(() => spans.digest(id)).toThrow(code('ZTOC_OUT_OF_RANGE'));
    }
    const r = spans.compressedRange(1);
    await expect(spans.decode(1, blob.subarray(r.start, r.end - 1))).rejects.toThrow(
      code('ZTOC_INVALID_ARGUMENT'),
    );
    const garbage = Buffer.alloc(r.end - r.start, 0xff);
    const err = await spans.decode(1, garbage).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ZtocError);
    expect(err).toMatchObject({ code: 'ZTOC_INVALID' });
    // The gzip decoder's own failure stays on the cause chain.
    expect(findCode(err, 'GZIP_BAD_SPAN', 'GZIP_CORRUPT')).toBeDefined();
  });
});
