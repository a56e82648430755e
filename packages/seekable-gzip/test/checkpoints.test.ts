// The checkpoint rule, the two inflaters agreeing, span digests and the zinfo layouts.
/// <reference path="../src/pako.d.ts" />
import fc from 'fast-check';
import { inflate, inflateInit2 } from 'pako/lib/zlib/inflate.js';
import ZStream from 'pako/lib/zlib/zstream.js';
import { beforeAll, expect, test } from 'vitest';
import {
  type BuildResult,
  buildGzipIndex,
  CheckpointBuilder,
  decodeZinfo,
  encodeZinfo,
  type GzipIndex,
  spanCount,
  spanRange,
  WINDOW_SIZE,
} from '../src/index.js';
import { chunked, concat, type Fixture, makeFixtures, run, sha256, sha256Hasher } from './fixtures.js';

let fixtures: Fixture[] = [];
beforeAll(() => {
  fixtures = makeFixtures();
});

const sizes = (f: Fixture) => ({ compressedSize: f.gz.length, uncompressedSize: f.plain.length });

function comparable(r: BuildResult) {
  return r.index.checkpoints.map((c) => ({ in: c.in, out: c.out, bits: c.bits, w: sha256(c.window) }));
}

/**
 * The test's own oracle for the rule, straight from zlib semantics: walk every block boundary of a
 * single-member blob with inflate(Z_BLOCK) on the whole input at once and keep the ones the spec picks.
 */
function expectedCheckpoints(gz: Uint8Array, headerLength: number, spanSize: number) {
  const strm = new ZStream();
  inflateInit2(strm, -15);
  strm.input = gz;
  strm.next_in = headerLength;
  strm.avail_in = gz.length - headerLength;
  const out = new Uint8Array(1 << 20);
  let total = 0;
  const picked = [{ in: headerLength, out: 0, bits: 0 }];
  for (;;) {
    strm.output = out;
    strm.next_out = 0;
    strm.avail_out = out.length;
    const ret = inflate(strm, 5);
    total += strm.next_out;
    if (ret === 1) break;
    expect(ret === 0 || ret === -5).toBe(true);
    if ((strm.data_type & 192) === 128 && total - picked[picked.length - 1]!.out > spanSize) {
      picked.push({ in: strm.next_in, out: total, bits: strm.data_type & 7 });
    }
  }
  return picked;
}

test('checkpoints follow the spec rule exactly (single-member blobs, both inflaters, any chunking)', async () => {
  const singles = fixtures.filter((f) =>
    ['gzip -1', 'gzip -9', 'pigz -6', 'node zlib', 'gzip -1 random (stored blocks)'].includes(f.name),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...singles.map((_, i) => i)),
      fc.oneof(fc.integer({ min: 1, max: 300_000 }), fc.constant(4 * 1024 * 1024)),
      fc.integer({ min: 500, max: 200_000 }),
      fc.constantFrom<'auto' | 'js'>('auto', 'js'),
      async (k, spanSize, maxChunk, inflater) => {
        const f = singles[k]!;
        const want = expectedCheckpoints(f.gz, 10, spanSize);
        const got = await buildGzipIndex(chunked(f.gz, maxChunk, spanSize), { spanSize, inflater });
        expect(got.index.checkpoints.map(({ in: i, out, bits }) => ({ in: i, out, bits }))).toEqual(want);
      },
    ),
    { numRuns: Number(process.env.RULE_RUNS ?? 25) },
  );
});

test('native and JS inflaters build identical indexes, windows included, on every fixture', async () => {
  for (const f of fixtures) {
    for (const [spanSize, maxChunk] of [
      [1, 5000],
      [40_000, 1 << 20],
      [100_000, 777],
    ] as const) {
      const a = await buildGzipIndex(chunked(f.gz, maxChunk), { spanSize });
      const b = await buildGzipIndex(chunked(f.gz, maxChunk), { spanSize, inflater: 'js' });
      expect(comparable(a), `${f.name} span ${spanSize} chunks ${maxChunk}`).toEqual(comparable(b));
    }
  }
});

test('block ends that fall exactly on chunk ends (native zlib does not stop there) are still found', async () => {
  for (const f of fixtures) {
    const all = await buildGzipIndex([f.gz], { spanSize: 1, inflater: 'js' });
    // Cut the input at every block boundary, so native zlib consumes each chunk to its end.
    const cuts = [0, ...all.index.checkpoints.map((c) => c.in), f.gz.length];
    const pieces = cuts.slice(1).map((end, i) => f.gz.subarray(cuts[i]!, end));
    for (const spanSize of [1, 20_000, 150_000]) {
      const a = await buildGzipIndex(pieces, { spanSize });
      const b = await buildGzipIndex([f.gz], { spanSize, inflater: 'js' });
      expect(comparable(a), `${f.name} span ${spanSize}`).toEqual(comparable(b));
    }
  }
});

test('structural invariants: first at out 0, strictly increasing, spans >= spanSize except the last, windows exact', async () => {
  await fc.assert(
    fc.asyncProperty(fc.nat(), fc.integer({ min: 1, max: 200_000 }), async (k, spanSize) => {
      const f = fixtures[k % fixtures.length]!;
      const { index } = await buildGzipIndex([f.gz], { spanSize });
      const cps = index.checkpoints;
      expect(cps[0]!.out).toBe(0);
      expect(cps[0]!.bits).toBe(0);
      for (let i = 1; i < cps.length; i++) {
        expect(cps[i]!.in).toBeGreaterThan(cps[i - 1]!.in);
        expect(cps[i]!.out - cps[i - 1]!.out).toBeGreaterThan(spanSize);
      }
      for (const cp of cps) {
        expect(cp.bits).toBeGreaterThanOrEqual(0);
        expect(cp.bits).toBeLessThanOrEqual(7);
        const want = new Uint8Array(WINDOW_SIZE);
        const hist = f.plain.subarray(Math.max(0, cp.out - WINDOW_SIZE), cp.out);
        want.set(hist, WINDOW_SIZE - hist.length);
        expect(Buffer.compare(cp.window, want)).toBe(0);
      }
    }),
    { numRuns: 30 },
  );
});

test('span digests are sha256 of exactly the compressed range of each span', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.nat(),
      fc.integer({ min: 1, max: 300_000 }),
      fc.integer({ min: 500, max: 100_000 }),
      fc.constantFrom<'auto' | 'js'>('auto', 'js'),
      async (k, spanSize, maxChunk, inflater) => {
        const f = fixtures[k % fixtures.length]!;
        const { index, spanDigests } = await buildGzipIndex(chunked(f.gz, maxChunk, k), {
          spanSize,
          spanHasher: sha256Hasher,
          inflater,
        });
        expect(spanDigests.length).toBe(spanCount(index));
        spanDigests.forEach((d, id) => {
          const r = spanRange(index, id);
          expect(d).toBe(sha256(f.gz.subarray(r.compressedStart, r.compressedEnd)));
        });
      },
    ),
    { numRuns: 30 },
  );
});

test('zinfo v2 round-trips, and a v1 blob (first checkpoint dropped) reads as the same index', async () => {
  for (const f of fixtures.filter((x) => x.gz[3] === 0)) {
    const { index } = await buildGzipIndex([f.gz], { spanSize: 64 * 1024 });
    const v2 = encodeZinfo(index);
    expect(v2.length).toBe(12 + index.checkpoints.length * 32_785);
    const same = (x: GzipIndex) => {
      const { checkpoints, ...rest } = x;
      const { checkpoints: want, ...wantRest } = index;
      expect(rest).toEqual(wantRest);
      expect(comparable({ index: { ...x, checkpoints }, spanDigests: [] })).toEqual(
        comparable({ index: { ...index, checkpoints: want }, spanDigests: [] }),
      );
    };
    same(decodeZinfo(v2, sizes(f)));
    const v1 = concat(v2.subarray(0, 12), v2.subarray(12 + 32_785));
    same(decodeZinfo(v1, sizes(f)));
  }
});

test('zinfo v2 layout is the documented little-endian one', async () => {
  const f = fixtures[0]!;
  const { index } = await buildGzipIndex([f.gz], { spanSize: 300_000 });
  const blob = encodeZinfo(index);
  const view = new DataView(blob.buffer);
  expect(view.getInt32(0, true)).toBe(index.checkpoints.length);
  expect(Number(view.getBigInt64(4, true))).toBe(300_000);
  const second = 12 + 32_785;
  expect(Number(view.getBigInt64(second, true))).toBe(index.checkpoints[1]!.in);
  expect(Number(view.getBigInt64(second + 8, true))).toBe(index.checkpoints[1]!.out);
  expect(blob[second + 16]).toBe(index.checkpoints[1]!.bits);
  expect(Buffer.compare(blob.subarray(second + 17, second + 17 + 32_768), index.checkpoints[1]!.window)).toBe(
    0,
  );
});

test('malformed zinfo blobs are GZIP_BAD_ZINFO', async () => {
  const f = fixtures[0]!;
  const { index } = await buildGzipIndex([f.gz], { spanSize: 300_000 });
  const blob = encodeZinfo(index);
  const bad = (
    mutate: (b: Uint8Array, v: DataView) => Uint8Array | undefined,
    s: Partial<GzipIndex> = {},
  ) => {
    const b = blob.slice();
    const out = mutate(b, new DataView(b.buffer)) ?? b;
    expect(() => decodeZinfo(out, { ...sizes(f), ...s })).toThrowError(
      expect.objectContaining({ code: 'GZIP_BAD_ZINFO' }),
    );
  };
  bad((b) => b.subarray(0, 11));
  bad((b) => b.subarray(0, b.length - 1));
  bad((_b, v) => void v.setInt32(0, 0, true));
  bad((_b, v) => void v.setInt32(0, -5, true));
  bad((_b, v) => void v.setBigInt64(4, -1n, true));
  bad((_b, v) => void v.setUint8(12 + 32_785 + 16, 8));
  bad((_b, v) => void v.setBigInt64(12 + 32_785, 5n, true)); // second checkpoint before the first
  bad((_b, v) => void v.setBigInt64(12 + 8, 7n, true)); // first checkpoint not at out 0
  bad(() => undefined, { compressedSize: 5 });
});

test('every block type is exercised: stored, fixed and dynamic', async () => {
  const types = new Set<number>();
  for (const f of fixtures) {
    const { index } = await buildGzipIndex([f.gz], { spanSize: 1 });
    for (const cp of index.checkpoints) {
      // The 3 block-header bits start `bits` bits before byte `in` (deflate is LSB first).
      const bitPos = cp.in * 8 - cp.bits;
      const word = f.gz[bitPos >> 3]! | (f.gz[(bitPos >> 3) + 1]! << 8);
      types.add((word >> ((bitPos & 7) + 1)) & 3);
    }
  }
  expect([...types].sort()).toEqual([0, 1, 2]);
});

test('a header split into 1-3 byte chunks (FEXTRA, FNAME, FCOMMENT, FHCRC) parses the same', async () => {
  const f = fixtures.find((x) => x.name.includes('FHCRC'))!;
  const whole = await buildGzipIndex([f.gz], { spanSize: 100_000, spanHasher: sha256Hasher });
  for (const inflater of ['auto', 'js'] as const) {
    const tiny = new CheckpointBuilder({ spanSize: 100_000, spanHasher: sha256Hasher, inflater });
    for (const c of chunked(f.gz.subarray(0, 2000), 3)) tiny.push(c);
    tiny.push(f.gz.subarray(2000));
    const r = tiny.finish();
    expect(comparable(r)).toEqual(comparable(whole));
    expect(r.spanDigests).toEqual(whole.spanDigests);
  }
});

test('a gzip made by GNU tar -z of a real directory indexes and matches gzip -dc', async () => {
  const gz = run('tar', ['-C', '/usr/share', '-czf', '-', 'perl5']);
  const plain = run('gzip', ['-dc'], gz);
  const parts: Uint8Array[] = [];
  const { index } = await buildGzipIndex(chunked(gz, 64 * 1024), {
    spanSize: 256 * 1024,
    onData: (c) => parts.push(c),
  });
  expect(Buffer.compare(Buffer.concat(parts), plain)).toBe(0);
  expect(index.uncompressedSize).toBe(plain.length);
});
