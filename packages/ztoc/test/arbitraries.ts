import { encodeTarZinfo, encodeZinfo, WINDOW_SIZE } from '@soci-ts/seekable-gzip';
import fc from 'fast-check';
import { expect } from 'vitest';
import type { CompressionAlgorithm, FileMetadata, FileType, Ztoc } from '../src/model.js';

const text = fc.string({ unit: 'binary', maxLength: 40 });
const fileTypes: FileType[] = ['reg', 'dir', 'symlink', 'hardlink', 'char', 'block', 'fifo'];

const fileArb: fc.Arbitrary<
  Omit<FileMetadata, 'uncompressedOffset' | 'uncompressedSize'> & { size: number }
> = fc.record({
  name: text,
  type: fc.constantFrom(...fileTypes),
  size: fc.nat({ max: 1 << 30 }),
  linkname: text,
  mode: fc.nat({ max: 0o177777 }),
  uid: fc.nat({ max: 0xffffffff }),
  gid: fc.nat({ max: 0xffffffff }),
  uname: text,
  gname: text,
  modTime: text,
  devmajor: fc.maxSafeNat(),
  devminor: fc.maxSafeNat(),
  xattrs: fc.dictionary(text, text, { maxKeys: 4 }),
});

/** Read options for the arbitrary zTOCs, whose spans may be up to 2^53 bytes long. */
export const ANY_SPAN_SIZE = { limits: { maxSpanBytes: Number.MAX_SAFE_INTEGER } };

/** Any well-formed zTOC (files laid out one after the other, as in a tar). */
export const ztocArb: fc.Arbitrary<Ztoc> = fc
  .record({
    version: text,
    buildToolIdentifier: text,
    compressedArchiveSize: fc.maxSafeNat(),
    files: fc.array(fileArb, { maxLength: 12 }),
    tail: fc.nat({ max: 1 << 20 }),
    algorithm: fc.constantFrom('gzip' as const, 'uncompressed' as const),
    digests: fc.array(fc.stringMatching(/^sha256:[0-9a-f]{64}$/), { minLength: 5, maxLength: 5 }),
    /** Where spans are cut, as fractions of the archive (gzip), or the number of spans (tar). */
    cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 2 }),
    windowFill: fc.integer({ min: 0, max: 255 }),
  })
  .map((r) => {
    let offset = 0;
    const toc = r.files.map(({ size, ...f }) => {
      offset += 512;
      const entry = { ...f, uncompressedOffset: offset, uncompressedSize: size };
      offset += size;
      return entry;
    });
    const uncompressedArchiveSize = offset + r.tail;
    const layout = checkpointsFor(
      r.algorithm,
      r.compressedArchiveSize,
      uncompressedArchiveSize,
      r.cuts,
      r.windowFill,
    );
    const spanDigests = r.digests.slice(0, layout.spanCount);
    return {
      version: r.version,
      buildToolIdentifier: r.buildToolIdentifier,
      compressedArchiveSize: layout.compressedArchiveSize,
      uncompressedArchiveSize,
      toc,
      compressionInfo: {
        algorithm: r.algorithm,
        maxSpanId: spanDigests.length - 1,
        spanDigests,
        checkpoints: layout.checkpoints,
      },
    };
  });

/**
 * Valid checkpoints for the sizes: gzip checkpoints at the `cuts` (strictly increasing in and
 * out), or a TarZinfo whose span size gives `cuts.length + 1` spans at most. A plain-tar layer's
 * compressed size is its uncompressed size.
 */
function checkpointsFor(
  algorithm: CompressionAlgorithm,
  compressed: number,
  uncompressed: number,
  cuts: number[],
  fill: number,
): { checkpoints: Uint8Array; spanCount: number; compressedArchiveSize: number } {
  if (algorithm === 'uncompressed') {
    const spanSize = Math.max(1, Math.ceil(uncompressed / (cuts.length + 1)));
    return {
      checkpoints: encodeTarZinfo({ spanSize, size: uncompressed }),
      spanCount: Math.ceil(uncompressed / spanSize),
      compressedArchiveSize: uncompressed,
    };
  }
  const compressedArchiveSize = Math.max(1, compressed);
  const window = new Uint8Array(WINDOW_SIZE).fill(fill);
  const checkpoints = [{ in: 1, out: 0, bits: fill & 7, window }];
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    const prev = checkpoints[checkpoints.length - 1]!;
    const at = { in: 1 + Math.floor(cut * (compressedArchiveSize - 1)), out: Math.floor(cut * uncompressed) };
    if (at.in > prev.in && at.out > prev.out) checkpoints.push({ ...at, bits: 0, window });
  }
  const index = {
    spanSize: 1 + fill,
    checkpoints,
    compressedSize: compressedArchiveSize,
    uncompressedSize: uncompressed,
  };
  return { checkpoints: encodeZinfo(index), spanCount: checkpoints.length, compressedArchiveSize };
}

/** toEqual, with the checkpoint blobs (32 KiB per checkpoint) compared as bytes: much faster. */
export function expectSameZtoc(actual: Ztoc, expected: Ztoc): void {
  const { checkpoints: a, ...actualInfo } = actual.compressionInfo;
  const { checkpoints: b, ...expectedInfo } = expected.compressionInfo;
  expect(Buffer.compare(a, b)).toBe(0);
  expect({ ...actual, compressionInfo: actualInfo }).toEqual({ ...expected, compressionInfo: expectedInfo });
}
