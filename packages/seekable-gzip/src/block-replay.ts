import {
  DATA_TYPE_BITS_MASK,
  DATA_TYPE_BLOCK_BOUNDARY,
  DATA_TYPE_LAST_BLOCK,
  newRawStream,
  primeBits,
  type RawStream,
  runInflate,
  setDictionary,
  WINDOW_SIZE,
  Z_BLOCK,
  Z_BUF_ERROR,
  Z_OK,
  Z_STREAM_END,
} from './raw-inflate.js';
import type { RetainedInput } from './retained-input.js';
import type { Checkpoint } from './types.js';

/**
 * Native zlib tells where a block ended (bytes in, bytes out) but not `bits`, the bits of the last
 * byte that belong to the next block. A replay decodes the stretch between two native stops again
 * with the JS inflater, which reports `bits` exactly, and also finds any boundary that native zlib
 * passed without stopping (a block that ended exactly at the end of an input chunk).
 *
 * `from` is the previous stop: its window is exact, its `bits` may be unknown (null), in which case
 * each of the 8 values is tried; the right one is the one that decodes to exactly the same number of
 * bytes and stops at exactly the same input offset (a wrong alignment fails almost at once).
 */
export interface ReplayStart {
  in: number;
  out: number;
  bits: number | null;
  window: Uint8Array;
}

const SCRATCH = new Uint8Array(64 * 1024);

/**
 * Every block boundary in (from.in, toIn], in order; null if no alignment fits. `to` is either a block
 * boundary (the last one returned) or, with `memberEnd`, the end of the member's final block.
 */
export function replayBlocks(
  input: RetainedInput,
  from: ReplayStart,
  to: { in: number; out: number; memberEnd: boolean },
): Checkpoint[] | null {
  const candidates = from.bits === null ? [0, 1, 2, 3, 4, 5, 6, 7] : [from.bits];
  for (const bits of candidates) {
    const found = replayWith(input, from, bits, to.in, to.out, to.memberEnd);
    if (found) return found;
  }
  return null;
}

function replayWith(
  input: RetainedInput,
  from: ReplayStart,
  bits: number,
  toIn: number,
  toOut: number,
  memberEnd: boolean,
): Checkpoint[] | null {
  if (bits !== 0 && from.in - 1 < input.start) return null;
  const strm = newRawStream();
  setDictionary(strm, from.window);
  if (bits !== 0) primeBits(strm, bits, input.byteAt(from.in - 1) >> (8 - bits));
  const found: Checkpoint[] = [];
  let out = from.out;
  let pieceStart = from.in;
  for (const piece of input.range(from.in, toIn)) {
    strm.input = piece;
    strm.next_in = 0;
    strm.avail_in = piece.length;
    for (;;) {
      const inBefore = strm.next_in;
      strm.output = SCRATCH;
      strm.next_out = 0;
      strm.avail_out = SCRATCH.length;
      const ret = runInflate(strm, Z_BLOCK);
      out += strm.next_out;
      if (ret === Z_STREAM_END && memberEnd) {
        return pieceStart + strm.next_in === toIn && out === toOut ? found : null;
      }
      if (ret !== Z_OK && ret !== Z_BUF_ERROR) return null; // data error, or a final block: wrong alignment
      if (out > toOut) return null;
      const dataType = strm.data_type;
      if (
        (dataType & (DATA_TYPE_BLOCK_BOUNDARY | DATA_TYPE_LAST_BLOCK)) ===
        (DATA_TYPE_BLOCK_BOUNDARY | DATA_TYPE_LAST_BLOCK)
      ) {
        // Just past the final block (inflate reports Z_STREAM_END only on the next call).
        const at = pieceStart + strm.next_in;
        return memberEnd && at === toIn && out === toOut ? found : null;
      }
      if ((dataType & (DATA_TYPE_BLOCK_BOUNDARY | DATA_TYPE_LAST_BLOCK)) === DATA_TYPE_BLOCK_BOUNDARY) {
        const at = pieceStart + strm.next_in;
        found.push({ in: at, out, bits: dataType & DATA_TYPE_BITS_MASK, window: windowOf(strm) });
        if (at === toIn) return out === toOut && !memberEnd ? found : null;
      }
      if (strm.avail_in === 0 && strm.avail_out > 0) break;
      if (strm.next_out === 0 && strm.next_in === inBefore) return null; // stuck: cannot be the right alignment
    }
    pieceStart += piece.length;
  }
  return null;
}

/** The decoder's own history: the last 32 KiB of output, oldest first (it was seeded with a full window). */
function windowOf(strm: RawStream): Uint8Array {
  const { window, wnext, whave } = strm.state as { window: Uint8Array; wnext: number; whave: number };
  const out = new Uint8Array(WINDOW_SIZE);
  if (whave < WINDOW_SIZE) {
    out.set(window.subarray(0, whave), WINDOW_SIZE - whave);
  } else {
    out.set(window.subarray(wnext), 0);
    out.set(window.subarray(0, wnext), WINDOW_SIZE - wnext);
  }
  return out;
}
