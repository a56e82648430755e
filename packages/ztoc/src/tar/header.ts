import { ZtocError } from '../errors.js';

export const BLOCK = 512;

/** The fields of one 512-byte tar header block, before PAX / GNU long-name overrides. */
export interface RawHeader {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/**
 * Parses one header block (checksum verified). `offset` is only for messages.
 * Handles V7, ustar (with prefix), GNU (no prefix: that area holds atime/ctime) and star
 * (131-byte prefix followed by times and a `tar\0` trailer).
 */
export function parseHeader(block: Uint8Array, offset: number): RawHeader {
  verifyChecksum(block, offset);
  const isUstar = matches(block, 257, USTAR_MAGIC);
  const isGnu = matches(block, 257, GNU_MAGIC);
  let name = text(block, 0, 100);
  if (isUstar) {
    const star = matches(block, 508, STAR_TRAILER);
    const prefix = text(block, 345, star ? 131 : 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  const hasOwnerFields = isUstar || isGnu;
  const typeflag = String.fromCharCode(block[156]!);
  return {
    name,
    mode: numeric(block, 100, 8, 'mode', offset),
    uid: numeric(block, 108, 8, 'uid', offset),
    gid: numeric(block, 116, 8, 'gid', offset),
    size: numeric(block, 124, 12, 'size', offset),
    mtime: numeric(block, 136, 12, 'mtime', offset),
    typeflag,
    linkname: text(block, 157, 100),
    uname: hasOwnerFields ? text(block, 265, 32) : '',
    gname: hasOwnerFields ? text(block, 297, 32) : '',
    devmajor: hasOwnerFields ? numeric(block, 329, 8, 'devmajor', offset) : 0,
    devminor: hasOwnerFields ? numeric(block, 337, 8, 'devminor', offset) : 0,
  };
}

function verifyChecksum(block: Uint8Array, offset: number): void {
  const stored = numeric(block, 148, 8, 'checksum', offset);
  // The checksum is computed with its own field read as spaces. Some old tars summed signed
  // bytes; accept either, as GNU tar and Go do. The signed sum is only needed when the unsigned
  // one does not match (this runs once per entry of every unpacked layer).
  const unsigned = 8 * 0x20 + byteSum(block) - byteSum(block.subarray(148, 156));
  if (stored === unsigned) return;
  let high = 0;
  for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) high += block[i]! >> 7;
  const signed = unsigned - 256 * high;
  if (stored !== signed) {
    throw new ZtocError(
      'ZTOC_BAD_TAR',
      `tar header at offset ${offset} has checksum ${stored}, expected ${unsigned}: ` +
        'the layer is not a tar stream or is corrupt',
    );
  }
}

/**
 * The sum of the bytes. A whole block (aligned, as the indexer's is) is read as 32-bit words,
 * two bytes summed per 16-bit lane at a time: a quarter of the steps of a byte loop. 128 words
 * add at most 2 * 128 * 255 < 2^16 per lane, so lanes never carry into each other.
 */
function byteSum(bytes: Uint8Array): number {
  if (bytes.length !== BLOCK || bytes.byteOffset % 4 !== 0) {
    let sum = 0;
    for (let i = 0; i < bytes.length; i++) sum += bytes[i]!;
    return sum;
  }
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, BLOCK / 4);
  let lanes = 0;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    lanes += (w & 0x00ff00ff) + ((w >>> 8) & 0x00ff00ff);
  }
  return (lanes & 0xffff) + Math.floor(lanes / 0x10000);
}

/**
 * Numeric header field: octal text (space/NUL padded), or GNU base-256 when the high bit of
 * the first byte is set (big-endian two's complement, used for sizes >= 8 GiB, negative times).
 */
export function numeric(
  block: Uint8Array,
  start: number,
  len: number,
  field: string,
  offset: number,
): number {
  const first = block[start]!;
  if (first & 0x80) {
    let v = BigInt(first & 0x7f);
    if (first & 0x40) v -= 0x80n; // sign bit set: negative
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(block[start + i]!);
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw badField(field, offset, `base-256 value ${v} is beyond 2^53`);
    return n;
  }
  let i = start;
  const end = start + len;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  let n = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = block[i]!;
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) throw badField(field, offset, `byte 0x${c.toString(16)} is not an octal digit`);
    n = n * 8 + (c - 0x30);
    digits++;
  }
  for (; i < end; i++) {
    if (block[i] !== 0 && block[i] !== 0x20) throw badField(field, offset, 'text after the octal number');
  }
  return digits ? n : 0;
}

function badField(field: string, offset: number, why: string): ZtocError {
  return new ZtocError('ZTOC_BAD_TAR', `tar header at offset ${offset}: bad ${field} field (${why})`);
}

/** NUL-terminated UTF-8 text field. */
function text(block: Uint8Array, start: number, len: number): string {
  let end = start;
  let ascii = true;
  for (const limit = start + len; end < limit; end++) {
    const b = block[end]!;
    if (b === 0) break;
    if (b >= 0x80) ascii = false;
  }
  if (end === start) return '';
  // Nearly every name is ASCII: building it directly skips the decoder's per-call cost.
  if (ascii) return String.fromCharCode.apply(null, block.subarray(start, end) as unknown as number[]);
  return utf8.decode(block.subarray(start, end));
}

const USTAR_MAGIC = bytes('ustar\0');
const GNU_MAGIC = bytes('ustar  \0'); // magic "ustar " + version " \0"
const STAR_TRAILER = bytes('tar\0');

function bytes(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function matches(block: Uint8Array, start: number, expected: Uint8Array): boolean {
  for (let i = 0; i < expected.length; i++) if (block[start + i] !== expected[i]) return false;
  return true;
}

/** Data of an entry rounded up to whole blocks. */
export function paddedSize(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}
