import { SeekableGzipError } from './errors.js';

/**
 * The checkpoint blob of an uncompressed (plain tar) layer: the flatbuffer
 * `table TarZinfo { version:int32; span_size:int64; size:int64; }` (namespace zinfo).
 * It is three scalars, so it is written by hand; the reader follows the vtable, so it accepts any
 * valid layout another flatbuffers writer may produce (including omitted default fields).
 */
export interface TarZinfo {
  version: number;
  spanSize: number;
  size: number;
}

export const TAR_ZINFO_VERSION = 2;

// Layout written: [root uoffset=16][2 pad][vtable: 10,24,4,8,16][table: soffset=10, version, pad?, span, size]
const VTABLE_POS = 6;
const TABLE_POS = 16;

export function encodeTarZinfo(o: { spanSize: number; size: number }): Uint8Array {
  for (const [name, v] of [
    ['spanSize', o.spanSize],
    ['size', o.size],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new SeekableGzipError(
        'GZIP_INVALID_ARGUMENT',
        `TarZinfo ${name} must be a non-negative integer, got ${v}`,
      );
    }
  }
  const blob = new Uint8Array(40);
  const view = new DataView(blob.buffer);
  view.setUint32(0, TABLE_POS, true);
  view.setUint16(VTABLE_POS, 10, true); // vtable size: 4 + 3 fields * 2
  view.setUint16(VTABLE_POS + 2, 24, true); // table size, soffset included
  view.setUint16(VTABLE_POS + 4, 4, true); // version
  view.setUint16(VTABLE_POS + 6, 8, true); // span_size (8-aligned in the buffer)
  view.setUint16(VTABLE_POS + 8, 16, true); // size
  view.setInt32(TABLE_POS, TABLE_POS - VTABLE_POS, true);
  view.setInt32(TABLE_POS + 4, TAR_ZINFO_VERSION, true);
  view.setBigInt64(TABLE_POS + 8, BigInt(o.spanSize), true);
  view.setBigInt64(TABLE_POS + 16, BigInt(o.size), true);
  return blob;
}

/**
 * Older reference writers stored the same three scalars as 20 raw little-endian bytes
 * (int32 version, int64 span size, int64 size). No flatbuffer of this table is that short
 * (root offset + vtable + table need at least 28 bytes), so the length tells the layouts apart.
 */
const RAW_TAR_ZINFO_LENGTH = 20;

export function decodeTarZinfo(blob: Uint8Array): TarZinfo {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  if (blob.length === RAW_TAR_ZINFO_LENGTH) {
    return {
      version: view.getInt32(0, true),
      spanSize: int64(view, 4, 'span_size'),
      size: int64(view, 12, 'size'),
    };
  }
  const need = (pos: number, len: number, what: string) => {
    if (pos < 0 || pos + len > blob.length)
      bad(`${what} at byte ${pos} is outside the ${blob.length}-byte blob`);
  };
  need(0, 4, 'root offset');
  const table = view.getUint32(0, true);
  need(table, 4, 'root table');
  const vtable = table - view.getInt32(table, true);
  need(vtable, 4, 'vtable');
  const vtableSize = view.getUint16(vtable, true);
  const tableSize = view.getUint16(vtable + 2, true);
  if (vtableSize < 4 || vtableSize % 2 !== 0) bad(`vtable size ${vtableSize} is invalid`);
  need(vtable, vtableSize, 'vtable');
  need(table, tableSize, 'table');
  const field = (id: number, width: number): number => {
    const slot = 4 + id * 2;
    if (slot + 2 > vtableSize) return -1;
    const off = view.getUint16(vtable + slot, true);
    if (off === 0) return -1;
    if (off + width > tableSize) bad(`field ${id} lies outside its table`);
    return table + off;
  };
  const versionAt = field(0, 4);
  const spanAt = field(1, 8);
  const sizeAt = field(2, 8);
  const spanSize = spanAt < 0 ? 0 : int64(view, spanAt, 'span_size');
  const size = sizeAt < 0 ? 0 : int64(view, sizeAt, 'size');
  return { version: versionAt < 0 ? 0 : view.getInt32(versionAt, true), spanSize, size };
}

function int64(view: DataView, pos: number, what: string): number {
  const v = view.getBigInt64(pos, true);
  if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) bad(`${what} is out of range (${v})`);
  return Number(v);
}

function bad(what: string): never {
  throw new SeekableGzipError('GZIP_BAD_ZINFO', `invalid TarZinfo flatbuffer: ${what}; rebuild the zTOC`);
}
