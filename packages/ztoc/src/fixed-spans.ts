import type { Hasher } from '@soci-ts/seekable-gzip';

/** Digests of consecutive `spanSize` slices of a stream (plain-tar layers), computed as it passes. */
export class FixedSpanHasher {
  private readonly digests: string[] = [];
  private current: Hasher | undefined;
  private filled = 0;
  private total = 0;

  constructor(
    private readonly spanSize: number,
    private readonly newHasher: () => Hasher,
  ) {}

  push(chunk: Uint8Array): void {
    let p = 0;
    this.total += chunk.length;
    while (p < chunk.length) {
      if (!this.current) this.current = this.newHasher();
      const n = Math.min(this.spanSize - this.filled, chunk.length - p);
      this.current.update(chunk.subarray(p, p + n));
      this.filled += n;
      p += n;
      if (this.filled === this.spanSize) this.closeSpan();
    }
  }

  finish(): { size: number; spanDigests: string[] } {
    if (this.current) this.closeSpan();
    return { size: this.total, spanDigests: this.digests };
  }

  private closeSpan(): void {
    this.digests.push(this.current!.digest());
    this.current = undefined;
    this.filled = 0;
  }
}
