import { WINDOW_SIZE } from './raw-inflate.js';

/**
 * The last 32 KiB of uncompressed output, right-aligned and zero-filled at the start, which is
 * exactly the checkpoint window layout. Updated once per emitted output chunk, not per byte.
 */
export class OutputHistory {
  private readonly buf = new Uint8Array(WINDOW_SIZE);

  append(data: Uint8Array): void {
    const n = data.length;
    if (n >= WINDOW_SIZE) {
      this.buf.set(data.subarray(n - WINDOW_SIZE));
    } else if (n > 0) {
      this.buf.copyWithin(0, n);
      this.buf.set(data, WINDOW_SIZE - n);
    }
  }

  /** The window as it would be after appending `pending` (not yet emitted output). */
  windowWith(pending: Uint8Array): Uint8Array {
    const n = pending.length;
    if (n >= WINDOW_SIZE) return pending.slice(n - WINDOW_SIZE);
    const window = new Uint8Array(WINDOW_SIZE);
    window.set(this.buf.subarray(n));
    window.set(pending, WINDOW_SIZE - n);
    return window;
  }
}
