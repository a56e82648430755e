/**
 * A place in a gzip stream where decoding can restart: the end of a deflate block.
 * Offsets are plain numbers (exact up to 2^53 bytes, far beyond any layer).
 */
export interface Checkpoint {
  /** Offset in the compressed blob of the first byte fully after the block boundary. */
  in: number;
  /** Offset in the uncompressed stream. */
  out: number;
  /** Bits (0-7) of the byte at `in - 1` that still belong to the next block. */
  bits: number;
  /** The last 32 KiB of output before `out`, oldest byte first, zero-filled at the start. */
  window: Uint8Array;
}

/** Everything needed to decode any span of one gzip blob. */
export interface GzipIndex {
  spanSize: number;
  checkpoints: Checkpoint[];
  compressedSize: number;
  uncompressedSize: number;
}

/** Byte ranges of one span (end offsets exclusive). */
export interface SpanRange {
  spanId: number;
  compressedStart: number;
  compressedEnd: number;
  uncompressedStart: number;
  uncompressedEnd: number;
}

/** Incremental hash, so span digests can be computed while the blob streams by. */
export interface Hasher {
  update(data: Uint8Array): void;
  /** Returns `sha256:<hex>`-style digest text. */
  digest(): string;
}
