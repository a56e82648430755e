import { errnoOf } from '../errors.js';
import type { Inode } from '../file-tree.js';
import type { RemoteLayer } from '../remote-layer.js';
import { Errno, type FuseOps, type FuseStat, type FuseStatfs } from './backend.js';

const O_ACCMODE = 3;
const O_RDONLY = 0;
const O_TRUNC = 0o1000;

/**
 * The FUSE operations of one remote layer. Lookups go through the tree's path index; open
 * files are a small handle table so a read costs one array access before the span copy.
 */
export interface LayerOpsOptions {
  /**
   * Called for every read, with the path the reader used: what a workload reads, in order, is
   * what a prefetch list should hold. Must be cheap; it runs on the read path.
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

export function layerOps(layer: RemoteLayer, options: LayerOpsOptions = {}): FuseOps {
  const tree = layer.tree;
  const onRead = options.onRead;
  const stats = new WeakMap<Inode, FuseStat>();
  const handles: (Inode | undefined)[] = [];
  const freeHandles: number[] = [];
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
  const dirStats = new WeakMap<Inode, FuseStat[]>();
  /** Stats in `names` order ('.', '..', children); '..' borrows the directory's own (only its type is used). */
  const entryStatsOf = (dir: Inode): FuseStat[] => {
    let list = dirStats.get(dir);
    if (!list) {
      const own = statOf(dir);
      list = [own, own, ...[...dir.children!.values()].map(statOf)];
      dirStats.set(dir, list);
    }
    return list;
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

  return {
    getattr(path, reply) {
      const inode = tree.lookup(path);
      if (inode) reply(0, statOf(inode));
      else reply(Errno.ENOENT);
    },
    readdir(path, reply) {
      const inode = tree.lookup(path);
      if (!inode) reply(Errno.ENOENT);
      else if (!inode.names || !inode.children) reply(20 /* ENOTDIR */);
      else reply(0, inode.names, entryStatsOf(inode));
    },
    open(path, flags, reply) {
      const inode = tree.lookup(path);
      if (!inode) return reply(Errno.ENOENT);
      if ((flags & O_ACCMODE) !== O_RDONLY || flags & O_TRUNC) return reply(Errno.EROFS);
      const fh = freeHandles.pop() ?? handles.length;
      handles[fh] = inode;
      reply(0, fh);
    },
    read(path, fh, buffer, position, reply) {
      const inode = handles[fh];
      if (!inode) return reply(-Errno.EBADF);
      if (onRead) {
        try {
          onRead({ path, offset: position, length: buffer.length, fileSize: inode.size });
        } catch {
          // An observer's failure is never the reader's: the read goes on.
        }
      }
      layer.readInto(inode, position, buffer).then(reply, (err) => reply(-errnoOf(err)));
    },
    release(_path, fh, reply) {
      if (handles[fh]) {
        handles[fh] = undefined;
        freeHandles.push(fh);
      }
      reply(0);
    },
    readlink(path, reply) {
      const inode = tree.lookup(path);
      if (!inode) reply(Errno.ENOENT);
      else if (inode.kind !== 'symlink') reply(Errno.EINVAL);
      else reply(0, inode.linkTarget);
    },
    getxattr(path, name, reply) {
      const inode = tree.lookup(path);
      if (!inode) return reply(Errno.ENOENT);
      const value = inode.xattrs.get(name);
      if (value) reply(0, value);
      else reply(Errno.ENODATA);
    },
    listxattr(path, reply) {
      const inode = tree.lookup(path);
      if (!inode) reply(Errno.ENOENT);
      else reply(0, [...inode.xattrs.keys()]);
    },
    statfs(_path, reply) {
      reply(0, statfs);
    },
  };
}
