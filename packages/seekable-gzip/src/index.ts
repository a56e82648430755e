export {
  type BuildResult,
  buildGzipIndex,
  CheckpointBuilder,
  type CheckpointBuilderOptions,
} from './checkpoint-builder.js';
export { decodeSpan } from './decode-span.js';
export { decodeSpanSync } from './decode-span-sync.js';
export { SeekableGzipError, type SeekableGzipErrorCode } from './errors.js';
export { WINDOW_SIZE } from './raw-inflate.js';
export {
  spanCount,
  spanForOffset,
  spanRange,
  uncompressedSpanCount,
  uncompressedSpanForOffset,
  uncompressedSpanRange,
} from './spans.js';
export { decodeTarZinfo, encodeTarZinfo, TAR_ZINFO_VERSION, type TarZinfo } from './tar-zinfo.js';
export type { Checkpoint, GzipIndex, Hasher, SpanRange } from './types.js';
export { decodeZinfo, encodeZinfo, validateIndex } from './zinfo.js';
