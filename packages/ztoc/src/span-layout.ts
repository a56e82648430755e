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
import type { Ztoc } from './model.js';

export type { SpanRange };

/**
 * Where each span of a layer lies, for both kinds of layer: gzip spans come from the
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

/** The span layout of a zTOC, decoded once per checkpoint blob and cached. */
export function spanLayout(ztoc: Ztoc): SpanLayout {
  const blob = ztoc.compressionInfo.checkpoints;
  let layout = layouts.get(blob);
  if (!layout) {
    layout = ztoc.compressionInfo.algorithm === 'gzip' ? gzipLayout(ztoc) : tarLayout(ztoc);
    if (layout.spanCount !== ztoc.compressionInfo.maxSpanId + 1) {
      throw new ZtocError(
        'BAD_ZTOC',
        `the checkpoints describe ${layout.spanCount} spans but max_span_id is ${ztoc.compressionInfo.maxSpanId}`,
      );
    }
    layouts.set(blob, layout);
  }
  return layout;
}

function gzipLayout(ztoc: Ztoc): SpanLayout {
  let index: GzipIndex;
  try {
    index = decodeZinfo(ztoc.compressionInfo.checkpoints, {
      compressedSize: ztoc.compressedArchiveSize,
      uncompressedSize: ztoc.uncompressedArchiveSize,
    });
  } catch (cause) {
    throw new ZtocError('BAD_ZTOC', `the zTOC's gzip checkpoints are unreadable: ${String(cause)}`, {
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

function tarLayout(ztoc: Ztoc): SpanLayout {
  let spanSize: number;
  let size: number;
  try {
    ({ spanSize, size } = decodeTarZinfo(ztoc.compressionInfo.checkpoints));
    uncompressedSpanCount(size, spanSize); // validates spanSize
  } catch (cause) {
    throw new ZtocError('BAD_ZTOC', `the zTOC's tar checkpoints are unreadable: ${String(cause)}`, { cause });
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
    throw new ZtocError('OUT_OF_RANGE', `span ${id} does not exist (the layer has ${count} spans)`);
  }
  return id;
}
