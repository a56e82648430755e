import { execFileSync } from 'node:child_process';
// TarZinfo flatbuffer (checked against the flatbuffers library), CRC-32, and span math of plain tar layers.
import { crc32 as nodeCrc32 } from 'node:zlib';
import fc from 'fast-check';
import * as flatbuffers from 'flatbuffers';
import { expect, test } from 'vitest';
import { crc32, crc32Js } from '../src/crc32.js';
import {
  decodeTarZinfo,
  encodeTarZinfo,
  TAR_ZINFO_VERSION,
  uncompressedSpanCount,
  uncompressedSpanForOffset,
  uncompressedSpanRange,
} from '../src/index.js';

const sizeArb = fc.maxSafeNat();

/** TarZinfo { version:int32; span_size:int64; size:int64 } written by the official flatbuffers builder. */
function libraryTarZinfo(
  version: number,
  spanSize: number,
  size: number,
  forceDefaults: boolean,
): Uint8Array {
  const b = new flatbuffers.Builder(64);
  b.forceDefaults(forceDefaults);
  b.startObject(3);
  b.addFieldInt64(2, BigInt(size), 0n);
  b.addFieldInt64(1, BigInt(spanSize), 0n);
  b.addFieldInt32(0, version, 0);
  const table = b.endObject();
  b.finish(table);
  return b.asUint8Array();
}

/** Reads our blob with the flatbuffers library's generic table accessors. */
function libraryRead(blob: Uint8Array) {
  const bb = new flatbuffers.ByteBuffer(blob);
  const table = bb.readInt32(bb.position()) + bb.position();
  const field = (id: number) => bb.__offset(table, 4 + id * 2);
  return {
    version: field(0) ? bb.readInt32(table + field(0)) : 0,
    spanSize: field(1) ? Number(bb.readInt64(table + field(1))) : 0,
    size: field(2) ? Number(bb.readInt64(table + field(2))) : 0,
  };
}

test('TarZinfo written by hand reads back, also through the flatbuffers library', () => {
  fc.assert(
    fc.property(sizeArb, sizeArb, (spanSize, size) => {
      const blob = encodeTarZinfo({ spanSize, size });
      expect(decodeTarZinfo(blob)).toEqual({ version: TAR_ZINFO_VERSION, spanSize, size });
      expect(libraryRead(blob)).toEqual({ version: 2, spanSize, size });
    }),
  );
});

test('TarZinfo written by the flatbuffers library (defaults omitted or not) decodes', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 5 }),
      sizeArb,
      sizeArb,
      fc.boolean(),
      (version, spanSize, size, force) => {
        const blob = libraryTarZinfo(version, spanSize, size, force);
        expect(decodeTarZinfo(blob)).toEqual({ version, spanSize, size });
      },
    ),
  );
});

test('malformed TarZinfo blobs are GZIP_BAD_ZINFO, never a RangeError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (junk) => {
      try {
        decodeTarZinfo(junk);
      } catch (err) {
        expect(err).toMatchObject({ code: 'GZIP_BAD_ZINFO' });
      }
    }),
    { numRuns: 500 },
  );
  const good = encodeTarZinfo({ spanSize: 4 << 20, size: 12345 });
  for (let cut = 0; cut < good.length; cut++) {
    if (cut === 20) continue; // the length of the legacy raw layout, tested below
    expect(() => decodeTarZinfo(good.subarray(0, cut))).toThrowError(
      expect.objectContaining({ code: 'GZIP_BAD_ZINFO' }),
    );
  }
});

test('legacy raw TarZinfo (20 little-endian bytes, as older reference writers made) decodes', () => {
  // Bytes made by Python's struct module, the way Go's binary.Write lays them out.
  const raw = execFileSync('python3', [
    '-c',
    'import struct,sys; sys.stdout.buffer.write(struct.pack("<iqq", 2, 4194304, 123456789012))',
  ]);
  expect(raw.length).toBe(20);
  expect(decodeTarZinfo(new Uint8Array(raw))).toEqual({ version: 2, spanSize: 4194304, size: 123456789012 });
  const negative = new Uint8Array(raw);
  negative[19] = 0x80;
  expect(() => decodeTarZinfo(negative)).toThrowError(expect.objectContaining({ code: 'GZIP_BAD_ZINFO' }));
});

test('CRC-32: the JS table loop and the default (native when present) agree with zlib', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 5000 }), fc.nat(), fc.nat(), (data, a, b) => {
      const start = data.length ? a % data.length : 0;
      const end = start + (data.length - start ? b % (data.length - start + 1) : 0);
      const want = nodeCrc32(data.subarray(start, end));
      expect(crc32Js(0, data, start, end)).toBe(want);
      expect(crc32(0, data, start, end)).toBe(want);
      // Continuation over two parts equals one pass.
      const mid = (start + end) >> 1;
      expect(crc32Js(crc32Js(0, data, start, mid), data, mid, end)).toBe(want);
    }),
  );
});

test('plain tar spans are exact spanSize slices', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 1e9 }),
      fc.integer({ min: 1, max: 1e7 }),
      fc.nat(),
      (size, spanSize, n) => {
        const count = uncompressedSpanCount(size, spanSize);
        expect(count).toBe(Math.ceil(size / spanSize));
        if (size === 0) return;
        const off = n % size;
        const id = uncompressedSpanForOffset(size, spanSize, off);
        const r = uncompressedSpanRange(size, spanSize, id);
        expect(off).toBeGreaterThanOrEqual(r.uncompressedStart);
        expect(off).toBeLessThan(r.uncompressedEnd);
        expect([r.compressedStart, r.compressedEnd]).toEqual([r.uncompressedStart, r.uncompressedEnd]);
        expect(r.uncompressedEnd - r.uncompressedStart).toBe(
          id === count - 1 ? size - id * spanSize : spanSize,
        );
      },
    ),
  );
  expect(() => uncompressedSpanRange(10, 4, 3)).toThrowError(
    expect.objectContaining({ code: 'GZIP_BAD_SPAN' }),
  );
  expect(() => uncompressedSpanForOffset(10, 4, 10)).toThrowError(
    expect.objectContaining({ code: 'GZIP_BAD_SPAN' }),
  );
  expect(() => uncompressedSpanCount(10, 0)).toThrowError(
    expect.objectContaining({ code: 'GZIP_INVALID_ARGUMENT' }),
  );
});
