/**
 * The Linux FUSE wire protocol (include/uapi/linux/fuse.h), the parts a read-only file system
 * needs. Every message starts with its total length, so a byte stream of messages frames itself:
 * the keeper relays them over a unix socket unchanged.
 */

export const FUSE_KERNEL_VERSION = 7;
/** The protocol minor we speak; the kernel adapts to the lower of its and ours. */
export const FUSE_OUR_MINOR = 31;
/** Oldest kernel protocol minor whose structure sizes we encode (Linux 4.20). */
export const FUSE_MIN_KERNEL_MINOR = 28;
export const FUSE_ROOT_ID = 1;

/**
 * Largest write the kernel may send (we refuse writes, but the kernel sizes its demand on the
 * reader's buffer from it): the keeper reads with KEEPER_READ_BUFFER bytes, which must hold
 * a header, a fuse_write_in and MAX_WRITE bytes.
 */
export const MAX_WRITE = 32 * 1024;
export const KEEPER_READ_BUFFER = 64 * 1024;

export const IN_HEADER_SIZE = 40;
export const OUT_HEADER_SIZE = 16;

export const Opcode = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  DESTROY: 38,
  BATCH_FORGET: 42,
  READDIRPLUS: 44,
  FALLOCATE: 43,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
} as const;

/** Requests the kernel sends without waiting for an answer: nobody must reply to them. */
export function expectsReply(opcode: number): boolean {
  return opcode !== Opcode.FORGET && opcode !== Opcode.BATCH_FORGET && opcode !== Opcode.INTERRUPT;
}

/** Operations that would change the file system: a layer is read-only. */
export const WRITE_OPCODES: ReadonlySet<number> = new Set([
  Opcode.SETATTR,
  Opcode.SYMLINK,
  Opcode.MKNOD,
  Opcode.MKDIR,
  Opcode.UNLINK,
  Opcode.RMDIR,
  Opcode.RENAME,
  Opcode.LINK,
  Opcode.WRITE,
  Opcode.SETXATTR,
  Opcode.REMOVEXATTR,
  Opcode.CREATE,
  Opcode.FALLOCATE,
  Opcode.RENAME2,
  Opcode.COPY_FILE_RANGE,
]);

/** fuse_init_in / fuse_init_out flags we use. */
export const InitFlag = {
  ASYNC_READ: 1 << 0,
  DO_READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  PARALLEL_DIROPS: 1 << 18,
  MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23,
} as const;

export const FOPEN_KEEP_CACHE = 1 << 1;

export interface RequestHeader {
  len: number;
  opcode: number;
  unique: bigint;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
}

export function readHeader(msg: Buffer): RequestHeader {
  return {
    len: msg.readUInt32LE(0),
    opcode: msg.readUInt32LE(4),
    unique: msg.readBigUInt64LE(8),
    // Our node ids are inode numbers: far below 2^53.
    nodeid: Number(msg.readBigUInt64LE(16)),
    uid: msg.readUInt32LE(24),
    gid: msg.readUInt32LE(28),
    pid: msg.readUInt32LE(32),
  };
}

/** A reply: the out header followed by `body`; `errno` > 0 sends an error with no body. */
export function encodeReply(unique: bigint, errno: number, body?: Buffer): Buffer {
  const bodyLength = errno ? 0 : (body?.length ?? 0);
  const head = Buffer.allocUnsafe(OUT_HEADER_SIZE);
  head.writeUInt32LE(OUT_HEADER_SIZE + bodyLength, 0);
  head.writeInt32LE(-errno, 4);
  head.writeBigUInt64LE(unique, 8);
  return bodyLength && body ? Buffer.concat([head, body]) : head;
}

/** A reply whose body is already in place after OUT_HEADER_SIZE bytes of `frame`. */
export function finishReply(frame: Buffer, unique: bigint): Buffer {
  frame.writeUInt32LE(frame.length, 0);
  frame.writeInt32LE(0, 4);
  frame.writeBigUInt64LE(unique, 8);
  return frame;
}

export interface InitRequest {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
}

export function readInit(msg: Buffer): InitRequest {
  const b = IN_HEADER_SIZE;
  return {
    major: msg.readUInt32LE(b),
    minor: msg.readUInt32LE(b + 4),
    maxReadahead: msg.readUInt32LE(b + 8),
    flags: msg.readUInt32LE(b + 12),
  };
}

export interface InitReply {
  minor: number;
  maxReadahead: number;
  flags: number;
  maxBackground: number;
  congestionThreshold: number;
  maxWrite: number;
  maxPages: number;
}

/** fuse_init_out: 64 bytes. */
export function encodeInit(r: InitReply): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32LE(FUSE_KERNEL_VERSION, 0);
  b.writeUInt32LE(r.minor, 4);
  b.writeUInt32LE(r.maxReadahead, 8);
  b.writeUInt32LE(r.flags >>> 0, 12);
  b.writeUInt16LE(r.maxBackground, 16);
  b.writeUInt16LE(r.congestionThreshold, 18);
  b.writeUInt32LE(r.maxWrite, 20);
  b.writeUInt32LE(1, 24); // time_gran: nanoseconds
  b.writeUInt16LE(r.maxPages, 28);
  return b;
}

/** What the protocol needs to know of an inode. */
export interface WireAttr {
  ino: number;
  size: number;
  blocks: number;
  mtimeMs: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  blksize: number;
}

export const ATTR_SIZE = 88;

/** fuse_attr at `offset`. Times are the modification time (a layer has no other). */
export function writeAttr(b: Buffer, offset: number, a: WireAttr): void {
  const seconds = Math.floor(a.mtimeMs / 1000);
  const nanos = Math.round((a.mtimeMs - seconds * 1000) * 1e6) % 1e9;
  b.writeBigUInt64LE(BigInt(a.ino), offset);
  b.writeBigUInt64LE(BigInt(a.size), offset + 8);
  b.writeBigUInt64LE(BigInt(a.blocks), offset + 16);
  for (let i = 0; i < 3; i++) {
    b.writeBigInt64LE(BigInt(seconds), offset + 24 + i * 8);
    b.writeUInt32LE(nanos, offset + 48 + i * 4);
  }
  b.writeUInt32LE(a.mode >>> 0, offset + 60);
  b.writeUInt32LE(a.nlink, offset + 64);
  b.writeUInt32LE(a.uid >>> 0, offset + 68);
  b.writeUInt32LE(a.gid >>> 0, offset + 72);
  b.writeUInt32LE(a.rdev >>> 0, offset + 76);
  b.writeUInt32LE(a.blksize, offset + 80);
  b.writeUInt32LE(0, offset + 84);
}

/** Seconds to fuse's (u64 seconds, u32 nanoseconds) validity pair. */
function writeValid(b: Buffer, secondsOffset: number, nsecOffset: number, seconds: number): void {
  const whole = Math.floor(seconds);
  b.writeBigUInt64LE(BigInt(whole), secondsOffset);
  b.writeUInt32LE(Math.round((seconds - whole) * 1e9), nsecOffset);
}

/** fuse_entry_out: 128 bytes. */
export function encodeEntry(a: WireAttr, entryValidS: number, attrValidS: number): Buffer {
  const b = Buffer.alloc(40 + ATTR_SIZE);
  b.writeBigUInt64LE(BigInt(a.ino), 0);
  writeValid(b, 16, 32, entryValidS);
  writeValid(b, 24, 36, attrValidS);
  writeAttr(b, 40, a);
  return b;
}

/** fuse_attr_out: 104 bytes. */
export function encodeAttr(a: WireAttr, attrValidS: number): Buffer {
  const b = Buffer.alloc(16 + ATTR_SIZE);
  writeValid(b, 0, 8, attrValidS);
  writeAttr(b, 16, a);
  return b;
}

/** fuse_open_out: 16 bytes. */
export function encodeOpen(fh: number, openFlags: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(BigInt(fh), 0);
  b.writeUInt32LE(openFlags, 8);
  return b;
}

export interface WireStatfs {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namemax: number;
  frsize: number;
}

/** fuse_statfs_out: 80 bytes. */
export function encodeStatfs(s: WireStatfs): Buffer {
  const b = Buffer.alloc(80);
  b.writeBigUInt64LE(BigInt(s.blocks), 0);
  b.writeBigUInt64LE(BigInt(s.bfree), 8);
  b.writeBigUInt64LE(BigInt(s.bavail), 16);
  b.writeBigUInt64LE(BigInt(s.files), 24);
  b.writeBigUInt64LE(BigInt(s.ffree), 32);
  b.writeUInt32LE(s.bsize, 40);
  b.writeUInt32LE(s.namemax, 44);
  b.writeUInt32LE(s.frsize, 48);
  return b;
}

/** fuse_getxattr_out: the size a value or name list needs. */
export function encodeXattrSize(size: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(size, 0);
  return b;
}

/** The NUL-terminated name after a request's fixed part. */
export function readName(msg: Buffer, offset: number): string {
  const end = msg.indexOf(0, offset);
  return msg.toString('utf8', offset, end < 0 ? msg.length : end);
}

/** One directory entry to encode. */
export interface WireDirEntry {
  name: string;
  ino: number;
  mode: number;
}

/** fuse_dirent at `offset`: inode, the offset that continues after it, name length, type, name. */
function writeDirent(b: Buffer, offset: number, e: WireDirEntry, next: number, name: Buffer): void {
  b.writeBigUInt64LE(BigInt(e.ino), offset);
  b.writeBigUInt64LE(BigInt(next), offset + 8);
  b.writeUInt32LE(name.length, offset + 16);
  b.writeUInt32LE((e.mode >>> 12) & 0o17, offset + 20);
  name.copy(b, offset + 24);
}

/**
 * READDIR or READDIRPLUS records, from entry `start` on, as many as fit in `size` bytes. Each
 * record's `off` is the index of the next entry, which is what the kernel sends back to
 * continue. With `plus` (READDIRPLUS), each record starts with a fuse_entry_out from `attrOf`,
 * asked only for the entries that fit; one it has none for ('.', '..') gets node id 0, which
 * the kernel takes as "no attributes given".
 */
export function encodeDirents(
  entries: readonly WireDirEntry[],
  start: number,
  size: number,
  plus?: { entryValidS: number; attrValidS: number; attrOf: (e: WireDirEntry) => WireAttr | undefined },
): Buffer {
  const entrySize = plus ? 40 + ATTR_SIZE : 0;
  const parts: Buffer[] = [];
  let used = 0;
  for (let i = start; i < entries.length; i++) {
    const e = entries[i]!;
    const name = Buffer.from(e.name);
    const recLen = entrySize + ((24 + name.length + 7) & ~7);
    if (used + recLen > size) break;
    const rec = Buffer.alloc(recLen);
    const attr = plus?.attrOf(e);
    if (plus && attr) encodeEntry(attr, plus.entryValidS, plus.attrValidS).copy(rec, 0);
    writeDirent(rec, entrySize, e, i + 1, name);
    parts.push(rec);
    used += recLen;
  }
  return Buffer.concat(parts, used);
}

/**
 * Splits a byte stream of length-prefixed FUSE messages; partial messages wait for more bytes.
 * Chunks are kept as they came and joined once per message, so a big message that arrives in
 * many chunks costs one copy, not one per chunk.
 */
export class MessageFramer {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;

  /** The whole messages `chunk` completes, in order. */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const messages: Buffer[] = [];
    while (this.buffered >= 4) {
      const len = this.peekLength();
      if (len < OUT_HEADER_SIZE) throw new Error(`a FUSE message claims ${len} bytes, less than a header`);
      if (this.buffered < len) break;
      messages.push(this.take(len));
    }
    return messages;
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    if (first.length >= 4) return first.readUInt32LE(0);
    return Buffer.concat(this.chunks, 4).readUInt32LE(0);
  }

  /** The next `n` bytes, as one buffer (a view when one chunk holds them). */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0]!;
      const part = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, part);
      filled += part;
      if (part === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(part);
    }
    return out;
  }
}
