import { type ReplayStart, replayBlocks } from './block-replay.js';
import { crc32 } from './crc32.js';
import { SeekableGzipError } from './errors.js';
import { GzipHeaderParser } from './gzip-header.js';
import { OutputHistory } from './history.js';
import { NativeRawInflater } from './native-inflate.js';
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
import { RetainedInput } from './retained-input.js';
import { SpanHashing } from './span-hashing.js';
import type { Checkpoint, GzipIndex, Hasher } from './types.js';

export interface CheckpointBuilderOptions {
  /** Minimum uncompressed bytes between checkpoints (the reference default is 4 MiB). */
  spanSize: number;
  /** Receives every uncompressed chunk, synchronously and in order. Chunks are not reused. */
  onData?: (chunk: Uint8Array) => void;
  /** When given, each span's compressed range is hashed as it streams by. */
  spanHasher?: () => Hasher;
  /**
   * 'auto' (default): Node's native zlib when available, else the pure JS inflater. 'js' forces the
   * pure JS inflater (same result, slower; for tests and non-Node runtimes).
   */
  inflater?: 'auto' | 'js';
}

export interface BuildResult {
  index: GzipIndex;
  /** One digest per span (empty when no `spanHasher` was given). */
  spanDigests: string[];
}

const OUTPUT_CHUNK = 256 * 1024;
/**
 * Native stops are replayed from the previous stop, so the compressed bytes of one block are kept.
 * Real encoders write blocks far below this; for a larger block the checkpoint moves to the next
 * block end (the index stays valid, spans just get longer) and memory stays bounded.
 */
const MAX_REPLAY_BYTES = 16 * 1024 * 1024;

enum Phase {
  /** Before a member header (start of blob, or right after a trailer). */
  BetweenMembers,
  Header,
  Deflate,
  Trailer,
}

/** A native stop whose meaning (block end, or end of the member) is known only after the next call. */
interface PendingStop {
  in: number;
  out: number;
  window: Uint8Array;
}

/**
 * Decodes a gzip blob once, front to back, recording checkpoints (see the README for the rule) and
 * handing out the uncompressed bytes. Memory stays bounded by one output chunk, the input of one
 * deflate block, a few 32 KiB windows and the checkpoints themselves, whatever the blob size.
 */
export class CheckpointBuilder {
  private readonly spanSize: number;
  private readonly onData: ((chunk: Uint8Array) => void) | undefined;
  private readonly hashing: SpanHashing | null;
  private readonly history = new OutputHistory();
  private readonly input = new RetainedInput();
  private readonly checkpoints: Checkpoint[] = [];
  private readonly useNative: boolean;

  private phase = Phase.BetweenMembers;
  private header: GzipHeaderParser | null = null;
  private js: RawStream | null = null;
  private native: NativeRawInflater | null = null;
  /** Last known block boundary of the native path (replays start here); null after an oversized block. */
  private lastStop: ReplayStart | null = null;
  private pendingStop: PendingStop | null = null;
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
      throw new SeekableGzipError(
        'GZIP_INVALID_ARGUMENT',
        `spanSize must be a positive integer, got ${spanSize}`,
      );
    }
    this.spanSize = spanSize;
    this.onData = options.onData;
    this.hashing = options.spanHasher ? new SpanHashing(options.spanHasher) : null;
    this.useNative = options.inflater !== 'js' && probeNative();
  }

  /** Feeds the next compressed bytes. Throws SeekableGzipError on bad data (and on every call after). */
  push(chunk: Uint8Array): void {
    this.checkUsable();
    if (chunk.length === 0) return;
    try {
      this.chunk = chunk;
      this.input.append(this.chunkStart, chunk);
      let i = 0;
      while (i < chunk.length) i = this.step(i);
      this.chunkStart += chunk.length;
      this.releaseInput();
    } catch (err) {
      this.fail(err);
    }
  }

  /** Ends the blob: checks it ended after a complete member and returns the index. */
  finish(): BuildResult {
    this.checkUsable();
    this.finished = true;
    this.native?.close();
    if (this.phase !== Phase.BetweenMembers || this.members === 0) {
      const what =
        this.members === 0 && this.phase === Phase.BetweenMembers
          ? 'the blob is empty'
          : `the gzip member starting at offset ${this.memberStart} is incomplete (${this.phaseName()})`;
      this.failure = new SeekableGzipError(
        'GZIP_TRUNCATED',
        `gzip stream truncated after ${this.chunkStart} bytes: ${what}; fetch the whole blob again`,
      );
      throw this.failure;
    }
    this.emitOutput();
    const spanDigests = this.hashing ? this.hashing.finish(this.input, this.chunkStart) : [];
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
        return this.native ? this.inflateNative(i) : this.inflateJs(i);
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
    this.phase = Phase.Deflate;
    const inPos = this.chunkStart + i;
    // A member's first block starts at a byte-aligned boundary right after its header.
    this.atBoundary(inPos, this.out, 0, null);
    if (this.useNative) {
      this.native?.close();
      this.native = NativeRawInflater.create();
      this.lastStop = { in: inPos, out: this.out, bits: 0, window: this.currentWindow() };
    }
    if (!this.native) this.js = newRawStream();
  }

  private endMember(): void {
    const t = this.trailer;
    const crc = (t[0]! | (t[1]! << 8) | (t[2]! << 16) | (t[3]! << 24)) >>> 0;
    const isize = (t[4]! | (t[5]! << 8) | (t[6]! << 16) | (t[7]! << 24)) >>> 0;
    if (crc !== this.memberCrc) {
      throw new SeekableGzipError(
        'GZIP_CRC_MISMATCH',
        `CRC32 mismatch in the gzip member at offset ${this.memberStart}: trailer says ${hex(crc)}, data gives ${hex(this.memberCrc)}; the blob is corrupt`,
      );
    }
    if (isize !== this.memberSize % 2 ** 32) {
      throw new SeekableGzipError(
        'GZIP_CRC_MISMATCH',
        `length mismatch in the gzip member at offset ${this.memberStart}: trailer says ${isize} bytes (mod 2^32), data has ${this.memberSize}; the blob is corrupt`,
      );
    }
    this.trailerHave = 0;
    this.js = null;
    this.native?.close();
    this.native = null;
    this.lastStop = null;
    this.phase = Phase.BetweenMembers;
  }

  /** Pure JS path: pako reports every boundary with its exact `bits`. */
  private inflateJs(i: number): number {
    const strm = this.js!;
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
      const produced = this.produced(strm.next_out);
      if (ret === Z_STREAM_END) {
        this.phase = Phase.Trailer;
        return strm.next_in;
      }
      if (ret !== Z_OK && ret !== Z_BUF_ERROR)
        throw this.corrupt(strm.msg || `zlib error ${ret}`, strm.next_in);
      const dataType = strm.data_type;
      if ((dataType & (DATA_TYPE_BLOCK_BOUNDARY | DATA_TYPE_LAST_BLOCK)) === DATA_TYPE_BLOCK_BOUNDARY) {
        this.atBoundary(this.chunkStart + strm.next_in, this.out, dataType & DATA_TYPE_BITS_MASK, null);
      }
      if (strm.avail_in === 0 && strm.avail_out > 0) return chunk.length;
      // Never spin: a decoder that neither consumes nor produces three times in a row is stuck.
      stalls = produced === 0 && strm.next_in === inBefore ? stalls + 1 : 0;
      if (stalls > 2) throw this.corrupt('deflate decoder made no progress', strm.next_in);
    }
  }

  /**
   * Native path: zlib stops at each block end but does not say `bits`; when a stop is due to become a
   * checkpoint, the block before it is replayed in JS (see block-replay.ts) to get exact values.
   */
  private inflateNative(i: number): number {
    const native = this.native!;
    const chunk = this.chunk;
    for (;;) {
      if (this.outLen === this.outBuf.length) this.emitOutput();
      let r: { consumed: number; produced: number };
      try {
        r = native.write(chunk, i, this.outBuf, this.outLen);
      } catch (err) {
        throw this.corrupt((err as Error).message, i);
      }
      i += r.consumed;
      this.produced(this.outLen + r.produced);
      const inputLeft = chunk.length - i;
      const outputLeft = this.outBuf.length - this.outLen;
      if (r.consumed === 0 && r.produced === 0 && inputLeft > 0 && outputLeft > 0) {
        // zlib is done with this member's deflate stream: the last stop was its end, not a block end.
        this.pendingStop = null;
        this.atNativeMemberEnd(this.chunkStart + i);
        this.phase = Phase.Trailer;
        return i;
      }
      if (this.pendingStop && (r.consumed > 0 || r.produced > 0)) {
        const stop = this.pendingStop;
        this.pendingStop = null;
        this.atNativeStop(stop);
      }
      if (inputLeft > 0 && outputLeft > 0) {
        // Stopped with input and room left: a block end (or the member's end, told by the next call).
        this.pendingStop = { in: this.chunkStart + i, out: this.out, window: this.currentWindow() };
        continue;
      }
      if (inputLeft === 0 && outputLeft > 0) return chunk.length;
    }
  }

  /** A confirmed native block end; bits unknown until replayed. */
  private atNativeStop(stop: PendingStop): void {
    const from = this.lastStop;
    this.lastStop = { in: stop.in, out: stop.out, bits: null, window: stop.window };
    if (!this.checkpointDue(stop.out)) return;
    if (!from) return; // the block was too large to keep for a replay; the next block end will do
    const boundaries = replayBlocks(this.input, from, { in: stop.in, out: stop.out, memberEnd: false });
    if (!boundaries) {
      // Cannot happen for data zlib accepted; keep the index valid by moving on to the next block end.
      return;
    }
    for (const b of boundaries) this.atBoundary(b.in, b.out, b.bits, b.window);
    this.lastStop.bits = boundaries[boundaries.length - 1]!.bits;
  }

  /**
   * The member's deflate data ended at `endIn`. Native zlib may have passed block ends without
   * stopping since the last stop (blocks that ended exactly at a chunk end); if one of them could be
   * due, replay up to the end to find them.
   */
  private atNativeMemberEnd(endIn: number): void {
    const from = this.lastStop;
    if (!from || !this.checkpointDue(this.out) || endIn <= from.in) return;
    const boundaries = replayBlocks(this.input, from, { in: endIn, out: this.out, memberEnd: true });
    for (const b of boundaries ?? []) this.atBoundary(b.in, b.out, b.bits, b.window);
  }

  private checkpointDue(out: number): boolean {
    return this.checkpoints.length === 0 || out - this.lastCheckpointOut > this.spanSize;
  }

  /** A deflate block boundary (not after a member's final block) with exact `bits`. */
  private atBoundary(inPos: number, out: number, bits: number, window: Uint8Array | null): void {
    if (!this.checkpointDue(out)) return;
    this.checkpoints.push({ in: inPos, out, bits, window: window ?? this.currentWindow() });
    this.lastCheckpointOut = out;
    this.hashing?.startSpan(this.input, inPos, bits);
  }

  /** Accounts output written up to `end` in outBuf; returns the number of new bytes. */
  private produced(end: number): number {
    const n = end - this.outLen;
    if (n > 0) {
      this.memberCrc = crc32(this.memberCrc, this.outBuf, this.outLen, end);
      this.memberSize += n;
      this.out += n;
      this.outLen = end;
    }
    return n;
  }

  private currentWindow(): Uint8Array {
    return this.history.windowWith(this.outBuf.subarray(0, this.outLen));
  }

  /** Hashes what no span can start in any more, then forgets input nobody needs. */
  private releaseInput(): void {
    let keepFrom = this.chunkStart - 1; // one byte, for a span that starts with bits != 0
    if (this.native && this.lastStop) keepFrom = Math.min(keepFrom, this.lastStop.in - 1);
    if (this.native && this.lastStop && this.chunkStart - keepFrom > MAX_REPLAY_BYTES) {
      this.lastStop = null;
      keepFrom = this.chunkStart - 1;
    }
    this.hashing?.advance(this.input, keepFrom);
    this.input.dropBefore(Math.min(keepFrom, this.hashing?.needsFrom ?? keepFrom));
  }

  private emitOutput(): void {
    if (this.outLen === 0) return;
    const data = this.outBuf.subarray(0, this.outLen);
    this.history.append(data);
    this.outBuf = new Uint8Array(OUTPUT_CHUNK);
    this.outLen = 0;
    this.onData?.(data);
  }

  private corrupt(detail: string, chunkIndex: number): SeekableGzipError {
    return new SeekableGzipError(
      'GZIP_CORRUPT',
      `invalid deflate data in the gzip member at offset ${this.memberStart} (near compressed offset ${this.chunkStart + chunkIndex}): ${detail}`,
    );
  }

  private fail(err: unknown): never {
    this.native?.close();
    this.failure =
      err instanceof SeekableGzipError
        ? err
        : new SeekableGzipError('GZIP_CORRUPT', `gzip decoding failed: ${String(err)}`, { cause: err });
    throw this.failure;
  }

  private checkUsable(): void {
    if (this.failure) throw this.failure;
    if (this.finished) {
      throw new SeekableGzipError(
        'GZIP_INVALID_ARGUMENT',
        'CheckpointBuilder already finished; create a new one',
      );
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

let nativeWorks: boolean | undefined;

function probeNative(): boolean {
  if (nativeWorks === undefined) {
    const probe = NativeRawInflater.create();
    nativeWorks = probe !== null;
    probe?.close();
  }
  return nativeWorks;
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
