/**
 * Our own, small view of a FUSE library, so the binding (fuse-native today) can be replaced
 * without touching the file system logic. Errors are positive errno values; 0 means success.
 */

export interface FuseStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: number;
  rdev: number;
  blocks: number;
  blksize: number;
  mtimeMs: number;
  atimeMs: number;
  ctimeMs: number;
}

export interface FuseStatfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  namemax: number;
}

export type Reply<T> = (errno: number, value?: T) => void;

/** Path-based operations of a read-only file system. Every reply must be called exactly once. */
export interface FuseOps {
  init?(reply: (errno: number) => void): void;
  getattr(path: string, reply: Reply<FuseStat>): void;
  /** Names with their stats: the kernel takes each entry's type from them (overlayfs needs it to see whiteouts). */
  readdir(path: string, reply: (errno: number, names?: string[], stats?: FuseStat[]) => void): void;
  open(path: string, flags: number, reply: Reply<number>): void;
  /** Fills `buffer` (its length is the request size); replies with the byte count or a negative errno. */
  read(
    path: string,
    fh: number,
    buffer: Buffer,
    position: number,
    reply: (bytesOrNegErrno: number) => void,
  ): void;
  release(path: string, fh: number, reply: (errno: number) => void): void;
  readlink(path: string, reply: Reply<string>): void;
  getxattr(path: string, name: string, reply: Reply<Buffer>): void;
  listxattr(path: string, reply: Reply<string[]>): void;
  statfs(path: string, reply: Reply<FuseStatfs>): void;
}

export interface FuseMountOptions {
  /** Seconds the kernel may cache attributes. A layer never changes, so long is right. */
  attrTimeout?: number;
  /** Seconds the kernel may cache name lookups (and negative ones). */
  entryTimeout?: number;
  /** Keep file pages in the kernel's page cache across opens. */
  kernelCache?: boolean;
  /** Let other users (and containers) see the mount. */
  allowOther?: boolean;
  /** Kernel checks permissions from the modes we report. */
  defaultPermissions?: boolean;
  /** Report our inode numbers (hardlinks share one). */
  useIno?: boolean;
  /** Name shown in /proc/mounts. */
  fsName?: string;
  /** Longest time one operation may take before the kernel gets ETIMEDOUT (ms). */
  opTimeoutMs?: number;
  debug?: boolean;
}

export interface FuseMount {
  readonly mountpoint: string;
  /** Unmounts (lazily if busy); resolves once the mountpoint is free. */
  unmount(): Promise<void>;
}

export interface FuseBackend {
  /** Mounts read-only at an existing directory; on failure nothing stays mounted. */
  mount(mountpoint: string, ops: FuseOps, options: FuseMountOptions): Promise<FuseMount>;
}

/** errno values used by the file system. */
export const Errno = {
  ENOENT: 2,
  EIO: 5,
  EBADF: 9,
  EACCES: 13,
  EINVAL: 22,
  EROFS: 30,
  ERANGE: 34,
  ENOSYS: 38,
  ENODATA: 61,
} as const;
