/**
 * The span model of a layer, the one way other packages see spans: ranges, digest, decode. How a
 * span decodes (gzip checkpoints or plain tar bytes) stays inside this package.
 */
import { decodeSpan } from '@soci-ts/seekable-gzip';
import { ZtocError } from './errors.js';
import type { Ztoc } from './model.js';
import { spanLayout } from './span-layout.js';

/** Byte range, end exclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * How one layer blob is cut into independently decodable spans: where each span's compressed
 * bytes are, which tar bytes they decode to, what their digest must be, and how to decode
 * them. Built from a zTOC (gzip checkpoints or a plain-tar TarZinfo).
 */
export interface LayerSpans {
  readonly spanCount: number;
  /** Size of the uncompressed tar stream. */
  readonly uncompressedSize: number;
  compressedRange(spanId: number): ByteRange;
  uncompressedRange(spanId: number): ByteRange;
  /**
   * Span holding tar offset `offset` (0 <= offset < uncompressedSize; an offset at or past the
   * end maps to the last span).
   */
  spanForOffset(offset: number): number;
  /** `sha256:<hex>` the span's compressed bytes must hash to. */
  digest(spanId: number): string;
  /**
   * Decodes the span's verified compressed bytes (exactly its compressed range) to its whole
   * uncompressed range, or to `part` of it only (offset relative to the span's uncompressed
   * start; decoding stops at its end). Always a new buffer: the input may be a view into a
   * larger fetch.
   */
  decode(spanId: number, compressed: Uint8Array, part?: SpanPart): Promise<Uint8Array>;
}

/** Bytes [offset, offset + length) of a span's uncompressed range, relative to its start. */
export interface SpanPart {
  offset: number;
  length: number;
}

/** Built once per zTOC: queries ask for it per file and per range. */
const built = new WeakMap<Ztoc, LayerSpans>();

/** Throws ZtocError ZTOC_INVALID when the zTOC's checkpoints, span digests and sizes disagree. */
export function layerSpans(ztoc: Ztoc): LayerSpans {
  let spans = built.get(ztoc);
  if (!spans) {
    spans = buildLayerSpans(ztoc);
    built.set(ztoc, spans);
  }
  return spans;
}

function buildLayerSpans(ztoc: Ztoc): LayerSpans {
  const layout = spanLayout(ztoc);
  const n = layout.spanCount;
  const digests = ztoc.compressionInfo.spanDigests;
  if (digests.length !== n) {
    throw new ZtocError(
      'ZTOC_INVALID',
      `the zTOC has ${digests.length} span digests for ${n} spans; rebuild the zTOC from its layer`,
    );
  }
  // Ranges are looked up on every read: compute them once, flat (start, end) pairs.
  const compressed = new Float64Array(2 * n);
  const uncompressed = new Float64Array(2 * n);
  for (let id = 0; id < n; id++) {
    const r = layout.range(id);
    compressed[2 * id] = r.compressedStart;
    compressed[2 * id + 1] = r.compressedEnd;
    uncompressed[2 * id] = r.uncompressedStart;
    uncompressed[2 * id + 1] = r.uncompressedEnd;
  }
  const checked = (id: number): number => {
    if (!Number.isInteger(id) || id < 0 || id >= n) {
      throw new ZtocError('ZTOC_OUT_OF_RANGE', `span ${id} does not exist (the layer has ${n} spans)`);
    }
    return id;
  };
  const pair = (ranges: Float64Array, id: number): ByteRange => {
    const at = 2 * checked(id);
    return { start: ranges[at]!, end: ranges[at + 1]! };
  };
  const gzipIndex = layout.gzipIndex;
  const inflate = gzipIndex
    ? (id: number, bytes: Uint8Array, part: SpanPart) => decodeSpan(gzipIndex, id, bytes, part)
    : // A copy, as the fetch buffer may hold several spans (and Buffer#slice would give a view).
      async (_id: number, bytes: Uint8Array, part: SpanPart) =>
        new Uint8Array(bytes.subarray(part.offset, part.offset + part.length));

  return {
    spanCount: n,
    uncompressedSize: ztoc.uncompressedArchiveSize,
    compressedRange: (id) => pair(compressed, id),
    uncompressedRange: (id) => pair(uncompressed, id),
    spanForOffset: (offset) => spanStartingAtOrBefore(uncompressed, n, offset),
    digest: (id) => digests[checked(id)]!,
    decode: async (id, bytes, wanted) => {
      const want = pair(compressed, id);
      const whole = uncompressed[2 * id + 1]! - uncompressed[2 * id]!;
      const part = wanted ?? { offset: 0, length: whole };
      if (
        !Number.isSafeInteger(part.offset) ||
        !Number.isSafeInteger(part.length) ||
        part.offset < 0 ||
        part.length < 0 ||
        part.offset + part.length > whole
      ) {
        throw new ZtocError(
          'ZTOC_INVALID_ARGUMENT',
          `part [${part.offset}, +${part.length}) is not inside span ${id}'s ${whole} uncompressed bytes`,
        );
      }
      if (bytes.length !== want.end - want.start) {
        throw new ZtocError(
          'ZTOC_INVALID_ARGUMENT',
          `span ${id} is ${want.end - want.start} compressed bytes [${want.start}, ${want.end}), got ${bytes.length}; pass exactly the span's bytes`,
        );
      }
      let decoded: Uint8Array;
      try {
        decoded = await inflate(id, bytes, part);
      } catch (cause) {
        throw new ZtocError(
          'ZTOC_INVALID',
          `span ${id} does not decode (${(cause as Error).message}); check its bytes against digest(${id}), or the zTOC does not belong to this layer`,
          { cause },
        );
      }
      if (decoded.length !== part.length) {
        throw new ZtocError(
          'ZTOC_INVALID',
          `span ${id} decoded to ${decoded.length} bytes, the zTOC says ${part.length}; the zTOC does not belong to this layer`,
        );
      }
      return decoded;
    },
  };
}

/** Binary search over the span starts (ascending, the first is 0) in the flat pairs. */
function spanStartingAtOrBefore(uncompressed: Float64Array, n: number, offset: number): number {
  if (n === 0 || !(offset >= 0)) {
    throw new ZtocError(
      'ZTOC_OUT_OF_RANGE',
      `tar offset ${offset} is in no span (the layer has ${n} spans over ${n === 0 ? 0 : uncompressed[2 * n - 1]} bytes)`,
    );
  }
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (uncompressed[2 * mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
