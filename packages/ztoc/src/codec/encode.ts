import { Builder } from 'flatbuffers';
import { ZtocError } from '../errors.js';
import type { FileMetadata, Ztoc } from '../model.js';
import { compareUtf8 } from '../utf8-order.js';
import {
  ALGORITHM_GZIP,
  ALGORITHM_UNCOMPRESSED,
  COMPRESSION_FIELDS,
  CompressionField,
  FILE_FIELDS,
  FileField,
  TOC_FIELDS,
  TocField,
  XATTR_FIELDS,
  XattrField,
  ZTOC_FIELDS,
  ZtocField,
} from './schema.js';

/**
 * Serializes a zTOC to the flatbuffers layout the reference tool reads.
 * Strings that repeat across entries (type, owner names, times, empty strings) are shared.
 */
export function encodeZtoc(ztoc: Ztoc): Uint8Array {
  const b = new Builder(1024 + ztoc.toc.length * 160 + ztoc.compressionInfo.checkpoints.length);
  const shared = sharedStrings(b);
  const version = b.createString(ztoc.version);
  const buildTool = b.createString(ztoc.buildToolIdentifier);
  const toc = writeToc(b, shared, ztoc.toc);
  const compressionInfo = writeCompressionInfo(b, ztoc);

  b.startObject(ZTOC_FIELDS);
  b.addFieldOffset(ZtocField.version, version, 0);
  b.addFieldOffset(ZtocField.buildToolIdentifier, buildTool, 0);
  b.addFieldInt64(
    ZtocField.compressedArchiveSize,
    int64(ztoc.compressedArchiveSize, 'compressedArchiveSize'),
    0n,
  );
  b.addFieldInt64(
    ZtocField.uncompressedArchiveSize,
    int64(ztoc.uncompressedArchiveSize, 'uncompressedArchiveSize'),
    0n,
  );
  b.addFieldOffset(ZtocField.toc, toc, 0);
  b.addFieldOffset(ZtocField.compressionInfo, compressionInfo, 0);
  b.finish(b.endObject());
  return b.asUint8Array().slice();
}

/**
 * Interns repeated strings. The runtime's createSharedString writes nothing for '' (the field
 * is then absent); the reference writer stores empty strings, so this does too.
 */
function sharedStrings(b: Builder): (s: string) => number {
  const seen = new Map<string, number>();
  return (s) => {
    let offset = seen.get(s);
    if (offset === undefined) {
      offset = b.createString(s);
      seen.set(s, offset);
    }
    return offset;
  };
}

type Share = (s: string) => number;

function writeToc(b: Builder, share: Share, files: readonly FileMetadata[]): number {
  const offsets = files.map((f) => writeFile(b, share, f));
  const metadata = writeOffsetVector(b, offsets);
  b.startObject(TOC_FIELDS);
  b.addFieldOffset(TocField.metadata, metadata, 0);
  return b.endObject();
}

function writeFile(b: Builder, share: Share, f: FileMetadata): number {
  const name = b.createString(f.name);
  const type = share(f.type);
  const linkname = share(f.linkname);
  const uname = share(f.uname);
  const gname = share(f.gname);
  const modTime = share(f.modTime);
  const xattrs = writeXattrs(b, share, f.xattrs);

  b.startObject(FILE_FIELDS);
  b.addFieldOffset(FileField.name, name, 0);
  b.addFieldOffset(FileField.type, type, 0);
  b.addFieldInt64(FileField.uncompressedOffset, int64(f.uncompressedOffset, 'uncompressedOffset'), 0n);
  b.addFieldInt64(FileField.uncompressedSize, int64(f.uncompressedSize, 'uncompressedSize'), 0n);
  b.addFieldOffset(FileField.linkname, linkname, 0);
  b.addFieldInt64(FileField.mode, int64(f.mode, 'mode'), 0n);
  // uint32 fields: the builder writes int32, so pass the same 32 bits in two's complement.
  b.addFieldInt32(FileField.uid, uint32(f.uid, 'uid') | 0, 0);
  b.addFieldInt32(FileField.gid, uint32(f.gid, 'gid') | 0, 0);
  b.addFieldOffset(FileField.uname, uname, 0);
  b.addFieldOffset(FileField.gname, gname, 0);
  b.addFieldOffset(FileField.modTime, modTime, 0);
  b.addFieldInt64(FileField.devmajor, int64(f.devmajor, 'devmajor'), 0n);
  b.addFieldInt64(FileField.devminor, int64(f.devminor, 'devminor'), 0n);
  b.addFieldOffset(FileField.xattrs, xattrs, 0);
  return b.endObject();
}

function writeXattrs(b: Builder, share: Share, records: Readonly<Record<string, string>>): number {
  const keys = Object.keys(records).sort(compareUtf8);
  const offsets = keys.map((key) => {
    const k = share(key);
    const v = share(records[key]!);
    b.startObject(XATTR_FIELDS);
    b.addFieldOffset(XattrField.key, k, 0);
    b.addFieldOffset(XattrField.value, v, 0);
    return b.endObject();
  });
  return writeOffsetVector(b, offsets);
}

function writeCompressionInfo(b: Builder, ztoc: Ztoc): number {
  const info = ztoc.compressionInfo;
  const checkpoints = b.createByteVector(info.checkpoints);
  const digests = writeOffsetVector(
    b,
    info.spanDigests.map((d) => b.createString(d)),
  );
  let algorithm: number;
  if (info.algorithm === 'gzip') algorithm = ALGORITHM_GZIP;
  else if (info.algorithm === 'uncompressed') algorithm = ALGORITHM_UNCOMPRESSED;
  else
    throw new ZtocError('ZTOC_INVALID_ARGUMENT', `unknown compression algorithm ${String(info.algorithm)}`);
  if (!Number.isInteger(info.maxSpanId) || info.maxSpanId < -1 || info.maxSpanId > 0x7fffffff) {
    throw new ZtocError('ZTOC_INVALID_ARGUMENT', `maxSpanId ${info.maxSpanId} is not an int32 >= -1`);
  }

  b.startObject(COMPRESSION_FIELDS);
  b.addFieldInt8(CompressionField.algorithm, algorithm, ALGORITHM_GZIP);
  b.addFieldInt32(CompressionField.maxSpanId, info.maxSpanId, 0);
  b.addFieldOffset(CompressionField.spanDigests, digests, 0);
  b.addFieldOffset(CompressionField.checkpoints, checkpoints, 0);
  return b.endObject();
}

function writeOffsetVector(b: Builder, offsets: readonly number[]): number {
  b.startVector(4, offsets.length, 4);
  for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i]!);
  return b.endVector();
}

function int64(value: number, field: string): bigint {
  if (!Number.isSafeInteger(value)) {
    throw new ZtocError('ZTOC_INVALID_ARGUMENT', `${field} must be a safe integer, got ${value}`);
  }
  return BigInt(value);
}

function uint32(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new ZtocError('ZTOC_INVALID_ARGUMENT', `${field} must be a uint32, got ${value}`);
  }
  return value;
}
