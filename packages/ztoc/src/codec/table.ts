import { ZtocError } from '../errors.js';
import { slot } from './schema.js';

/**
 * Bounds-checked flatbuffers access. The `flatbuffers` runtime trusts its input; a zTOC comes
 * from a registry, so every offset is checked here and a bad one becomes a ZTOC_INVALID error
 * instead of a RangeError, garbage or an endless loop.
 */
export class FbBuffer {
  readonly view: DataView;
  private readonly utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get length(): number {
    return this.bytes.length;
  }

  need(pos: number, size: number, what: string): void {
    if (pos < 0 || size < 0 || pos + size > this.bytes.length) {
      throw corrupt(`${what} at ${pos} (+${size}) is outside the ${this.bytes.length}-byte buffer`);
    }
  }

  u32(pos: number, what: string): number {
    this.need(pos, 4, what);
    return this.view.getUint32(pos, true);
  }

  /** Table at the root of the buffer. */
  root(): FbTable {
    return this.table(this.u32(0, 'root offset'), 'root table');
  }

  table(pos: number, what: string): FbTable {
    this.need(pos, 4, what);
    const vtable = pos - this.view.getInt32(pos, true);
    this.need(vtable, 4, `${what} vtable`);
    const vtableSize = this.view.getUint16(vtable, true);
    const tableSize = this.view.getUint16(vtable + 2, true);
    if (vtableSize < 4 || vtableSize % 2 !== 0) throw corrupt(`${what} has a vtable of ${vtableSize} bytes`);
    this.need(vtable, vtableSize, `${what} vtable`);
    if (tableSize < 4) throw corrupt(`${what} is ${tableSize} bytes long`);
    this.need(pos, tableSize, what);
    return new FbTable(this, pos, vtable, vtableSize, tableSize, what);
  }

  /** Follows the uoffset stored at `pos`. */
  indirect(pos: number, what: string): number {
    const target = pos + this.u32(pos, what);
    this.need(target, 4, what);
    return target;
  }

  string(pos: number, what: string): string {
    return this.decode(this.stringBytes(pos, what));
  }

  decode(bytes: Uint8Array): string {
    return this.utf8.decode(bytes);
  }

  stringBytes(pos: number, what: string): Uint8Array {
    const len = this.u32(pos, `${what} length`);
    this.need(pos + 4, len, what);
    return this.bytes.subarray(pos + 4, pos + 4 + len);
  }

  /** Vector header at `pos`: returns its element count after checking the elements fit. */
  vectorLength(pos: number, elementSize: number, what: string): number {
    const len = this.u32(pos, `${what} length`);
    this.need(pos + 4, len * elementSize, what);
    return len;
  }
}

export class FbTable {
  constructor(
    readonly buf: FbBuffer,
    readonly pos: number,
    private readonly vtable: number,
    private readonly vtableSize: number,
    private readonly tableSize: number,
    readonly what: string,
  ) {}

  /** Absolute position of field `id`, or 0 when absent. Checks `width` bytes fit in the table. */
  field(id: number, width: number): number {
    const s = slot(id);
    if (s + 2 > this.vtableSize) return 0;
    const off = this.buf.view.getUint16(this.vtable + s, true);
    if (off === 0) return 0;
    if (off < 4 || off + width > this.tableSize) {
      throw corrupt(`${this.what} field ${id} at offset ${off} overruns the ${this.tableSize}-byte table`);
    }
    return this.pos + off;
  }

  int8(id: number, dflt: number): number {
    const p = this.field(id, 1);
    return p ? this.buf.view.getInt8(p) : dflt;
  }

  int32(id: number): number {
    const p = this.field(id, 4);
    return p ? this.buf.view.getInt32(p, true) : 0;
  }

  uint32(id: number): number {
    const p = this.field(id, 4);
    return p ? this.buf.view.getUint32(p, true) : 0;
  }

  /** int64 as a number; values beyond 2^53 cannot be exact and are rejected. */
  int64(id: number, name: string): number {
    const p = this.field(id, 8);
    if (!p) return 0;
    const lo = this.buf.view.getUint32(p, true);
    const hi = this.buf.view.getInt32(p + 4, true);
    const value = hi * 0x100000000 + lo;
    if (!Number.isSafeInteger(value)) throw corrupt(`${this.what}.${name} = ${value} is beyond 2^53`);
    return value;
  }

  /** Position of the object a reference field points at, or 0 when absent. */
  ref(id: number, name: string): number {
    const p = this.field(id, 4);
    return p ? this.buf.indirect(p, `${this.what}.${name}`) : 0;
  }

  string(id: number, name: string): string {
    const p = this.ref(id, name);
    return p ? this.buf.string(p, `${this.what}.${name}`) : '';
  }

  stringBytes(id: number, name: string): Uint8Array {
    const p = this.ref(id, name);
    return p ? this.buf.stringBytes(p, `${this.what}.${name}`) : new Uint8Array(0);
  }

  table(id: number, name: string): FbTable | undefined {
    const p = this.ref(id, name);
    return p ? this.buf.table(p, `${this.what}.${name}`) : undefined;
  }

  vector(id: number, elementSize: number, name: string): FbVector | undefined {
    const p = this.ref(id, name);
    if (!p) return undefined;
    const what = `${this.what}.${name}`;
    return new FbVector(this.buf, p + 4, this.buf.vectorLength(p, elementSize, what), what);
  }
}

/** A vector of references (tables or strings) or of bytes. */
export class FbVector {
  constructor(
    readonly buf: FbBuffer,
    readonly start: number,
    readonly length: number,
    readonly what: string,
  ) {}

  private element(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) {
      throw new ZtocError('ZTOC_OUT_OF_RANGE', `${this.what}[${i}] is out of range (length ${this.length})`);
    }
    return this.buf.indirect(this.start + 4 * i, `${this.what}[${i}]`);
  }

  table(i: number): FbTable {
    return this.buf.table(this.element(i), `${this.what}[${i}]`);
  }

  string(i: number): string {
    return this.buf.string(this.element(i), `${this.what}[${i}]`);
  }

  bytes(): Uint8Array {
    return this.buf.bytes.subarray(this.start, this.start + this.length);
  }
}

/** The one error for bytes that are not a well-formed zTOC. */
export function corrupt(message: string): ZtocError {
  return new ZtocError(
    'ZTOC_INVALID',
    `corrupt zTOC: ${message}; rebuild the zTOC or check that the blob is one`,
  );
}
