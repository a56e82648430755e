// Span decoding against a full `gzip -dc`, over blobs from GNU gzip, pigz, python3, Node zlib.
import fc from 'fast-check';
import { beforeAll, describe, expect, test } from 'vitest';
import { decodeSpanNativeOnly } from '../src/decode-span.js';
import {
  type BuildResult,
  buildGzipIndex,
  decodeSpan,
  decodeSpanSync,
  type GzipIndex,
  SeekableGzipError,
  spanCount,
  spanForOffset,
  spanRange,
} from '../src/index.js';
import { chunked, type Fixture, makeFixtures } from './fixtures.js';

let fixtures: Fixture[] = [];
const built = new Map<string, BuildResult>();

beforeAll(() => {
  fixtures = makeFixtures();
});

async function indexOf(f: Fixture, spanSize: number): Promise<GzipIndex> {
  const key = `${f.name}/${spanSize}`;
  let r = built.get(key);
  if (!r) {
    r = await buildGzipIndex(chunked(f.gz, 256 * 1024, spanSize), { spanSize });
    built.set(key, r);
  }
  return r.index;
}

const spanSizeArb = fc.oneof(fc.integer({ min: 1024, max: 65536 }), fc.constantFrom(1, 4 * 1024 * 1024));

describe.each([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])('fixture #%i', (k) => {
  test('the builder hands out exactly the gzip -dc bytes', async () => {
    const f = fixtures[k]!;
    const parts: Uint8Array[] = [];
    const { index } = await buildGzipIndex(chunked(f.gz, 100_000), {
      spanSize: 50_000,
      onData: (c) => parts.push(c),
    });
    expect(Buffer.compare(Buffer.concat(parts), f.plain)).toBe(0);
    expect(index.uncompressedSize).toBe(f.plain.length);
    expect(index.compressedSize).toBe(f.gz.length);
  });

  test('decodeSpan and decodeSpanSync equal the matching slice of gzip -dc', async () => {
    const f = fixtures[k]!;
    await fc.assert(
      fc.asyncProperty(spanSizeArb, fc.nat(), fc.nat(), fc.nat(), async (spanSize, s, a, b) => {
        const index = await indexOf(f, spanSize);
        const id = s % spanCount(index);
        const r = spanRange(index, id);
        const len = r.uncompressedEnd - r.uncompressedStart;
        const offset = len === 0 ? 0 : a % len;
        const length = len === 0 ? 0 : b % (len - offset + 1);
        const compressed = f.gz.subarray(r.compressedStart, r.compressedEnd);
        const want = f.plain.subarray(r.uncompressedStart + offset, r.uncompressedStart + offset + length);
        const sync = decodeSpanSync(index, id, compressed, { offset, length });
        const native = await decodeSpan(index, id, compressed, { offset, length });
        expect(Buffer.compare(sync, want)).toBe(0);
        expect(Buffer.compare(native, want)).toBe(0);
      }),
      { numRuns: 40 },
    );
  });

  test('every whole span decodes (JS and native), and native zlib alone does it within a member', async () => {
    const f = fixtures[k]!;
    const index = await indexOf(f, 32 * 1024);
    const memberStarts = memberHeaderOffsets(f.gz);
    for (let id = 0; id < spanCount(index); id++) {
      const r = spanRange(index, id);
      const compressed = f.gz.subarray(r.compressedStart, r.compressedEnd);
      const want = f.plain.subarray(r.uncompressedStart, r.uncompressedEnd);
      expect(Buffer.compare(decodeSpanSync(index, id, compressed), want)).toBe(0);
      expect(Buffer.compare(await decodeSpan(index, id, compressed), want)).toBe(0);
      const crossesMember = memberStarts.some((m) => m > r.compressedStart && m < r.compressedEnd);
      if (!crossesMember) {
        const native = await decodeSpanNativeOnly(index, id, compressed);
        expect(native, `span ${id} should not need the JS fallback`).not.toBeNull();
        expect(Buffer.compare(native!, want)).toBe(0);
      }
    }
  });

  test('spanForOffset finds the span holding each offset', async () => {
    const f = fixtures[k]!;
    const index = await indexOf(f, 16 * 1024);
    fc.assert(
      fc.property(fc.nat(), (n) => {
        if (index.uncompressedSize === 0) return;
        const off = n % index.uncompressedSize;
        const id = spanForOffset(index, off);
        const r = spanRange(index, id);
        expect(off >= r.uncompressedStart && off < r.uncompressedEnd).toBe(true);
      }),
    );
  });
});

test('wrong compressed bytes for a span give a typed error, never a crash or a hang', async () => {
  const f = fixtures.find((x) => x.name === 'gzip -6')!;
  const index = await indexOf(f, 64 * 1024);
  const n = spanCount(index);
  await fc.assert(
    fc.asyncProperty(
      fc.nat(),
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      fc.nat(),
      async (s, junk, at) => {
        const id = s % n;
        const r = spanRange(index, id);
        const good = f.gz.slice(r.compressedStart, r.compressedEnd);
        // Wrong length is always refused.
        for (const bad of [good.subarray(1), Buffer.concat([good, junk])]) {
          expect(() => decodeSpanSync(index, id, bad)).toThrowError(SeekableGzipError);
          await expect(decodeSpan(index, id, bad)).rejects.toMatchObject({ code: 'GZIP_BAD_SPAN' });
        }
        // Right length, wrong content: a typed error, or bytes of the requested length (the span digest
        // is what catches the rest).
        const bad = good.slice();
        bad.set(junk.subarray(0, Math.max(0, bad.length - (at % bad.length))), at % bad.length);
        const want = r.uncompressedEnd - r.uncompressedStart;
        for (const attempt of [
          () => Promise.resolve(decodeSpanSync(index, id, bad)),
          () => decodeSpan(index, id, bad),
        ]) {
          try {
            expect((await attempt()).length).toBe(want);
          } catch (err) {
            expect(err).toBeInstanceOf(SeekableGzipError);
            expect((err as SeekableGzipError).code).toBe('GZIP_BAD_SPAN');
          }
        }
      },
    ),
    { numRuns: 60 },
  );
});

test('a span whose data stops early is GZIP_BAD_SPAN', async () => {
  const f = fixtures.find((x) => x.name === 'gzip -6')!;
  const index = await indexOf(f, 64 * 1024);
  const r = spanRange(index, 1);
  const zeros = new Uint8Array(r.compressedEnd - r.compressedStart);
  await expect(decodeSpan(index, 1, zeros)).rejects.toMatchObject({ code: 'GZIP_BAD_SPAN' });
  expect(() => decodeSpanSync(index, 1, zeros)).toThrowError(
    expect.objectContaining({ code: 'GZIP_BAD_SPAN' }),
  );
});

test('span ids and ranges outside the index are GZIP_BAD_SPAN', async () => {
  const f = fixtures[0]!;
  const index = await indexOf(f, 64 * 1024);
  const n = spanCount(index);
  const r = spanRange(index, 0);
  const c = f.gz.subarray(r.compressedStart, r.compressedEnd);
  for (const id of [-1, n, 1.5, Number.NaN]) {
    expect(() => spanRange(index, id)).toThrowError(expect.objectContaining({ code: 'GZIP_BAD_SPAN' }));
  }
  const len = r.uncompressedEnd - r.uncompressedStart;
  for (const range of [
    { offset: -1, length: 1 },
    { offset: 0, length: len + 1 },
    { offset: len, length: 1 },
  ]) {
    expect(() => decodeSpanSync(index, 0, c, range)).toThrowError(
      expect.objectContaining({ code: 'GZIP_BAD_SPAN' }),
    );
  }
  expect(decodeSpanSync(index, 0, c, { offset: len, length: 0 }).length).toBe(0);
  expect(() => spanForOffset(index, index.uncompressedSize)).toThrowError(SeekableGzipError);
});

/** Offsets of member headers after the first, found by re-parsing the blob (the test's own walk). */
function memberHeaderOffsets(gz: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 1; i + 3 < gz.length; i++) {
    if (gz[i] === 0x1f && gz[i + 1] === 0x8b && gz[i + 2] === 8) out.push(i);
  }
  // Over-approximation (the magic can appear inside deflate data): it only makes the test skip the
  // native-only check for a few more spans.
  return out;
}
