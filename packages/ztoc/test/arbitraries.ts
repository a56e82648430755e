import fc from 'fast-check';
import type { FileMetadata, FileType, Ztoc } from '../src/model.js';

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

/** Any well-formed zTOC (files laid out one after the other, as in a tar). */
export const ztocArb: fc.Arbitrary<Ztoc> = fc
  .record({
    version: text,
    buildToolIdentifier: text,
    compressedArchiveSize: fc.maxSafeNat(),
    files: fc.array(fileArb, { maxLength: 12 }),
    tail: fc.nat({ max: 1 << 20 }),
    algorithm: fc.constantFrom('gzip' as const, 'uncompressed' as const),
    spanDigests: fc.array(fc.stringMatching(/^sha256:[0-9a-f]{64}$/), { maxLength: 5 }),
    checkpoints: fc.uint8Array({ maxLength: 300 }),
  })
  .map((r) => {
    let offset = 0;
    const toc = r.files.map(({ size, ...f }) => {
      offset += 512;
      const entry = { ...f, uncompressedOffset: offset, uncompressedSize: size };
      offset += size;
      return entry;
    });
    return {
      version: r.version,
      buildToolIdentifier: r.buildToolIdentifier,
      compressedArchiveSize: r.compressedArchiveSize,
      uncompressedArchiveSize: offset + r.tail,
      toc,
      compressionInfo: {
        algorithm: r.algorithm,
        maxSpanId: r.spanDigests.length - 1,
        spanDigests: r.spanDigests,
        checkpoints: r.checkpoints,
      },
    };
  });
