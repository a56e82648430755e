/**
 * Compressed chunks kept (by reference, not copied) since some absolute offset, so span hashing and
 * block replays can look back a little. The owner drops what it no longer needs.
 */
export class RetainedInput {
  private chunks: { start: number; data: Uint8Array }[] = [];
  private bytes = 0;

  append(start: number, data: Uint8Array): void {
    if (data.length === 0) return;
    this.chunks.push({ start, data });
    this.bytes += data.length;
  }

  /** Bytes currently held. */
  get size(): number {
    return this.bytes;
  }

  /** Offset of the oldest byte held (Infinity when empty). */
  get start(): number {
    return this.chunks[0]?.start ?? Number.POSITIVE_INFINITY;
  }

  /** Forgets every chunk that ends at or before `pos`. */
  dropBefore(pos: number): void {
    let k = 0;
    while (k < this.chunks.length && this.chunks[k]!.start + this.chunks[k]!.data.length <= pos) {
      this.bytes -= this.chunks[k]!.data.length;
      k++;
    }
    if (k > 0) this.chunks = this.chunks.slice(k);
  }

  /** Views of the held bytes in `[from, to)`, in order. */
  *range(from: number, to: number): Generator<Uint8Array> {
    for (const { start, data } of this.chunks) {
      const end = start + data.length;
      if (end <= from) continue;
      if (start >= to) return;
      yield data.subarray(Math.max(0, from - start), Math.min(data.length, to - start));
    }
  }

  byteAt(pos: number): number {
    for (const piece of this.range(pos, pos + 1)) return piece[0]!;
    throw new Error(`byte ${pos} is no longer retained`);
  }
}
