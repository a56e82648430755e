import {
  decodeTarZinfo,
  decodeZinfo,
  type GzipIndex,
  type SpanRange,
  spanCount,
  spanForOffset,
  spanRange,
  uncompressedSpanCount,
  uncompressedSpanRange,
} from '@soci-ts/seekable-gzip';
import { ZtocError } from './errors.js';
import { checkLimit, type ZtocLimits } from './limits.js';
import type { CompressionInfo } from './model.js';

/** Byte ranges of one span (end offsets exclusive), as seekable-gzip's span math returns them. */
export type { SpanRange };

/**
 * Internal to this package (other packages use layerSpans). Where each span of a layer lies, for both kinds of layer: gzip spans come from the
 * checkpoints; plain-tar spans are fixed `spanSize` slices, compressed == uncompressed.
 */
export interface SpanLayout {
  readonly spanSize: number;
  readonly spanCount: number;
  /** The decoded gzip index, for span decoding; undefined for plain tar layers. */
  readonly gzipIndex: GzipIndex | undefined;
  range(spanId: number): SpanRange;
  /** Span holding uncompressed `offset` (offsets at or past the end map to the last span). */
  spanAt(offset: number): number;
}

const layouts = new WeakMap<Uint8Array, SpanLayout>();

/** What the checkpoint blob of a zTOC is read against. */
export interface CheckpointSource {
  compressedArchiveSize: number;
  uncompressedArchiveSize: number;
  compressionInfo: Pick<CompressionInfo, 'algorithm' | 'maxSpanId' | 'checkpoints'>;
}

/** The span layout of a zTOC, decoded once per checkpoint blob and cached. */
export function spanLayout(ztoc: CheckpointSource): SpanLayout {
  const blob = ztoc.compressionInfo.checkpoints;
  let layout = layouts.get(blob);
  if (!layout) {
    layout = readSpanLayout(ztoc);
    layouts.set(blob, layout);
  }
  return layout;
}

/**
 * Decodes and checks the checkpoint blob against the rest of the zTOC; throws ZTOC_INVALID when they
 * disagree, so a bad zTOC fails when it is read and never as a short read later.
 */
export function readSpanLayout(ztoc: CheckpointSource): SpanLayout {
  const layout = ztoc.compressionInfo.algorithm === 'gzip' ? gzipLayout(ztoc) : tarLayout(ztoc);
  if (layout.spanCount !== ztoc.compressionInfo.maxSpanId + 1) {
    throw new ZtocError(
      'ZTOC_INVALID',
      `the checkpoints describe ${layout.spanCount} spans but max_span_id is ${ztoc.compressionInfo.maxSpanId}`,
    );
  }
  return layout;
}

/** Throws ZTOC_LIMIT_EXCEEDED when a span (declared or actual) is larger than `limits.maxSpanBytes`. */
export function checkSpanLimits(layout: SpanLayout, limits: ZtocLimits): void {
  checkLimit(limits, 'maxSpanBytes', layout.spanSize, 'the span size');
  // Plain-tar spans are never longer than the span size; gzip spans end where a writer cut them.
  if (!layout.gzipIndex) return;
  for (let id = 0; id < layout.spanCount; id++) {
    const r = layout.range(id);
    const longest = Math.max(r.uncompressedEnd - r.uncompressedStart, r.compressedEnd - r.compressedStart);
    checkLimit(limits, 'maxSpanBytes', longest, `span ${id}'s length`);
  }
}

function gzipLayout(ztoc: CheckpointSource): SpanLayout {
  let index: GzipIndex;
  try {
    index = decodeZinfo(ztoc.compressionInfo.checkpoints, {
      compressedSize: ztoc.compressedArchiveSize,
      uncompressedSize: ztoc.uncompressedArchiveSize,
    });
  } catch (cause) {
    throw new ZtocError('ZTOC_INVALID', `the zTOC's gzip checkpoints are unreadable: ${String(cause)}`, {
      cause,
    });
  }
  const count = spanCount(index);
  return {
    spanSize: index.spanSize,
    spanCount: count,
    gzipIndex: index,
    range: (id) => spanRange(index, checkSpan(id, count)),
    spanAt: (offset) => (offset >= index.uncompressedSize ? count - 1 : spanForOffset(index, offset)),
  };
}

function tarLayout(ztoc: CheckpointSource): SpanLayout {
  let spanSize: number;
  let size: number;
  try {
    ({ spanSize, size } = decodeTarZinfo(ztoc.compressionInfo.checkpoints));
    uncompressedSpanCount(size, spanSize); // validates spanSize
  } catch (cause) {
    throw new ZtocError('ZTOC_INVALID', `the zTOC's tar checkpoints are unreadable: ${String(cause)}`, {
      cause,
    });
  }
  // A plain-tar span is a slice of the archive itself: a TarZinfo size other than the archive's
  // would make the last spans shorter (or longer) than the reads planned from the file table.
  if (size !== ztoc.uncompressedArchiveSize || size !== ztoc.compressedArchiveSize) {
    throw new ZtocError(
      'ZTOC_INVALID',
      `the zTOC's tar checkpoints describe a ${size}-byte archive, but the zTOC says the layer is ` +
        `${ztoc.compressedArchiveSize} bytes (${ztoc.uncompressedArchiveSize} uncompressed); ` +
        'rebuild the zTOC from this layer',
    );
  }
  const count = uncompressedSpanCount(size, spanSize);
  return {
    spanSize,
    spanCount: count,
    gzipIndex: undefined,
    range: (id) => uncompressedSpanRange(size, spanSize, checkSpan(id, count)),
    spanAt: (offset) => Math.max(0, Math.min(Math.floor(offset / spanSize), count - 1)),
  };
}

function checkSpan(id: number, count: number): number {
  if (!Number.isInteger(id) || id < 0 || id >= count) {
    throw new ZtocError('ZTOC_OUT_OF_RANGE', `span ${id} does not exist (the layer has ${count} spans)`);
  }
  return id;
}
