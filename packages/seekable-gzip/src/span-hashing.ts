import type { Hasher } from './types.js';

/**
 * Hashes each span's compressed range while the blob streams by. Span i covers
 * [in_i - (bits_i ? 1 : 0), in_{i+1}), so consecutive ranges can share one byte; the byte before the
 * current chunk is kept for the case where a span starts there.
 */
export class SpanHashing {
  private current: Hasher | null = null;
  /** Absolute offset up to which `current` has been fed. */
  private fedTo = 0;
  private previousByte = -1;
  readonly digests: string[] = [];

  constructor(private readonly newHasher: () => Hasher) {}

  /**
   * A new span starts; `chunk` is the chunk being processed, which begins at absolute offset
   * `chunkStart` and contains `inPos` (or ends right at it).
   */
  startSpan(chunk: Uint8Array, chunkStart: number, inPos: number, bits: number): void {
    this.feedUntil(chunk, chunkStart, inPos);
    if (this.current) this.digests.push(this.current.digest());
    this.current = this.newHasher();
    const start = bits !== 0 ? inPos - 1 : inPos;
    if (start < chunkStart) {
      this.current.update(Uint8Array.of(this.previousByte));
      this.fedTo = chunkStart;
    } else {
      this.fedTo = start;
    }
  }

  /** The chunk is done: everything in it after the current span's start belongs to that span. */
  endChunk(chunk: Uint8Array, chunkStart: number): void {
    this.feedUntil(chunk, chunkStart, chunkStart + chunk.length);
    if (chunk.length > 0) this.previousByte = chunk[chunk.length - 1]!;
  }

  /** Closes the last span (it ends at the blob end) and returns all digests. */
  finish(): string[] {
    if (this.current) this.digests.push(this.current.digest());
    this.current = null;
    return this.digests;
  }

  private feedUntil(chunk: Uint8Array, chunkStart: number, end: number): void {
    if (!this.current || end <= this.fedTo) return;
    this.current.update(chunk.subarray(this.fedTo - chunkStart, end - chunkStart));
    this.fedTo = end;
  }
}
