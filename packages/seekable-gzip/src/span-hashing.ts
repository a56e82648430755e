import type { RetainedInput } from './retained-input.js';
import type { Hasher } from './types.js';

/**
 * Hashes each span's compressed range while the blob streams by. Span i covers
 * [in_i - (bits_i ? 1 : 0), in_{i+1}), so consecutive ranges can share one byte. Bytes are read from
 * the retained input, and the owner only advances the hasher to offsets where no span can start
 * any more.
 */
export class SpanHashing {
  private current: Hasher | null = null;
  /** Absolute offset up to which `current` has been fed. */
  private fedTo = 0;
  private readonly digests: string[] = [];

  constructor(private readonly newHasher: () => Hasher) {}

  /** Offset of the first byte the hasher still needs (Infinity before the first span). */
  get needsFrom(): number {
    return this.current ? this.fedTo : Number.POSITIVE_INFINITY;
  }

  startSpan(input: RetainedInput, inPos: number, bits: number): void {
    this.advance(input, inPos);
    if (this.current) this.digests.push(this.current.digest());
    this.current = this.newHasher();
    this.fedTo = bits !== 0 ? inPos - 1 : inPos;
  }

  /** Feeds the current span's bytes up to `pos` (exclusive). */
  advance(input: RetainedInput, pos: number): void {
    if (!this.current || pos <= this.fedTo) return;
    for (const piece of input.range(this.fedTo, pos)) this.current.update(piece);
    this.fedTo = pos;
  }

  /** Closes the last span at the blob end and returns all digests. */
  finish(input: RetainedInput, blobEnd: number): string[] {
    this.advance(input, blobEnd);
    if (this.current) this.digests.push(this.current.digest());
    this.current = null;
    return this.digests;
  }
}
