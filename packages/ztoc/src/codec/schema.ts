/**
 * Field ids of the zTOC flatbuffers schema (namespace `ztoc`, see shared/spec/soci-compat.md
 * section 2). Flatbuffers identifies a field by its declaration order, so these numbers ARE
 * the wire format: never renumber.
 */
export const XattrField = { key: 0, value: 1 } as const;
export const XATTR_FIELDS = 2;

export const FileField = {
  name: 0,
  type: 1,
  uncompressedOffset: 2,
  uncompressedSize: 3,
  linkname: 4,
  mode: 5,
  uid: 6,
  gid: 7,
  uname: 8,
  gname: 9,
  modTime: 10,
  devmajor: 11,
  devminor: 12,
  xattrs: 13,
} as const;
export const FILE_FIELDS = 14;

export const CompressionField = { algorithm: 0, maxSpanId: 1, spanDigests: 2, checkpoints: 3 } as const;
export const COMPRESSION_FIELDS = 4;

export const TocField = { metadata: 0 } as const;
export const TOC_FIELDS = 1;

export const ZtocField = {
  version: 0,
  buildToolIdentifier: 1,
  compressedArchiveSize: 2,
  uncompressedArchiveSize: 3,
  toc: 4,
  compressionInfo: 5,
} as const;
export const ZTOC_FIELDS = 6;

/** `enum CompressionAlgorithm:byte { Gzip = 1, Uncompressed }`; Gzip is the field default. */
export const ALGORITHM_GZIP = 1;
export const ALGORITHM_UNCOMPRESSED = 2;

/** The version the reference tool writes and this package writes. */
export const ZTOC_VERSION = '0.9';

/** Flatbuffers vtable slot (byte offset inside the vtable) of field `id`. */
export function slot(id: number): number {
  return 4 + 2 * id;
}
