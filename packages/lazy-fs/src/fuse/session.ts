import type { Duplex } from 'node:stream';
import { errnoOf } from '../errors.js';
import { Errno, type FuseNodeOps, type FuseStat } from './backend.js';
import {
  encodeAttr,
  encodeDirents,
  encodeEntry,
  encodeInit,
  encodeOpen,
  encodeReply,
  encodeStatfs,
  encodeXattrSize,
  FOPEN_KEEP_CACHE,
  FUSE_KERNEL_VERSION,
  FUSE_MIN_KERNEL_MINOR,
  FUSE_OUR_MINOR,
  finishReply,
  IN_HEADER_SIZE,
  InitFlag,
  MAX_WRITE,
  MessageFramer,
  Opcode,
  OUT_HEADER_SIZE,
  readHeader,
  readInit,
  readName,
  WRITE_OPCODES,
} from './wire.js';

const EPROTO = 71;
/** FOPEN_CACHE_DIR: the kernel keeps readdir answers (a layer's directories never change). */
const FOPEN_CACHE_DIR = 1 << 3;
/** Reads of up to 1 MiB in one request (256 pages). */
const MAX_PAGES = 256;

export interface FuseSessionOptions {
  /** Seconds the kernel may cache attributes. */
  attrTimeout: number;
  /** Seconds the kernel may cache names, found or not. */
  entryTimeout: number;
  /** Keep file pages in the page cache across opens. */
  kernelCache: boolean;
  /** Told of a request the session could not answer (the kernel got EIO). */
  onError?: (err: unknown, opcode: number) => void;
}

/**
 * Serves one FUSE connection: requests arrive as a byte stream of kernel messages (relayed by
 * the keeper), each is answered by one reply message on the same stream. Stateless between
 * requests, so a session can start in the middle of a connection another daemon began.
 */
export class FuseSession {
  private readonly framer = new MessageFramer();
  private closed = false;
  readonly ended: Promise<void>;

  constructor(
    private readonly transport: Duplex,
    private readonly ops: FuseNodeOps,
    private readonly options: FuseSessionOptions,
  ) {
    this.ended = new Promise((done) => {
      transport.once('close', () => {
        this.closed = true;
        done();
      });
    });
    transport.on('error', () => {
      // 'close' follows; a broken relay ends the session, the keeper keeps the mount.
    });
    transport.on('data', (chunk: Buffer) => {
      let messages: Buffer[];
      try {
        messages = this.framer.push(chunk);
      } catch (err) {
        this.options.onError?.(err, -1);
        transport.destroy();
        return;
      }
      for (const message of messages) this.handle(message);
    });
  }

  /** Stops answering (the mount stays with the keeper). */
  close(): Promise<void> {
    this.closed = true;
    this.transport.destroy();
    return this.ended;
  }

  private send(frame: Buffer): void {
    if (!this.closed) this.transport.write(frame);
  }

  private reply(unique: bigint, result: Buffer | number): void {
    this.send(typeof result === 'number' ? encodeReply(unique, result) : encodeReply(unique, 0, result));
  }

  private handle(msg: Buffer): void {
    const h = readHeader(msg);
    try {
      this.dispatch(msg, h.opcode, h.unique, h.nodeid);
    } catch (err) {
      this.options.onError?.(err, h.opcode);
      this.reply(h.unique, Errno.EIO);
    }
  }

  private dispatch(msg: Buffer, opcode: number, unique: bigint, nodeid: number) {
    const { ops, options } = this;
    const b = IN_HEADER_SIZE;
    switch (opcode) {
      case Opcode.INIT:
        return this.reply(unique, this.init(msg));
      case Opcode.LOOKUP: {
        const found = ops.lookup(nodeid, readName(msg, b));
        // A name that is not there is cached too (node id 0): programs probe many paths at start.
        if (found === Errno.ENOENT) return this.reply(unique, negativeEntry(options.entryTimeout));
        return this.reply(unique, this.entry(found));
      }
      case Opcode.FORGET:
      case Opcode.BATCH_FORGET:
      case Opcode.INTERRUPT:
        return;
      case Opcode.GETATTR: {
        const st = ops.getattr(nodeid);
        return this.reply(unique, typeof st === 'number' ? st : encodeAttr(st, options.attrTimeout));
      }
      case Opcode.READLINK: {
        const target = ops.readlink(nodeid);
        return this.reply(unique, typeof target === 'number' ? target : Buffer.from(target));
      }
      case Opcode.OPEN: {
        const errno = ops.open(nodeid, msg.readUInt32LE(b));
        return this.reply(unique, errno || encodeOpen(0, options.kernelCache ? FOPEN_KEEP_CACHE : 0));
      }
      case Opcode.OPENDIR: {
        const st = ops.getattr(nodeid);
        if (typeof st === 'number') return this.reply(unique, st);
        return this.reply(unique, encodeOpen(0, FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR));
      }
      case Opcode.READ:
        return this.read(unique, nodeid, Number(msg.readBigUInt64LE(b + 8)), msg.readUInt32LE(b + 16));
      case Opcode.READDIR:
      case Opcode.READDIRPLUS: {
        const list = ops.readdir(nodeid);
        if (typeof list === 'number') return this.reply(unique, list);
        const start = Number(msg.readBigUInt64LE(b + 8));
        const size = msg.readUInt32LE(b + 16);
        if (opcode === Opcode.READDIR) return this.reply(unique, encodeDirents(list, start, size));
        // With each entry's attributes: a directory listed once needs no LOOKUP per name after.
        return this.reply(
          unique,
          encodeDirents(list, start, size, {
            entryValidS: options.entryTimeout,
            attrValidS: options.attrTimeout,
            attrOf: (e) => {
              if (e.name === '.' || e.name === '..') return undefined;
              const attr = ops.getattr(e.ino);
              return typeof attr === 'number' ? undefined : attr;
            },
          }),
        );
      }
      case Opcode.STATFS:
        return this.reply(unique, encodeStatfs(ops.statfs()));
      case Opcode.GETXATTR: {
        const value = ops.getxattr(nodeid, readName(msg, b + 8));
        return this.reply(unique, sized(value, msg.readUInt32LE(b)));
      }
      case Opcode.LISTXATTR: {
        const names = ops.listxattr(nodeid);
        const list = typeof names === 'number' ? names : Buffer.from(names.map((n) => `${n}\0`).join(''));
        return this.reply(unique, sized(list, msg.readUInt32LE(b)));
      }
      case Opcode.RELEASE:
      case Opcode.RELEASEDIR:
      case Opcode.FLUSH:
      case Opcode.FSYNC:
      case Opcode.FSYNCDIR:
      case Opcode.ACCESS:
      case Opcode.DESTROY:
        return this.reply(unique, Buffer.alloc(0));
      default:
        return this.reply(unique, WRITE_OPCODES.has(opcode) ? Errno.EROFS : Errno.ENOSYS);
    }
  }

  private init(msg: Buffer): Buffer | number {
    const init = readInit(msg);
    if (init.major < FUSE_KERNEL_VERSION) return EPROTO;
    // A newer major: answer with ours and the kernel asks again in our version.
    if (init.major > FUSE_KERNEL_VERSION)
      return encodeInit({ ...INIT_DEFAULTS, minor: FUSE_OUR_MINOR, flags: 0 });
    if (init.minor < FUSE_MIN_KERNEL_MINOR) return EPROTO;
    const wanted =
      InitFlag.ASYNC_READ |
      InitFlag.PARALLEL_DIROPS |
      InitFlag.MAX_PAGES |
      InitFlag.CACHE_SYMLINKS |
      InitFlag.DO_READDIRPLUS |
      InitFlag.READDIRPLUS_AUTO;
    return encodeInit({
      ...INIT_DEFAULTS,
      minor: Math.min(init.minor, FUSE_OUR_MINOR),
      // The kernel's read-ahead (128 KiB), not more: a read-ahead or mmap read-around request is
      // answered only once every span it covers is here, so a bigger window makes a page fault
      // wait for (and, with the registry gone, fail on) spans nobody asked for. Tried: 1 MiB gave
      // cold sequential reads +13% and made an executable's page faults fail on a lost registry.
      maxReadahead: init.maxReadahead,
      flags: init.flags & wanted,
    });
  }

  private entry(found: FuseStat | number): Buffer | number {
    if (typeof found === 'number') return found;
    return encodeEntry(found, this.options.entryTimeout, this.options.attrTimeout);
  }

  private read(unique: bigint, nodeid: number, offset: number, size: number): void {
    // The reply is built in place: header, then the file bytes straight from the span cache.
    const frame = Buffer.allocUnsafe(OUT_HEADER_SIZE + size);
    this.ops.read(nodeid, frame.subarray(OUT_HEADER_SIZE), offset).then(
      (n) => this.send(finishReply(frame.subarray(0, OUT_HEADER_SIZE + n), unique)),
      (err) => {
        this.options.onError?.(err, Opcode.READ);
        this.reply(unique, errnoOf(err));
      },
    );
  }
}

const INIT_DEFAULTS = {
  maxReadahead: 128 * 1024,
  // Readahead and async reads are "background" requests: more in flight, more spans fetched at once.
  maxBackground: 64,
  congestionThreshold: 48,
  maxWrite: MAX_WRITE,
  maxPages: MAX_PAGES,
};

/** An entry with node id 0: the kernel remembers the name is absent for `entryTimeout` seconds. */
function negativeEntry(entryTimeout: number): Buffer {
  const none: FuseStat = {
    ino: 0,
    mode: 0,
    uid: 0,
    gid: 0,
    size: 0,
    nlink: 0,
    rdev: 0,
    blocks: 0,
    blksize: 0,
    mtimeMs: 0,
    atimeMs: 0,
    ctimeMs: 0,
  };
  return encodeEntry(none, entryTimeout, 0);
}

/** getxattr/listxattr: size 0 asks for the length; a buffer too small gets ERANGE. */
function sized(value: Buffer | number, size: number): Buffer | number {
  if (typeof value === 'number') return value;
  if (size === 0) return encodeXattrSize(value.length);
  return value.length > size ? Errno.ERANGE : value;
}
