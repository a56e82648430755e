/** Hostile zTOCs, built byte by byte where the codec would refuse (or take too long) to write them. */
import { encodeTarZinfo, encodeZinfo, WINDOW_SIZE } from '@soci-ts/seekable-gzip';
import { Builder } from 'flatbuffers';
import {
  ALGORITHM_UNCOMPRESSED,
  COMPRESSION_FIELDS,
  CompressionField,
  FILE_FIELDS,
  FileField,
  TOC_FIELDS,
  TocField,
  ZTOC_FIELDS,
  ZtocField,
} from '../src/codec/schema.js';
import type { FileMetadata, Ztoc } from '../src/model.js';

export function entry(name: string, over: Partial<FileMetadata> = {}): FileMetadata {
  return {
    name,
    type: 'dir',
    uncompressedOffset: 0,
    uncompressedSize: 0,
    linkname: '',
    mode: 0o755,
    uid: 0,
    gid: 0,
    uname: '',
    gname: '',
    modTime: '2024-01-02T03:04:05Z',
    devmajor: 0,
    devminor: 0,
    xattrs: {},
    ...over,
  };
}

/** A plain-tar zTOC; `tarZinfo` overrides what its checkpoint blob says. */
export function tarZtoc(
  size: number,
  toc: FileMetadata[],
  tarZinfo: { spanSize?: number; size?: number } = {},
  compressedArchiveSize = size,
): Ztoc {
  const spanSize = tarZinfo.spanSize ?? 4096;
  const spans = Math.ceil((tarZinfo.size ?? size) / spanSize);
  return {
    version: '0.9',
    buildToolIdentifier: 'hostile',
    compressedArchiveSize,
    uncompressedArchiveSize: size,
    toc,
    compressionInfo: {
      algorithm: 'uncompressed',
      maxSpanId: spans - 1,
      spanDigests: Array.from({ length: spans }, () => `sha256:${'0'.repeat(64)}`),
      checkpoints: encodeTarZinfo({ spanSize, size: tarZinfo.size ?? size }),
    },
  };
}

/** A gzip zTOC whose checkpoints cut the layer at the given uncompressed offsets (1 byte each compressed). */
export function gzipZtoc(cutsOut: number[], uncompressedArchiveSize: number): Ztoc {
  const window = new Uint8Array(WINDOW_SIZE);
  const checkpoints = [0, ...cutsOut].map((out, i) => ({ in: 1 + i, out, bits: 0, window }));
  const compressedArchiveSize = checkpoints.length + 1;
  return {
    version: '0.9',
    buildToolIdentifier: 'hostile',
    compressedArchiveSize,
    uncompressedArchiveSize,
    toc: [],
    compressionInfo: {
      algorithm: 'gzip',
      maxSpanId: checkpoints.length - 1,
      spanDigests: checkpoints.map(() => `sha256:${'0'.repeat(64)}`),
      checkpoints: encodeZinfo({
        spanSize: 4096,
        checkpoints,
        compressedSize: compressedArchiveSize,
        uncompressedSize: uncompressedArchiveSize,
      }),
    },
  };
}

/**
 * A zTOC listing `count` entries that all point at one file table: 4 bytes per entry, so a
 * million entries fit in 4 MB, while decoding them all would build a million objects.
 */
export function sharedEntryZtoc(count: number): Uint8Array {
  const b = new Builder(count * 4 + 1024);
  const name = b.createString('etc/passwd');
  const type = b.createString('reg');
  b.startObject(FILE_FIELDS);
  b.addFieldOffset(FileField.name, name, 0);
  b.addFieldOffset(FileField.type, type, 0);
  const file = b.endObject();
  b.startVector(4, count, 4);
  for (let i = 0; i < count; i++) b.addOffset(file);
  const metadata = b.endVector();
  b.startObject(TOC_FIELDS);
  b.addFieldOffset(TocField.metadata, metadata, 0);
  const toc = b.endObject();
  const checkpoints = b.createByteVector(encodeTarZinfo({ spanSize: 4096, size: 0 }));
  b.startObject(COMPRESSION_FIELDS);
  b.addFieldInt8(CompressionField.algorithm, ALGORITHM_UNCOMPRESSED, 1);
  b.addFieldInt32(CompressionField.maxSpanId, -1, 0);
  b.addFieldOffset(CompressionField.checkpoints, checkpoints, 0);
  const info = b.endObject();
  b.startObject(ZTOC_FIELDS);
  b.addFieldOffset(ZtocField.toc, toc, 0);
  b.addFieldOffset(ZtocField.compressionInfo, info, 0);
  b.finish(b.endObject());
  return b.asUint8Array().slice();
}
