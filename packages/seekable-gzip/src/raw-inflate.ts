/// <reference path="./pako.d.ts" />
// Thin helpers over pako's low-level inflate (a faithful zlib port), driven directly so the builder
// can stop at every deflate block boundary (flush Z_BLOCK) the way zlib's zran.c does.
import { inflate, inflateInit2, inflateSetDictionary } from 'pako/lib/zlib/inflate.js';
import ZStream from 'pako/lib/zlib/zstream.js';

export const Z_NO_FLUSH = 0;
export const Z_BLOCK = 5;
export const Z_OK = 0;
export const Z_STREAM_END = 1;
export const Z_BUF_ERROR = -5;

/** `data_type` bits reported by inflate after each call. */
export const DATA_TYPE_BITS_MASK = 7;
export const DATA_TYPE_LAST_BLOCK = 64;
export const DATA_TYPE_BLOCK_BOUNDARY = 128;

export const WINDOW_SIZE = 32_768;

export type RawStream = ZStream;

/** A raw-deflate (no header) decoder with a 32 KiB window. */
export function newRawStream(): RawStream {
  const strm = new ZStream();
  const ret = inflateInit2(strm, -15);
  if (ret !== Z_OK) throw new Error(`pako inflateInit2 failed (${ret})`);
  return strm;
}

/** Sets the 32 KiB of output that precede the stream, so back-references into it resolve. */
export function setDictionary(strm: RawStream, window: Uint8Array): void {
  const ret = inflateSetDictionary(strm, window);
  if (ret !== Z_OK) throw new Error(`pako inflateSetDictionary failed (${ret})`);
}

/**
 * zlib's inflatePrime, which pako lacks: inserts `bits` bits (low bits of `value`) into the bit
 * buffer before any input, for streams that start in the middle of a byte.
 */
export function primeBits(strm: RawStream, bits: number, value: number): void {
  if (bits === 0) return;
  const state = strm.state;
  state.hold += (value & ((1 << bits) - 1)) << state.bits;
  state.bits += bits;
}

export function runInflate(strm: RawStream, flush: number): number {
  return inflate(strm, flush);
}
