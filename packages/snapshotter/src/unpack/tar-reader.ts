import type { FileHandle } from 'node:fs/promises';

const WINDOW = 8 << 20;

/**
 * Reads file contents from the spooled tar. Entries come in stream order, so small files are
 * served from one large read-ahead window instead of one read each.
 */
export class TarReader {
  private window = Buffer.alloc(0);
  private windowStart = 0;

  constructor(private readonly tar: FileHandle) {}

  /** A copy of `size` bytes at `offset` (size at most the window). */
  async bytes(offset: number, size: number): Promise<Buffer> {
    if (offset < this.windowStart || offset + size > this.windowStart + this.window.length) {
      const window = Buffer.allocUnsafe(Math.max(WINDOW, size));
      const { bytesRead } = await this.tar.read(window, 0, window.length, offset);
      this.window = window.subarray(0, bytesRead);
      this.windowStart = offset;
      if (bytesRead < size) throw new Error(`tar spool ends before byte ${offset + size}`);
    }
    return Buffer.from(this.window.subarray(offset - this.windowStart, offset - this.windowStart + size));
  }

  /** Reads into `buffer` at `offset` (for contents too large to hold at once). */
  async readInto(buffer: Buffer, length: number, offset: number): Promise<number> {
    const { bytesRead } = await this.tar.read(buffer, 0, length, offset);
    if (bytesRead === 0) throw new Error(`tar spool ends at byte ${offset}`);
    return bytesRead;
  }

  /** The raw file, for reads outside the stream order. */
  get file(): FileHandle {
    return this.tar;
  }
}
