/**
 * Our own, small view of a FUSE library, so the binding can be replaced without touching the
 * file system logic. Errors are positive errno values; 0 means success.
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

/** A directory entry as readdir reports it: the kernel takes the type from `mode`. */
export interface FuseDirEntry {
  name: string;
  ino: number;
  mode: number;
}

/**
 * Node-based operations of a read-only file system, as the FUSE protocol asks them: nodes are
 * inode numbers (1 is the root), stable across daemon restarts, and open files carry no state,
 * so a new daemon can answer requests about files the old one opened. A number result is an
 * errno.
 */
export interface FuseNodeOps {
  lookup(parent: number, name: string): FuseStat | number;
  getattr(ino: number): FuseStat | number;
  /** '.', '..' and the children, in a stable order. */
  readdir(ino: number): readonly FuseDirEntry[] | number;
  /** 0 when the node may be opened with these flags. */
  open(ino: number, flags: number): number;
  /** Fills `buffer` from `position`; resolves to the byte count, rejects with an error `errnoOf` understands. */
  read(ino: number, buffer: Uint8Array, position: number): Promise<number>;
  readlink(ino: number): string | number;
  getxattr(ino: number, name: string): Buffer | number;
  listxattr(ino: number): readonly string[] | number;
  statfs(): FuseStatfs;
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
  /**
   * Stops serving but leaves the file system mounted for a successor to take over (a daemon
   * restart); backends that cannot hand a session over unmount instead.
   */
  detach(): Promise<void>;
}

export interface FuseBackend {
  /** Mounts read-only at an existing directory; on failure nothing stays mounted. */
  mount(mountpoint: string, ops: FuseNodeOps, options: FuseMountOptions): Promise<FuseMount>;
  /**
   * Takes over a mount a previous process left at `mountpoint` (backends that keep sessions
   * across restarts); undefined when there is none to take.
   */
  attach?(mountpoint: string, ops: FuseNodeOps, options: FuseMountOptions): Promise<FuseMount | undefined>;
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
