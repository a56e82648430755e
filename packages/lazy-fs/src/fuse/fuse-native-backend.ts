import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { errnoOf, LazyFsError } from '../errors.js';
import {
  Errno,
  type FuseBackend,
  type FuseMount,
  type FuseMountOptions,
  type FuseNodeOps,
  type FuseStat,
} from './backend.js';
import { forceUnmount, forceUnmountSync, isMounted } from './mount-table.js';
import { FUSE_ROOT_ID } from './wire.js';

// fuse-native is CommonJS without types; these are the parts we use.
type NodeCallback = (...args: unknown[]) => void;
interface FuseNativeInstance {
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}
type FuseNativeClass = new (mnt: string, ops: object, opts: object) => FuseNativeInstance;

const require = createRequire(import.meta.url);
let fuseNativeClass: FuseNativeClass | undefined;

/**
 * fuse-native, with two fixes: getxattr/listxattr answer ERANGE when the caller's buffer is
 * too small (fuse-native would truncate silently), and value sizes are reported exactly.
 */
function fuseClass(): FuseNativeClass {
  if (fuseNativeClass) return fuseNativeClass;
  const Base = require('fuse-native') as FuseNativeClass;
  // biome-ignore lint/suspicious/noExplicitAny: extending an untyped CommonJS class
  const Patched = class extends (Base as any) {
    _op_getxattr(signal: NodeCallback, path: string, name: string, valueBuf: Buffer) {
      this.ops.getxattr(path, name, 0, (err: number, value?: Buffer) => {
        if (err) return signal(err, valueBuf.buffer);
        if (!value) return signal(-Errno.ENODATA, valueBuf.buffer);
        if (valueBuf.length === 0) return signal(value.length, valueBuf.buffer);
        if (value.length > valueBuf.length) return signal(-Errno.ERANGE, valueBuf.buffer);
        value.copy(valueBuf);
        return signal(value.length, valueBuf.buffer);
      });
    }

    _op_listxattr(signal: NodeCallback, path: string, listBuf: Buffer) {
      this.ops.listxattr(path, (err: number, list?: string[]) => {
        if (err) return signal(err, listBuf.buffer);
        const encoded = Buffer.from((list ?? []).map((n) => `${n}\0`).join(''));
        if (listBuf.length === 0) return signal(encoded.length, listBuf.buffer);
        if (encoded.length > listBuf.length) return signal(-Errno.ERANGE, listBuf.buffer);
        encoded.copy(listBuf);
        return signal(encoded.length, listBuf.buffer);
      });
    }
  };
  fuseNativeClass = Patched as unknown as FuseNativeClass;
  return fuseNativeClass;
}

/** Mountpoints of this process, unmounted when the process exits. */
const live = new Set<string>();
let exitHookInstalled = false;

function trackForExit(mountpoint: string): void {
  live.add(mountpoint);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const mnt of live) forceUnmountSync(mnt);
  });
}

/**
 * Mounts with fuse-native 2 (libfuse 2, high-level path API). Its session lives and dies with
 * this process: `detach` unmounts. The daemon uses the keeper instead.
 */
export class FuseNativeBackend implements FuseBackend {
  async mount(mountpoint: string, ops: FuseNodeOps, options: FuseMountOptions): Promise<FuseMount> {
    const mnt = resolve(mountpoint);
    const Fuse = fuseClass();
    const fuse = new Fuse(mnt, toNativeOps(ops), nativeOptions(options));
    try {
      await mkdir(mnt, { recursive: true });
      // A mount left by a process that died answers ENOTCONN; clear it before mounting again.
      if (await isMounted(mnt)) await forceUnmount(mnt);
      await withTimeout(
        new Promise<void>((ok, fail) => fuse.mount((err) => (err ? fail(err) : ok()))),
        30_000,
        'the kernel did not answer the FUSE init within 30 s',
      );
    } catch (err) {
      await forceUnmount(mnt);
      throw new LazyFsError(
        'LAZYFS_MOUNT_FAILED',
        `could not mount a FUSE file system at ${mnt}: ${String(err)}; check that /dev/fuse exists and fusermount is installed`,
        { cause: err },
      );
    }
    trackForExit(mnt);
    let unmounted: Promise<void> | undefined;
    const unmount = () => {
      unmounted ??= (async () => {
        await new Promise<void>((done) => fuse.unmount(() => done()));
        if (!(await forceUnmount(mnt))) {
          throw new LazyFsError(
            'LAZYFS_UNMOUNT_FAILED',
            `${mnt} is still mounted; unmount it with umount -l`,
          );
        }
        live.delete(mnt);
      })();
      return unmounted;
    };
    return { mountpoint: mnt, unmount, detach: unmount };
  }
}

function nativeOptions(o: FuseMountOptions): object {
  // fuse-native has no switch for `ro` and `use_ino`; they ride along in the fsname option,
  // which it passes into the comma-separated -o list as it is.
  const extra = ['ro', ...(o.useIno === false ? [] : ['use_ino'])];
  const fsName = (o.fsName ?? 'soci-ts').replace(/[,\s]/g, '_');
  return {
    fsname: [fsName, ...extra].join(','),
    subtype: 'soci',
    attrTimeout: o.attrTimeout ?? 3600,
    entryTimeout: o.entryTimeout ?? 3600,
    kernelCache: o.kernelCache ?? true,
    allowOther: o.allowOther ?? true,
    defaultPermissions: o.defaultPermissions ?? true,
    timeout: o.opTimeoutMs ?? 300_000,
    debug: o.debug ?? false,
    mkdir: false,
  };
}

const READ_ONLY_OPS = [
  'truncate',
  'ftruncate',
  'utimens',
  'chown',
  'chmod',
  'mknod',
  'setxattr',
  'removexattr',
  'write',
  'create',
  'unlink',
  'rename',
  'link',
  'symlink',
  'mkdir',
  'rmdir',
] as const;

/** The node a path names, found one lookup per component from the root. */
function resolvePath(ops: FuseNodeOps, path: string): FuseStat | number {
  let st = ops.getattr(FUSE_ROOT_ID);
  for (const part of path.split('/')) {
    if (!part) continue;
    if (typeof st === 'number') return st;
    st = ops.lookup(st.ino, part);
  }
  return st;
}

/**
 * Adapts node ops to fuse-native's path callbacks (negative errno, `cb(bytes)` for read). The
 * file handle is the inode number.
 */
function toNativeOps(ops: FuseNodeOps): object {
  const withNode = (path: string, cb: NodeCallback, then: (st: FuseStat) => void) => {
    const st = resolvePath(ops, path);
    if (typeof st === 'number') cb(-st);
    else then(st);
  };
  const answer = <T>(cb: NodeCallback, result: T | number, map: (v: T) => unknown = (v) => v) =>
    typeof result === 'number' ? cb(-result) : cb(0, map(result));
  const native: Record<string, unknown> = {
    init: (cb: NodeCallback) => cb(0),
    getattr: (path: string, cb: NodeCallback) => withNode(path, cb, (st) => cb(0, nativeStat(st))),
    readdir: (path: string, cb: NodeCallback) =>
      withNode(path, cb, (st) => {
        const list = ops.readdir(st.ino);
        if (typeof list === 'number') return cb(-list);
        cb(
          0,
          list.map((e) => e.name),
          list.map((e) => nativeStat({ ...st, ino: e.ino, mode: e.mode })),
        );
      }),
    open: (path: string, flags: number, cb: NodeCallback) =>
      withNode(path, cb, (st) => {
        const errno = ops.open(st.ino, flags);
        return errno ? cb(-errno) : cb(0, st.ino);
      }),
    read: (_path: string, fh: number, buf: Buffer, len: number, pos: number, cb: NodeCallback) =>
      ops.read(fh, len === buf.length ? buf : buf.subarray(0, len), pos).then(
        (n) => cb(n),
        (err) => cb(-errnoOf(err)),
      ),
    release: (_path: string, _fh: number, cb: NodeCallback) => cb(0),
    readlink: (path: string, cb: NodeCallback) =>
      withNode(path, cb, (st) => answer(cb, ops.readlink(st.ino))),
    // Called by the patched _op_getxattr/_op_listxattr above with our own conventions.
    getxattr: (path: string, name: string, _pos: number, cb: NodeCallback) =>
      withNode(path, cb, (st) => answer(cb, ops.getxattr(st.ino, name))),
    listxattr: (path: string, cb: NodeCallback) =>
      withNode(path, cb, (st) => answer(cb, ops.listxattr(st.ino), (names) => [...names])),
    statfs: (_path: string, cb: NodeCallback) => cb(0, ops.statfs()),
  };
  for (const name of READ_ONLY_OPS) {
    native[name] = (...args: unknown[]) => (args[args.length - 1] as NodeCallback)(-Errno.EROFS);
  }
  return native;
}

/** fuse-native's stat object (times in ms). */
function nativeStat(st: FuseStat): object {
  return {
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    nlink: st.nlink,
    ino: st.ino,
    rdev: st.rdev,
    blocks: st.blocks,
    blksize: st.blksize,
    mtime: st.mtimeMs,
    atime: st.atimeMs,
    ctime: st.ctimeMs,
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
