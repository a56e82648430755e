import { SeekableGzipError } from './errors.js';
import { GzipHeaderParser } from './gzip-header.js';
import {
  newRawStream,
  primeBits,
  type RawStream,
  runInflate,
  setDictionary,
  Z_BUF_ERROR,
  Z_NO_FLUSH,
  Z_OK,
  Z_STREAM_END,
} from './raw-inflate.js';
import { resolveRange, spanRange } from './spans.js';
import type { GzipIndex } from './types.js';

const SCRATCH_SIZE = 64 * 1024;
const TRAILER_SIZE = 8;

/** What a span decode needs, checked once for both decoders. */
export interface SpanPlan {
  spanId: number;
  /** Bytes to skip at the start of the span's output, then bytes to return. */
  offset: number;
  length: number;
  bits: number;
  window: Uint8Array;
}

export function planSpanDecode(
  index: GzipIndex,
  spanId: number,
  compressed: Uint8Array,
  range: { offset: number; length: number } | undefined,
): SpanPlan {
  const r = spanRange(index, spanId);
  const expected = r.compressedEnd - r.compressedStart;
  if (compressed.length !== expected) {
    throw new SeekableGzipError(
      'GZIP_BAD_SPAN',
      `span ${spanId} has ${expected} compressed bytes [${r.compressedStart}, ${r.compressedEnd}) but ${compressed.length} were given`,
    );
  }
  const { offset, length } = resolveRange(r.uncompressedEnd - r.uncompressedStart, range);
  const cp = index.checkpoints[spanId]!;
  return { spanId, offset, length, bits: cp.bits, window: cp.window };
}

/**
 * Decodes (part of) one span in pure JS; no Node built-ins, so it runs in a browser.
 * `compressed` is exactly the span's compressed range; `range` is relative to the span's start.
 */
export function decodeSpanSync(
  index: GzipIndex,
  spanId: number,
  compressed: Uint8Array,
  range?: { offset: number; length: number },
): Uint8Array {
  return decodePlannedSync(planSpanDecode(index, spanId, compressed, range), compressed);
}

export function decodePlannedSync(plan: SpanPlan, compressed: Uint8Array): Uint8Array {
  const { offset, length, bits } = plan;
  const result = new Uint8Array(length);
  if (length === 0) return result;
  const need = offset + length;
  const scratch = new Uint8Array(SCRATCH_SIZE);
  let produced = 0;

  let strm: RawStream = newRawStream();
  setDictionary(strm, plan.window);
  let pos = 0;
  if (bits !== 0) {
    primeBits(strm, bits, compressed[0]! >> (8 - bits));
    pos = 1;
  }
  strm.input = compressed;
  strm.next_in = pos;
  strm.avail_in = compressed.length - pos;

  let stalls = 0;
  for (;;) {
    const inBefore = strm.next_in;
    strm.output = scratch;
    strm.next_out = 0;
    strm.avail_out = Math.min(SCRATCH_SIZE, need - produced);
    const ret = runInflate(strm, Z_NO_FLUSH);
    const got = strm.next_out;
    // Keep only the bytes that fall in [offset, need).
    const from = Math.max(0, offset - produced);
    if (got > from) result.set(scratch.subarray(from, got), produced + from - offset);
    produced += got;
    if (produced >= need) return result;

    if (ret === Z_STREAM_END) {
      // The span crosses the end of a gzip member: skip its trailer and the next member's header.
      pos = skipToNextMember(plan, compressed, strm.next_in);
      strm = newRawStream();
      strm.input = compressed;
      strm.next_in = pos;
      strm.avail_in = compressed.length - pos;
      continue;
    }
    if (ret !== Z_OK && ret !== Z_BUF_ERROR) {
      throw new SeekableGzipError(
        'GZIP_BAD_SPAN',
        `span ${plan.spanId} does not decode (${strm.msg || `zlib error ${ret}`}); its compressed bytes are wrong`,
      );
    }
    if (got === 0 && strm.avail_in === 0) throw shortSpan(plan, produced, need);
    // Never spin: a decoder that neither consumes nor produces twice in a row is stuck.
    stalls = got === 0 && strm.next_in === inBefore ? stalls + 1 : 0;
    if (stalls > 2) throw shortSpan(plan, produced, need);
  }
}

function skipToNextMember(plan: SpanPlan, compressed: Uint8Array, pos: number): number {
  const headerStart = pos + TRAILER_SIZE;
  if (headerStart >= compressed.length) throw shortSpan(plan, -1, -1);
  let end: number;
  try {
    end = new GzipHeaderParser(headerStart).feed(compressed, headerStart, compressed.length);
  } catch (err) {
    throw new SeekableGzipError(
      'GZIP_BAD_SPAN',
      `span ${plan.spanId} crosses a gzip member end but ${String(err)}`,
      {
        cause: err,
      },
    );
  }
  if (end < 0) throw shortSpan(plan, -1, -1);
  return end;
}

function shortSpan(plan: SpanPlan, produced: number, need: number): SeekableGzipError {
  const detail = produced >= 0 ? ` (${produced} of ${need} bytes decoded)` : '';
  return new SeekableGzipError(
    'GZIP_BAD_SPAN',
    `span ${plan.spanId} compressed bytes end before its uncompressed end${detail}; its compressed bytes are wrong`,
  );
}
