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
  /** Span holding tar offset `offset` (0 <= offset < uncompressedSize). */
  spanForOffset(offset: number): number;
  /** `sha256:<hex>` the span's compressed bytes must hash to. */
  digest(spanId: number): string;
  /** Decodes the span's verified compressed bytes to its whole uncompressed range. */
  decode(spanId: number, compressed: Uint8Array): Promise<Uint8Array>;
}

/** Binary search over span start offsets (ascending, first = 0). */
export function spanIndexForOffset(starts: ArrayLike<number>, offset: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
