import { normalizePath } from './codec/reader.js';
import { ZtocError } from './errors.js';
import { type ByteRange, layerSpans } from './layer-spans.js';
import type { FileMetadata, FileType, Ztoc } from './model.js';
import { spanLayout } from './span-layout.js';

/** What to fetch and decode to read `length` bytes at uncompressed `offset`, in ranges of layerSpans. */
export interface SpanPlan {
  offset: number;
  length: number;
  /** First and last span (inclusive) holding the range; for an empty range both are the span at `offset`. */
  startSpan: number;
  endSpan: number;
  /** The spans to fetch, in order (startSpan..endSpan); none for an empty range. */
  spanIds: number[];
  /** One contiguous compressed range covering those spans (empty for an empty range). */
  compressed: ByteRange;
  /** The uncompressed range those spans decode to. */
  uncompressed: ByteRange;
}

/** Spans holding uncompressed bytes [offset, offset + length) of the layer's tar stream. */
export function spansForRange(ztoc: Ztoc, offset: number, length: number): SpanPlan {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new ZtocError(
      'ZTOC_INVALID_ARGUMENT',
      `range offset ${offset}, length ${length} must be non-negative integers`,
    );
  }
  if (offset + length > ztoc.uncompressedArchiveSize) {
    throw new ZtocError(
      'ZTOC_OUT_OF_RANGE',
      `range [${offset}, ${offset + length}) ends after the ${ztoc.uncompressedArchiveSize}-byte tar stream`,
    );
  }
  const spans = layerSpans(ztoc);
  if (spans.spanCount === 0) {
    return { offset, length, startSpan: 0, endSpan: 0, spanIds: [], ...emptyAt(0, 0) };
  }
  const startSpan = spans.spanForOffset(offset);
  if (length === 0) {
    const at = spans.compressedRange(startSpan).start;
    return { offset, length, startSpan, endSpan: startSpan, spanIds: [], ...emptyAt(at, offset) };
  }
  const endSpan = spans.spanForOffset(offset + length - 1);
  const spanIds: number[] = [];
  for (let id = startSpan; id <= endSpan; id++) spanIds.push(id);
  return {
    offset,
    length,
    startSpan,
    endSpan,
    spanIds,
    compressed: { start: spans.compressedRange(startSpan).start, end: spans.compressedRange(endSpan).end },
    uncompressed: {
      start: spans.uncompressedRange(startSpan).start,
      end: spans.uncompressedRange(endSpan).end,
    },
  };
}

function emptyAt(compressed: number, uncompressed: number): Pick<SpanPlan, 'compressed' | 'uncompressed'> {
  return {
    compressed: { start: compressed, end: compressed },
    uncompressed: { start: uncompressed, end: uncompressed },
  };
}

/**
 * Looks up a tar entry by path (exact, or ignoring leading `./` or `/` and trailing `/`).
 * A tar may hold a path more than once; the last entry is what extraction leaves behind.
 */
export function findFile(ztoc: Ztoc, path: string): FileMetadata {
  const wanted = normalizePath(path);
  let normalizedHit: FileMetadata | undefined;
  for (let i = ztoc.toc.length - 1; i >= 0; i--) {
    const f = ztoc.toc[i]!;
    if (f.name === path) return f;
    if (!normalizedHit && normalizePath(f.name) === wanted) normalizedHit = f;
  }
  if (!normalizedHit) throw new ZtocError('ZTOC_NOT_FOUND', `no entry named "${path}" in the zTOC`);
  return normalizedHit;
}

/** Spans holding a file's data. */
export function fileSpans(ztoc: Ztoc, path: string): SpanPlan & { file: FileMetadata } {
  const file = findFile(ztoc, path);
  return { file, ...spansForRange(ztoc, file.uncompressedOffset, file.uncompressedSize) };
}

/** The JSON `soci ztoc info` prints (same keys and meaning as the reference tool). */
export interface ZtocInfo {
  version: string;
  build_tool: string;
  size: number;
  span_size: number;
  num_spans: number;
  num_files: number;
  num_multi_span_files: number;
  files: {
    filename: string;
    offset: number;
    size: number;
    type: FileType;
    start_span: number;
    end_span: number;
  }[];
}

/**
 * Summary of a zTOC as `soci ztoc info` shows it. As in the reference tool, a file's end span is
 * the span of the byte just past its data, so a file ending on a span boundary counts as
 * multi-span. `size` defaults to the compressed layer size; the reference CLI shows the size of
 * the stored zTOC blob, so a CLI should pass that.
 */
export function ztocInfo(ztoc: Ztoc, o: { size?: number } = {}): ZtocInfo {
  const layout = spanLayout(ztoc);
  let multiSpan = 0;
  const files = ztoc.toc.map((f) => {
    const start = layout.spanAt(f.uncompressedOffset);
    const end = layout.spanAt(f.uncompressedOffset + f.uncompressedSize);
    if (start !== end) multiSpan++;
    return {
      filename: f.name,
      offset: f.uncompressedOffset,
      size: f.uncompressedSize,
      type: f.type,
      start_span: start,
      end_span: end,
    };
  });
  return {
    version: ztoc.version,
    build_tool: ztoc.buildToolIdentifier,
    size: o.size ?? ztoc.compressedArchiveSize,
    span_size: layout.spanSize,
    num_spans: ztoc.compressionInfo.maxSpanId + 1,
    num_files: ztoc.toc.length,
    num_multi_span_files: multiSpan,
    files,
  };
}
