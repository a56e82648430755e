// Damaged gzip input must end in a SeekableGzipError with the right code: never a hang, a crash, or an
// index over wrong bytes. Both inflaters are held to the same verdicts.

import { findCode, isSociError } from '@soci-ts/errors';
import fc from 'fast-check';
import { beforeAll, expect, test } from 'vitest';
import { buildGzipIndex, CheckpointBuilder, SeekableGzipError } from '../src/index.js';
import { chunked, concat, craftedHeaderMember, gunzipOracle, mixedInput, run } from './fixtures.js';

interface Sample {
  gz: Uint8Array;
  plain: Uint8Array;
  /** Offsets where a member ends (a cut there leaves a valid, shorter gzip). */
  memberEnds: number[];
}

let single: Sample;
let multi: Sample;

beforeAll(() => {
  const data = mixedInput(300_000, 5);
  const gz = run('gzip', ['-6', '-c', '-n'], data);
  single = { gz, plain: gunzipOracle(gz), memberEnds: [gz.length] };
  const m1 = run('gzip', ['-1', '-c', '-n'], data.subarray(0, 120_000));
  const m2 = run('gzip', ['-c', '-n'], new Uint8Array(0));
  const m3 = craftedHeaderMember(data.subarray(120_000));
  const all = concat(m1, m2, m3);
  multi = {
    gz: all,
    plain: gunzipOracle(all),
    memberEnds: [m1.length, m1.length + m2.length, all.length],
  };
});

type Verdict = { ok: true; out: Buffer } | { ok: false; code: string };

async function verdict(gz: Uint8Array, inflater: 'auto' | 'js', maxChunk: number): Promise<Verdict> {
  const parts: Uint8Array[] = [];
  try {
    await buildGzipIndex(chunked(gz, maxChunk), { spanSize: 20_000, inflater, onData: (c) => parts.push(c) });
    return { ok: true, out: Buffer.concat(parts) };
  } catch (err) {
    if (!(err instanceof SeekableGzipError)) throw err;
    return { ok: false, code: err.code };
  }
}

async function bothVerdicts(gz: Uint8Array, maxChunk: number): Promise<Verdict> {
  const a = await verdict(gz, 'auto', maxChunk);
  const b = await verdict(gz, 'js', maxChunk);
  expect(a.ok).toBe(b.ok);
  if (!a.ok && !b.ok) expect(a.code).toBe(b.code);
  return a;
}

test('flipped bits: a typed error, or (header bytes that do not matter) exactly the original data', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.boolean(),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 6 }),
      fc.integer({ min: 100, max: 70_000 }),
      async (useMulti, flips, maxChunk) => {
        const s = useMulti ? multi : single;
        const gz = s.gz.slice();
        for (const [pos, bit] of flips) gz[pos % gz.length]! ^= 1 << bit;
        const v = await bothVerdicts(gz, maxChunk);
        if (v.ok) expect(Buffer.compare(v.out, s.plain)).toBe(0);
        else expect(['GZIP_CORRUPT', 'GZIP_CRC_MISMATCH', 'GZIP_TRUNCATED']).toContain(v.code);
      },
    ),
    { numRuns: 150 },
  );
});

test("flips inside the deflate data or trailer are always caught (but the final byte's padding bits)", async () => {
  // The deflate stream ends mid-byte: the bits after the last block's end code are padding, which
  // no inflater reads (seed 1271390157 of this property found one: byte length-9, bit 4).
  const lastDeflateByte = single.gz.length - 9;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 10, max: single.gz.length - 1 }),
      fc.integer({ min: 0, max: 7 }),
      async (pos, bit) => {
        const gz = single.gz.slice();
        gz[pos]! ^= 1 << bit;
        const v = await bothVerdicts(gz, 65_536);
        if (v.ok) {
          expect(pos).toBe(lastDeflateByte);
          expect(Buffer.compare(v.out, single.plain)).toBe(0);
        }
      },
    ),
    { numRuns: 100 },
  );
});

test("a flip in the final deflate byte's padding bits changes nothing; in its used bits it is caught", async () => {
  const pos = single.gz.length - 9;
  const verdicts = [];
  for (let bit = 0; bit < 8; bit++) {
    const gz = single.gz.slice();
    gz[pos]! ^= 1 << bit;
    verdicts.push(await bothVerdicts(gz, 65_536));
  }
  // Used bits are the low ones (deflate fills bytes from the least significant bit up). The input
  // is made from files in /usr, so whether the byte has padding at all depends on the host: with
  // none, every flip must be caught.
  const harmless = verdicts.findIndex((v) => v.ok);
  const firstPadding = harmless === -1 ? 8 : harmless;
  expect(firstPadding).toBeGreaterThan(0);
  for (const [bit, v] of verdicts.entries()) {
    expect(v.ok).toBe(bit >= firstPadding);
    if (v.ok) expect(Buffer.compare(v.out, single.plain)).toBe(0);
  }
});

test('truncation anywhere is GZIP_TRUNCATED, except right after a member (a valid shorter gzip)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.boolean(),
      fc.nat(),
      fc.integer({ min: 100, max: 70_000 }),
      async (useMulti, n, maxChunk) => {
        const s = useMulti ? multi : single;
        const cut = n % s.gz.length;
        const v = await bothVerdicts(s.gz.subarray(0, cut), maxChunk);
        if (s.memberEnds.includes(cut)) {
          expect(v.ok).toBe(true);
          if (v.ok) expect(Buffer.compare(v.out, gunzipOracle(s.gz.subarray(0, cut)))).toBe(0);
        } else {
          expect(v).toEqual({ ok: false, code: 'GZIP_TRUNCATED' });
        }
      },
    ),
    { numRuns: 120 },
  );
  // Every member end of the multi-member blob, exactly.
  for (const end of multi.memberEnds)
    expect((await bothVerdicts(multi.gz.subarray(0, end), 4096)).ok).toBe(true);
});

test('garbage instead of a header, bad method, reserved flags, trailing garbage: GZIP_CORRUPT', async () => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 200 }), async (junk) => {
      fc.pre(!(junk[0] === 0x1f && junk[1] === 0x8b));
      expect(await bothVerdicts(junk.length >= 2 ? junk : concat(junk, junk), 64)).toMatchObject({
        ok: false,
        code: expect.stringMatching(/GZIP_CORRUPT|GZIP_TRUNCATED/),
      });
      expect(await bothVerdicts(concat(junk, single.gz), 4096)).toEqual({ ok: false, code: 'GZIP_CORRUPT' });
      expect(await bothVerdicts(concat(single.gz, junk), 4096)).toMatchObject({ ok: false });
    }),
    { numRuns: 40 },
  );
  const method = single.gz.slice();
  method[2] = 7;
  expect(await bothVerdicts(method, 4096)).toEqual({ ok: false, code: 'GZIP_CORRUPT' });
  const flags = single.gz.slice();
  flags[3] = 0x20;
  expect(await bothVerdicts(flags, 4096)).toEqual({ ok: false, code: 'GZIP_CORRUPT' });
  expect(await bothVerdicts(concat(single.gz, new Uint8Array(16)), 4096)).toEqual({
    ok: false,
    code: 'GZIP_CORRUPT',
  });
});

test('bad CRC32, bad ISIZE and bad header CRC16 are GZIP_CRC_MISMATCH', async () => {
  for (const at of [8, 4]) {
    const gz = single.gz.slice();
    gz[gz.length - at]! ^= 0x40; // CRC32 at -8..-5, ISIZE at -4..-1
    expect(await bothVerdicts(gz, 10_000)).toEqual({ ok: false, code: 'GZIP_CRC_MISMATCH' });
  }
  const crafted = craftedHeaderMember(single.plain.subarray(0, 50_000));
  const hcrc = crafted.slice();
  // FHCRC is the 2 bytes before the deflate data: header = 10 + 2 + 9 (extra) + 9 (name) + 10 (comment).
  hcrc[40]! ^= 1;
  expect(await bothVerdicts(crafted, 1000)).toMatchObject({ ok: true });
  expect(await bothVerdicts(hcrc, 1000)).toEqual({ ok: false, code: 'GZIP_CRC_MISMATCH' });
});

test("errors are soci-ts errors: prefixed code, own name, found on a wrapper's cause chain", () => {
  let thrown: unknown;
  try {
    new CheckpointBuilder({ spanSize: 1000 }).push(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
  } catch (err) {
    thrown = err;
  }
  expect(isSociError(thrown)).toBe(true);
  expect(thrown).toMatchObject({ name: 'SeekableGzipError', code: 'GZIP_CORRUPT' });
  const wrapped = new Error('indexing the layer failed', { cause: thrown });
  expect(findCode(wrapped, 'GZIP_CORRUPT', 'GZIP_TRUNCATED')).toBe(thrown);
});

test('empty input is GZIP_TRUNCATED; a failed or finished builder stays failed', () => {
  expect(() => new CheckpointBuilder({ spanSize: 1 }).finish()).toThrowError(
    expect.objectContaining({ code: 'GZIP_TRUNCATED' }),
  );
  const b = new CheckpointBuilder({ spanSize: 1000 });
  expect(() => b.push(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10))).toThrowError(SeekableGzipError);
  expect(() => b.push(single.gz)).toThrowError(expect.objectContaining({ code: 'GZIP_CORRUPT' }));
  expect(() => b.finish()).toThrowError(expect.objectContaining({ code: 'GZIP_CORRUPT' }));
  const done = new CheckpointBuilder({ spanSize: 1000 });
  done.push(single.gz);
  done.finish();
  expect(() => done.push(single.gz)).toThrowError(expect.objectContaining({ code: 'GZIP_INVALID_ARGUMENT' }));
  for (const spanSize of [0, -1, 1.5, Number.NaN]) {
    expect(() => new CheckpointBuilder({ spanSize })).toThrowError(
      expect.objectContaining({ code: 'GZIP_INVALID_ARGUMENT' }),
    );
  }
});
