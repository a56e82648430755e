import { crc32 } from './crc32.js';
import { SeekableGzipError } from './errors.js';
import { GzipHeaderParser } from './gzip-header.js';
import { OutputHistory } from './history.js';
import {
  DATA_TYPE_BITS_MASK,
  DATA_TYPE_BLOCK_BOUNDARY,
  DATA_TYPE_LAST_BLOCK,
  newRawStream,
  type RawStream,
  runInflate,
  Z_BLOCK,
  Z_BUF_ERROR,
  Z_OK,
  Z_STREAM_END,
} from './raw-inflate.js';
import { SpanHashing } from './span-hashing.js';
import type { Checkpoint, GzipIndex, Hasher } from './types.js';

export interface CheckpointBuilderOptions {
  /** Minimum uncompressed bytes between checkpoints (the reference default is 4 MiB). */
  spanSize: number;
  /** Receives every uncompressed chunk, synchronously and in order. Chunks are not reused. */
  onData?: (chunk: Uint8Array) => void;
  /** When given, each span's compressed range is hashed as it streams by. */
  spanHasher?: () => Hasher;
}

export interface BuildResult {
  index: GzipIndex;
  /** One digest per span (empty when no `spanHasher` was given). */
  spanDigests: string[];
}

const OUTPUT_CHUNK = 256 * 1024;

enum Phase {
  /** Before a member header (start of blob, or right after a trailer). */
  BetweenMembers,
  Header,
  Deflate,
  Trailer,
}

/**
 * Decodes a gzip blob once, front to back, recording checkpoints (see the package README for the
 * rule) and handing out the uncompressed bytes. Memory stays bounded by one output chunk, two
 * 32 KiB windows and the checkpoints themselves, whatever the blob size.
 */
export class CheckpointBuilder {
  private readonly spanSize: number;
  private readonly onData: ((chunk: Uint8Array) => void) | undefined;
  private readonly hashing: SpanHashing | null;
  private readonly history = new OutputHistory();
  private readonly checkpoints: Checkpoint[] = [];

  private phase = Phase.BetweenMembers;
  private header: GzipHeaderParser | null = null;
  private strm: RawStream | null = null;
  private readonly trailer = new Uint8Array(8);
  private trailerHave = 0;
  private members = 0;
  private memberStart = 0;
  private memberCrc = 0;
  private memberSize = 0;

  /** Absolute compressed offset of the chunk being processed (= bytes pushed before it). */
  private chunkStart = 0;
  private chunk: Uint8Array = new Uint8Array(0);
  /** Total uncompressed bytes produced, including the ones still in `outBuf`. */
  private out = 0;
  private lastCheckpointOut = 0;
  private outBuf = new Uint8Array(OUTPUT_CHUNK);
  private outLen = 0;
  private failure: SeekableGzipError | null = null;
  private finished = false;

  constructor(options: CheckpointBuilderOptions) {
    const { spanSize } = options;
    if (!Number.isSafeInteger(spanSize) || spanSize <= 0) {
      throw new SeekableGzipError('INVALID_ARGUMENT', `spanSize must be a positive integer, got ${spanSize}`);
    }
    this.spanSize = spanSize;
    this.onData = options.onData;
    this.hashing = options.spanHasher ? new SpanHashing(options.spanHasher) : null;
  }

  /** Feeds the next compressed bytes. Throws SeekableGzipError on bad data (and on every call after). */
  push(chunk: Uint8Array): void {
    this.checkUsable();
    if (chunk.length === 0) return;
    try {
      this.chunk = chunk;
      let i = 0;
      while (i < chunk.length) i = this.step(i);
      this.hashing?.endChunk(chunk, this.chunkStart);
      this.chunkStart += chunk.length;
    } catch (err) {
      this.failure =
        err instanceof SeekableGzipError
          ? err
          : new SeekableGzipError('CORRUPT_GZIP', `gzip decoding failed: ${String(err)}`, { cause: err });
      throw this.failure;
    }
  }

  /** Ends the blob: checks it ended after a complete member and returns the index. */
  finish(): BuildResult {
    this.checkUsable();
    this.finished = true;
    if (this.phase !== Phase.BetweenMembers || this.members === 0) {
      const what =
        this.members === 0 && this.phase === Phase.BetweenMembers
          ? 'the blob is empty'
          : `the gzip member starting at offset ${this.memberStart} is incomplete (${this.phaseName()})`;
      this.failure = new SeekableGzipError(
        'TRUNCATED_GZIP',
        `gzip stream truncated after ${this.chunkStart} bytes: ${what}; fetch the whole blob again`,
      );
      throw this.failure;
    }
    this.emitOutput();
    const spanDigests = this.hashing ? this.hashing.finish() : [];
    return {
      index: {
        spanSize: this.spanSize,
        checkpoints: this.checkpoints,
        compressedSize: this.chunkStart,
        uncompressedSize: this.out,
      },
      spanDigests,
    };
  }

  /** Processes input from index `i` of the current chunk according to the phase; returns the new index. */
  private step(i: number): number {
    const chunk = this.chunk;
    switch (this.phase) {
      case Phase.BetweenMembers:
        this.memberStart = this.chunkStart + i;
        this.header = new GzipHeaderParser(this.memberStart);
        this.phase = Phase.Header;
        return i;
      case Phase.Header: {
        const end = this.header!.feed(chunk, i, chunk.length);
        if (end < 0) return chunk.length;
        this.startMember(end);
        return end;
      }
      case Phase.Deflate:
        return this.inflateFrom(i);
      case Phase.Trailer: {
        const take = Math.min(8 - this.trailerHave, chunk.length - i);
        this.trailer.set(chunk.subarray(i, i + take), this.trailerHave);
        this.trailerHave += take;
        if (this.trailerHave === 8) this.endMember();
        return i + take;
      }
    }
  }

  private startMember(i: number): void {
    this.header = null;
    this.members++;
    this.memberCrc = 0;
    this.memberSize = 0;
    this.strm = newRawStream();
    this.phase = Phase.Deflate;
    // A member's first block starts at a byte-aligned boundary right after its header.
    this.atBoundary(this.chunkStart + i, 0);
  }

  private endMember(): void {
    const t = this.trailer;
    const crc = (t[0]! | (t[1]! << 8) | (t[2]! << 16) | (t[3]! << 24)) >>> 0;
    const isize = (t[4]! | (t[5]! << 8) | (t[6]! << 16) | (t[7]! << 24)) >>> 0;
    if (crc !== this.memberCrc) {
      throw new SeekableGzipError(
        'CRC_MISMATCH',
        `CRC32 mismatch in the gzip member at offset ${this.memberStart}: trailer says ${hex(crc)}, data gives ${hex(this.memberCrc)}; the blob is corrupt`,
      );
    }
    if (isize !== this.memberSize >>> 0) {
      throw new SeekableGzipError(
        'CRC_MISMATCH',
        `length mismatch in the gzip member at offset ${this.memberStart}: trailer says ${isize} bytes (mod 2^32), data has ${this.memberSize}; the blob is corrupt`,
      );
    }
    this.trailerHave = 0;
    this.strm = null;
    this.phase = Phase.BetweenMembers;
  }

  private inflateFrom(i: number): number {
    const strm = this.strm!;
    const chunk = this.chunk;
    strm.input = chunk;
    strm.next_in = i;
    strm.avail_in = chunk.length - i;
    let stalls = 0;
    for (;;) {
      if (this.outLen === this.outBuf.length) this.emitOutput();
      strm.output = this.outBuf;
      strm.next_out = this.outLen;
      strm.avail_out = this.outBuf.length - this.outLen;
      const inBefore = strm.next_in;
      const ret = runInflate(strm, Z_BLOCK);
      const produced = strm.next_out - this.outLen;
      if (produced > 0) {
        this.memberCrc = crc32(this.memberCrc, this.outBuf, this.outLen, strm.next_out);
        this.memberSize += produced;
        this.out += produced;
        this.outLen = strm.next_out;
      }
      if (ret === Z_STREAM_END) {
        this.phase = Phase.Trailer;
        return strm.next_in;
      }
      if (ret !== Z_OK && ret !== Z_BUF_ERROR) {
        throw new SeekableGzipError(
          'CORRUPT_GZIP',
          `invalid deflate data in the gzip member at offset ${this.memberStart} (near compressed offset ${this.chunkStart + strm.next_in}): ${strm.msg || `zlib error ${ret}`}`,
        );
      }
      const dataType = strm.data_type;
      if ((dataType & (DATA_TYPE_BLOCK_BOUNDARY | DATA_TYPE_LAST_BLOCK)) === DATA_TYPE_BLOCK_BOUNDARY) {
        this.atBoundary(this.chunkStart + strm.next_in, dataType & DATA_TYPE_BITS_MASK);
      }
      if (strm.avail_in === 0 && strm.avail_out > 0) return chunk.length;
      // Guard against a decoder that neither consumes nor produces (must never loop forever).
      stalls = produced === 0 && strm.next_in === inBefore ? stalls + 1 : 0;
      if (stalls > 2) {
        throw new SeekableGzipError(
          'CORRUPT_GZIP',
          `deflate decoder made no progress at compressed offset ${this.chunkStart + strm.next_in}`,
        );
      }
    }
  }

  /** A deflate block boundary (not after a member's final block) at compressed offset `inPos`. */
  private atBoundary(inPos: number, bits: number): void {
    if (this.checkpoints.length > 0 && this.out - this.lastCheckpointOut <= this.spanSize) return;
    const window = this.history.windowWith(this.outBuf.subarray(0, this.outLen));
    this.checkpoints.push({ in: inPos, out: this.out, bits, window });
    this.lastCheckpointOut = this.out;
    this.hashing?.startSpan(this.chunk, this.chunkStart, inPos, bits);
  }

  private emitOutput(): void {
    if (this.outLen === 0) return;
    const data = this.outBuf.subarray(0, this.outLen);
    this.history.append(data);
    this.outBuf = new Uint8Array(OUTPUT_CHUNK);
    this.outLen = 0;
    this.onData?.(data);
  }

  private checkUsable(): void {
    if (this.failure) throw this.failure;
    if (this.finished) {
      throw new SeekableGzipError('INVALID_ARGUMENT', 'CheckpointBuilder already finished; create a new one');
    }
  }

  private phaseName(): string {
    switch (this.phase) {
      case Phase.Header:
        return 'inside its header';
      case Phase.Deflate:
        return 'inside its compressed data';
      case Phase.Trailer:
        return 'inside its 8-byte trailer';
      default:
        return 'no member';
    }
  }
}

/** Runs a CheckpointBuilder over a whole blob. */
export async function buildGzipIndex(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: CheckpointBuilderOptions,
): Promise<BuildResult> {
  const builder = new CheckpointBuilder(options);
  for await (const chunk of source) builder.push(chunk);
  return builder.finish();
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
