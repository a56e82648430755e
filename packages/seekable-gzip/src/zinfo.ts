import { SeekableGzipError } from './errors.js';
import { WINDOW_SIZE } from './raw-inflate.js';
import type { Checkpoint, GzipIndex } from './types.js';

/** Blob header: int32 n + int64 span_size. */
const HEADER_SIZE = 12;
/** Per checkpoint: int64 in + int64 out + uint8 bits + 32 KiB window. */
const CHECKPOINT_SIZE = 8 + 8 + 1 + WINDOW_SIZE;

/** The first checkpoint that the old ("v1") layout leaves out. */
const V1_IMPLIED_IN = 10;

/** Serializes checkpoints in the "zinfo v2" layout (little-endian, no padding). */
export function encodeZinfo(index: GzipIndex): Uint8Array {
  const n = index.checkpoints.length;
  const blob = new Uint8Array(HEADER_SIZE + n * CHECKPOINT_SIZE);
  const view = new DataView(blob.buffer);
  view.setInt32(0, n, true);
  view.setBigInt64(4, BigInt(index.spanSize), true);
  let pos = HEADER_SIZE;
  for (const cp of index.checkpoints) {
    if (cp.window.length !== WINDOW_SIZE) {
      throw new SeekableGzipError(
        'GZIP_BAD_ZINFO',
        `checkpoint window must be ${WINDOW_SIZE} bytes, got ${cp.window.length}`,
      );
    }
    view.setBigInt64(pos, BigInt(cp.in), true);
    view.setBigInt64(pos + 8, BigInt(cp.out), true);
    view.setUint8(pos + 16, cp.bits);
    blob.set(cp.window, pos + 17);
    pos += CHECKPOINT_SIZE;
  }
  return blob;
}

/**
 * Reads a zinfo blob in either layout (v2, or v1 without the first checkpoint; told apart by length).
 * Windows are views into `blob`, not copies. The sizes come from the zTOC, since the blob lacks them.
 */
export function decodeZinfo(
  blob: Uint8Array,
  sizes: { compressedSize: number; uncompressedSize: number },
): GzipIndex {
  if (blob.length < HEADER_SIZE)
    bad(`blob is ${blob.length} bytes, shorter than its ${HEADER_SIZE}-byte header`);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const n = view.getInt32(0, true);
  const spanSize = readSize(view, 4, 'span_size');
  if (n <= 0) bad(`checkpoint count is ${n}; a gzip blob always has at least one checkpoint`);
  if (spanSize <= 0) bad(`span_size is ${spanSize}`);
  let stored: number;
  if (blob.length === HEADER_SIZE + n * CHECKPOINT_SIZE) stored = n;
  else if (blob.length === HEADER_SIZE + (n - 1) * CHECKPOINT_SIZE) stored = n - 1;
  else bad(`blob is ${blob.length} bytes, which fits neither the v2 nor the v1 layout for ${n} checkpoints`);

  const checkpoints: Checkpoint[] = [];
  if (stored === n - 1) {
    checkpoints.push({ in: V1_IMPLIED_IN, out: 0, bits: 0, window: new Uint8Array(WINDOW_SIZE) });
  }
  for (let k = 0, pos = HEADER_SIZE; k < stored; k++, pos += CHECKPOINT_SIZE) {
    const bits = view.getUint8(pos + 16);
    if (bits > 7) bad(`checkpoint ${checkpoints.length} has bits=${bits} (must be 0-7)`);
    checkpoints.push({
      in: readSize(view, pos, 'in'),
      out: readSize(view, pos + 8, 'out'),
      bits,
      window: blob.subarray(pos + 17, pos + 17 + WINDOW_SIZE),
    });
  }
  const index: GzipIndex = { spanSize, checkpoints, ...sizes };
  validateIndex(index);
  return index;
}

/** Checks the invariants every decoder relies on, so a bad index fails here and not mid-read. */
export function validateIndex(index: GzipIndex): void {
  const { checkpoints, compressedSize, uncompressedSize } = index;
  if (!Number.isSafeInteger(compressedSize) || compressedSize < 0)
    bad(`compressed size ${compressedSize} is invalid`);
  if (!Number.isSafeInteger(uncompressedSize) || uncompressedSize < 0) {
    bad(`uncompressed size ${uncompressedSize} is invalid`);
  }
  if (checkpoints.length === 0) bad('no checkpoints');
  if (checkpoints[0]!.out !== 0)
    bad(`first checkpoint is at uncompressed offset ${checkpoints[0]!.out}, not 0`);
  let prev: Checkpoint | undefined;
  for (const [k, cp] of checkpoints.entries()) {
    if (cp.in < 1 || cp.in > compressedSize)
      bad(`checkpoint ${k} compressed offset ${cp.in} is outside the blob`);
    if (cp.out > uncompressedSize) bad(`checkpoint ${k} uncompressed offset ${cp.out} is past the end`);
    if (prev && (cp.in <= prev.in || cp.out <= prev.out))
      bad(`checkpoint ${k} does not come after checkpoint ${k - 1}`);
    prev = cp;
  }
}

function readSize(view: DataView, pos: number, what: string): number {
  const v = view.getBigInt64(pos, true);
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) bad(`${what} at byte ${pos} is out of range (${v})`);
  return Number(v);
}

function bad(what: string): never {
  throw new SeekableGzipError('GZIP_BAD_ZINFO', `invalid zinfo checkpoints: ${what}; rebuild the zTOC`);
}
