import { LazyFsError } from '../errors.js';
import type { Inode } from '../file-tree.js';
import type { RemoteLayer } from '../remote-layer.js';
import { Errno, type FuseDirEntry, type FuseNodeOps, type FuseStat, type FuseStatfs } from './backend.js';

const O_ACCMODE = 3;
const O_RDONLY = 0;
const O_TRUNC = 0o1000;
const ENOTDIR = 20;

export interface LayerOpsOptions {
  /**
   * Called for every read, with the path the file has in the layer: what a workload reads, in
   * order, is what a prefetch list should hold. Must be cheap; it runs on the read path.
   */
  onRead?: (read: FileRead) => void;
}

/** One read of a file through the mount. */
export interface FileRead {
  path: string;
  offset: number;
  length: number;
  fileSize: number;
}

/**
 * The FUSE operations of one remote layer, by inode number. Nothing depends on what was asked
 * before (no handle table): a daemon that takes a mount over answers at once.
 */
export function layerOps(layer: RemoteLayer, options: LayerOpsOptions = {}): FuseNodeOps {
  const tree = layer.tree;
  const onRead = options.onRead;
  const stats = new WeakMap<Inode, FuseStat>();
  const statOf = (inode: Inode): FuseStat => {
    let st = stats.get(inode);
    if (!st) {
      st = {
        mode: inode.mode,
        uid: inode.uid,
        gid: inode.gid,
        size: inode.size,
        nlink: inode.nlink,
        ino: inode.ino,
        rdev: inode.rdev,
        blocks: Math.ceil(inode.size / 512),
        blksize: 4096,
        mtimeMs: inode.mtimeMs,
        atimeMs: inode.mtimeMs,
        ctimeMs: inode.mtimeMs,
      };
      stats.set(inode, st);
    }
    return st;
  };
  const entries = new WeakMap<Inode, FuseDirEntry[]>();
  /** '.', '..' (borrowing the directory's own number: only its type is used) and the children. */
  const entriesOf = (dir: Inode): FuseDirEntry[] => {
    let list = entries.get(dir);
    if (!list) {
      list = [
        { name: '.', ino: dir.ino, mode: dir.mode },
        { name: '..', ino: dir.ino, mode: dir.mode },
        ...[...dir.children!].map(([name, child]) => ({ name, ino: child.ino, mode: child.mode })),
      ];
      entries.set(dir, list);
    }
    return list;
  };
  // Paths by inode, built on the first read only when someone records reads.
  let paths: Map<Inode, string> | undefined;
  const pathOf = (inode: Inode): string => {
    if (!paths) {
      paths = new Map();
      for (const [path, node] of tree.walk()) if (!paths.has(node)) paths.set(node, path);
    }
    return paths.get(inode) ?? '';
  };
  let totalBytes = 0;
  for (const [, inode] of tree.walk()) if (inode.kind === 'file') totalBytes += inode.size;
  const statfs: FuseStatfs = {
    bsize: 4096,
    frsize: 4096,
    blocks: Math.ceil(totalBytes / 4096),
    bfree: 0,
    bavail: 0,
    files: tree.inodeCount,
    ffree: 0,
    favail: 0,
    namemax: 255,
  };
  const inodeOr = (ino: number): Inode | number => tree.inodeOfIno(ino) ?? Errno.ENOENT;

  return {
    lookup(parent, name) {
      const dir = inodeOr(parent);
      if (typeof dir === 'number') return dir;
      if (!dir.children) return ENOTDIR;
      const child = dir.children.get(name);
      return child ? statOf(child) : Errno.ENOENT;
    },
    getattr(ino) {
      const inode = inodeOr(ino);
      return typeof inode === 'number' ? inode : statOf(inode);
    },
    readdir(ino) {
      const inode = inodeOr(ino);
      if (typeof inode === 'number') return inode;
      return inode.children ? entriesOf(inode) : ENOTDIR;
    },
    open(ino, flags) {
      const inode = inodeOr(ino);
      if (typeof inode === 'number') return inode;
      if ((flags & O_ACCMODE) !== O_RDONLY || flags & O_TRUNC) return Errno.EROFS;
      return 0;
    },
    async read(ino, buffer, position) {
      const inode = tree.inodeOfIno(ino);
      if (!inode) throw new LazyFsError('LAZYFS_NOT_FOUND', `no inode ${ino} in the layer`);
      if (onRead) {
        try {
          onRead({ path: pathOf(inode), offset: position, length: buffer.length, fileSize: inode.size });
        } catch {
          // An observer's failure is never the reader's: the read goes on.
        }
      }
      return layer.readInto(inode, position, buffer);
    },
    readlink(ino) {
      const inode = inodeOr(ino);
      if (typeof inode === 'number') return inode;
      return inode.kind === 'symlink' ? inode.linkTarget : Errno.EINVAL;
    },
    getxattr(ino, name) {
      const inode = inodeOr(ino);
      if (typeof inode === 'number') return inode;
      return inode.xattrs.get(name) ?? Errno.ENODATA;
    },
    listxattr(ino) {
      const inode = inodeOr(ino);
      return typeof inode === 'number' ? inode : [...inode.xattrs.keys()];
    },
    statfs: () => statfs,
  };
}
