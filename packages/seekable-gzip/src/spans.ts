import { SeekableGzipError } from './errors.js';
import type { GzipIndex, SpanRange } from './types.js';

/** Number of spans (one per checkpoint). */
export function spanCount(index: GzipIndex): number {
  return index.checkpoints.length;
}

/** Compressed and uncompressed byte ranges of span `spanId` of a gzip blob. */
export function spanRange(index: GzipIndex, spanId: number): SpanRange {
  const { checkpoints } = index;
  checkSpanId(spanId, checkpoints.length);
  const cp = checkpoints[spanId]!;
  const next = checkpoints[spanId + 1];
  return {
    spanId,
    compressedStart: cp.bits !== 0 ? cp.in - 1 : cp.in,
    compressedEnd: next ? next.in : index.compressedSize,
    uncompressedStart: cp.out,
    uncompressedEnd: next ? next.out : index.uncompressedSize,
  };
}

/** The span holding uncompressed offset `offset` (0 <= offset < uncompressedSize). */
export function spanForOffset(index: GzipIndex, offset: number): number {
  checkOffset(offset, index.uncompressedSize);
  const { checkpoints } = index;
  // Last checkpoint with out <= offset.
  let lo = 0;
  let hi = checkpoints.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (checkpoints[mid]!.out <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Number of spans of an uncompressed (plain tar) layer of `size` bytes: exact `spanSize` slices. */
export function uncompressedSpanCount(size: number, spanSize: number): number {
  checkSpanSize(spanSize);
  return Math.ceil(size / spanSize);
}

/** Span ranges of an uncompressed layer; compressed and uncompressed ranges are the same bytes. */
export function uncompressedSpanRange(size: number, spanSize: number, spanId: number): SpanRange {
  checkSpanId(spanId, uncompressedSpanCount(size, spanSize));
  const start = spanId * spanSize;
  const end = Math.min(size, start + spanSize);
  return {
    spanId,
    compressedStart: start,
    compressedEnd: end,
    uncompressedStart: start,
    uncompressedEnd: end,
  };
}

/** The span of an uncompressed layer holding offset `offset`. */
export function uncompressedSpanForOffset(size: number, spanSize: number, offset: number): number {
  checkSpanSize(spanSize);
  checkOffset(offset, size);
  return Math.floor(offset / spanSize);
}

/** Validates a read range inside a span of `spanLength` bytes; defaults to the whole span. */
export function resolveRange(
  spanLength: number,
  range: { offset: number; length: number } | undefined,
): { offset: number; length: number } {
  if (!range) return { offset: 0, length: spanLength };
  const { offset, length } = range;
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new SeekableGzipError('GZIP_BAD_SPAN', `read range offset=${offset} length=${length} is invalid`);
  }
  if (offset + length > spanLength) {
    throw new SeekableGzipError(
      'GZIP_BAD_SPAN',
      `read range [${offset}, ${offset + length}) is outside the span's ${spanLength} uncompressed bytes`,
    );
  }
  return { offset, length };
}

function checkSpanId(spanId: number, count: number): void {
  if (!Number.isInteger(spanId) || spanId < 0 || spanId >= count) {
    throw new SeekableGzipError(
      'GZIP_BAD_SPAN',
      `span id ${spanId} does not exist (the layer has ${count} spans)`,
    );
  }
}

function checkOffset(offset: number, size: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset >= size) {
    throw new SeekableGzipError(
      'GZIP_BAD_SPAN',
      `uncompressed offset ${offset} is outside the ${size}-byte stream`,
    );
  }
}

function checkSpanSize(spanSize: number): void {
  if (!Number.isSafeInteger(spanSize) || spanSize <= 0) {
    throw new SeekableGzipError(
      'GZIP_INVALID_ARGUMENT',
      `spanSize must be a positive integer, got ${spanSize}`,
    );
  }
}
