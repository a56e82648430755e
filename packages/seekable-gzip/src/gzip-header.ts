import { crc32 } from './crc32.js';
import { SeekableGzipError } from './errors.js';

const FTEXT_RESERVED = 0xe0;
const FHCRC = 0x02;
const FEXTRA = 0x04;
const FNAME = 0x08;
const FCOMMENT = 0x10;

enum Step {
  Fixed,
  ExtraLength,
  Extra,
  Name,
  Comment,
  HeaderCrc,
  Done,
}

/**
 * Incremental parser for one gzip member header (RFC 1952 section 2.3). It keeps no more than the
 * 10 fixed bytes, so a huge FEXTRA/FNAME cannot make memory grow, and it works across chunk borders.
 */
export class GzipHeaderParser {
  private step = Step.Fixed;
  private readonly fixed = new Uint8Array(10);
  private have = 0;
  private flags = 0;
  private remaining = 0;
  private crc = 0;
  private crcBytes = new Uint8Array(2);

  /** `offset` is where the header starts in the blob, only used in error messages. */
  constructor(private readonly offset = 0) {}

  /**
   * Consumes header bytes from `data[start, end)`. Returns the index just past the header once it is
   * complete, or -1 when every byte was consumed and more are needed.
   */
  feed(data: Uint8Array, start: number, end: number): number {
    let i = start;
    while (i < end) {
      switch (this.step) {
        case Step.Fixed: {
          const take = Math.min(10 - this.have, end - i);
          this.fixed.set(data.subarray(i, i + take), this.have);
          this.have += take;
          i += take;
          if (this.have === 10) this.checkFixed();
          break;
        }
        case Step.ExtraLength: {
          this.crcBytes[this.have++] = data[i++]!;
          if (this.have === 2) {
            this.remaining = this.crcBytes[0]! | (this.crcBytes[1]! << 8);
            this.hashed(this.crcBytes, 0, 2);
            this.step = this.remaining > 0 ? Step.Extra : this.afterExtra();
          }
          break;
        }
        case Step.Extra: {
          const take = Math.min(this.remaining, end - i);
          this.hashed(data, i, i + take);
          i += take;
          this.remaining -= take;
          if (this.remaining === 0) this.step = this.afterExtra();
          break;
        }
        case Step.Name:
        case Step.Comment: {
          const zero = data.indexOf(0, i);
          const stop = zero < 0 || zero >= end ? end : zero + 1;
          this.hashed(data, i, stop);
          i = stop;
          if (stop === zero + 1) this.step = this.step === Step.Name ? this.afterName() : this.afterComment();
          break;
        }
        case Step.HeaderCrc: {
          this.crcBytes[this.have++] = data[i++]!;
          if (this.have === 2) {
            const stored = this.crcBytes[0]! | (this.crcBytes[1]! << 8);
            if (stored !== (this.crc & 0xffff)) {
              throw new SeekableGzipError(
                'GZIP_CRC_MISMATCH',
                `gzip header CRC16 mismatch in the member at offset ${this.offset}: the header is corrupt`,
              );
            }
            this.step = Step.Done;
          }
          break;
        }
        case Step.Done:
          return i;
      }
      if (this.step === Step.Done) return i;
    }
    return this.step === Step.Done ? i : -1;
  }

  /** True when not a single byte of this header has been seen yet. */
  get untouched(): boolean {
    return this.step === Step.Fixed && this.have === 0;
  }

  private checkFixed(): void {
    const h = this.fixed;
    if (h[0] !== 0x1f || h[1] !== 0x8b) {
      throw new SeekableGzipError(
        'GZIP_CORRUPT',
        `no gzip magic (1f 8b) at offset ${this.offset}: the blob is not gzip or has trailing garbage`,
      );
    }
    if (h[2] !== 8) {
      throw new SeekableGzipError(
        'GZIP_CORRUPT',
        `unsupported gzip compression method ${h[2]} at offset ${this.offset} (only 8, deflate, exists)`,
      );
    }
    this.flags = h[3]!;
    if (this.flags & FTEXT_RESERVED) {
      throw new SeekableGzipError(
        'GZIP_CORRUPT',
        `reserved gzip header flags set (0x${this.flags.toString(16)}) at offset ${this.offset}`,
      );
    }
    this.hashed(h, 0, 10);
    this.have = 0;
    this.step = this.flags & FEXTRA ? Step.ExtraLength : this.afterExtra();
  }

  private afterExtra(): Step {
    return this.flags & FNAME ? Step.Name : this.afterName();
  }

  private afterName(): Step {
    return this.flags & FCOMMENT ? Step.Comment : this.afterComment();
  }

  private afterComment(): Step {
    this.have = 0;
    return this.flags & FHCRC ? Step.HeaderCrc : Step.Done;
  }

  private hashed(data: Uint8Array, start: number, end: number): void {
    if (this.flags & FHCRC) this.crc = crc32(this.crc, data, start, end);
  }
}
