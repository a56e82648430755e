import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lutimesSync,
  mkdirSync,
  openSync,
  rmSync,
  symlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { FileMetadata } from '@soci-ts/ztoc';
import { layerPath, overlayRole, parentOf, unsafePath } from './entry-path.js';
import { UnpackError } from './errors.js';
import { type Attributes, LayerTree, type PendingSpecial, type TreeNode } from './layer-tree.js';
import { rawPaxValue } from './raw-pax-value.js';
import { createSpecialFiles } from './special-files.js';
import { entryXattrs, PAX_XATTR_PREFIX, restoreXattrs, type Xattrs } from './xattrs.js';

export interface LayerWriterOptions {
  /** The layer root (real path of an existing empty directory). */
  root: string;
  opaqueXattr: string;
}

/** An entry's modification time as the tar parser read it. */
export interface EntryTime {
  seconds: number;
  nanos: number;
}

/** The regular file whose content is arriving. */
interface OpenFile {
  fd: number;
  entry: FileMetadata;
  attributes: Attributes;
  /** The mode it was created with already is its final one. */
  modeSet: boolean;
  left: number;
}

const CREATE_EXCLUSIVE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;
/** Read once: the mode a file is created with loses these bits. */
const UMASK = process.umask();

/**
 * Writes tar entries below `root` as they stream, the way `tar -x` would, without ever following
 * a symlink: every parent of an entry must be a real directory of this layer (a LayerTree lookup:
 * the root started empty, so the tree knows what is on disk), and files are created with O_EXCL
 * after whatever held their path was removed.
 *
 * Synchronous on purpose: it runs on the unpack worker thread, where blocking system calls in a
 * row (as GNU tar makes them) cost far less than a round trip through libuv's pool per call.
 *
 * Work that must wait for the whole layer is kept in the tree and done by {@link finish}: device
 * nodes and fifos (one spawn for all), xattrs (one setfattr spawn), directory modes and times
 * (last, since writing children changes a directory's mtime). A later entry that replaces a path
 * drops the work queued below it with its subtree.
 */
export class LayerWriter {
  /** Tar entries seen (including whiteouts and the root). */
  entries = 0;
  /** Bytes of regular-file content written. */
  bytes = 0;
  readonly warnings: string[] = [];
  /** xattr names set on the root itself, which a cleanup must take off again. */
  readonly rootXattrs: string[] = [];

  private readonly tree = new LayerTree();
  private pendingSpecials: Array<[string, TreeNode]> = [];
  private file: OpenFile | undefined;
  private readonly ownUid = process.geteuid?.();
  private readonly ownGid = process.getegid?.();
  /**
   * The directory the last entry went into: tars list a directory's entries together, so most
   * entries skip the walk from the root. Dropped whenever a subtree is removed.
   */
  private lastDirectory: { path: string; node: TreeNode } | undefined;

  constructor(private readonly options: LayerWriterOptions) {}

  /**
   * A new entry, in stream order; a regular file's content follows through {@link content}.
   * `pax`: the raw PAX payloads that apply to it (binary xattr values are read from them);
   * `mtime`: its modification time as numbers.
   */
  begin(entry: FileMetadata, pax: readonly Uint8Array[], mtime: EntryTime): void {
    this.entries++;
    if (this.file) throw new Error(`internal: ${this.file.entry.name} is still being written`);
    const path = layerPath(entry.name, 'tar entry');
    // The root is the snapshot directory itself: its owner and mode are not the layer's to set.
    if (path === '') return;
    try {
      this.applyAt(path, entry, pax, attributes(entry, mtime));
    } catch (err) {
      throw writeFailed(entry, err);
    }
  }

  /** The next bytes of the current regular file's content. */
  content(bytes: Uint8Array): void {
    const file = this.file;
    if (!file || bytes.length > file.left) throw new Error('internal: file content without its entry');
    try {
      let written = 0;
      while (written < bytes.length) written += writeSync(file.fd, bytes, written, bytes.length - written);
      file.left -= bytes.length;
      if (file.left === 0) this.closeFile(file);
    } catch (err) {
      throw writeFailed(file.entry, err);
    }
  }

  /** Closes a file left open by a failure (before a cleanup). */
  abandon(): void {
    if (this.file) closeSync(this.file.fd);
    this.file = undefined;
  }

  /** Finishes the queued work: special files, xattrs, directory attributes. */
  finish(workDir: string): void {
    if (this.file) throw new Error(`internal: the content of ${this.file.entry.name} never ended`);
    this.flushSpecials();
    const layerXattrs = new Map<string, Xattrs>();
    const overlayXattrs = new Map<string, Xattrs>();
    const opaque: Xattrs = new Map([[this.options.opaqueXattr, Buffer.from('y')]]);
    const directories: Array<[string, Attributes]> = [];
    for (const [path, node] of this.tree.withWork()) {
      if (node.xattrs?.size) layerXattrs.set(this.abs(path), node.xattrs);
      if (node.opaque) overlayXattrs.set(this.abs(path), opaque);
      if (node.attributes) directories.push([path, node.attributes]);
    }
    this.warnings.push(...restoreXattrs(layerXattrs, join(workDir, 'layer.xattrs'), 'lenient'));
    if (this.tree.root.opaque) this.rootXattrs.push(this.options.opaqueXattr);
    restoreXattrs(overlayXattrs, join(workDir, 'overlay.xattrs'), 'strict');
    for (const [path, a] of directories) {
      const abs = this.abs(path);
      lchownSync(abs, a.uid, a.gid);
      chmodSync(abs, a.mode); // a directory of the tree: never a symlink
      lutimesSync(abs, a.atime, a.mtime);
    }
  }

  private applyAt(path: string, entry: FileMetadata, pax: readonly Uint8Array[], a: Attributes): void {
    const role = overlayRole(path, entry.name);
    if (role.kind === 'aufs-meta') return;
    if (role.kind === 'opaque') {
      this.ensureDirectory(role.dir, entry.name).opaque = true;
      return;
    }
    if (role.kind === 'whiteout') {
      this.ensureDirectory(parentOf(role.target), entry.name);
      this.clear(role.target, false);
      // overlayfs: a 0/0 character device hides the lower file; owner as containerd gives it.
      this.addSpecial(role.target, { ...a, mode: 0, type: 'char', major: 0, minor: 0 });
      return;
    }

    const slash = path.lastIndexOf('/');
    const parent = this.ensureDirectory(slash < 0 ? '' : path.slice(0, slash), entry.name);
    const name = path.slice(slash + 1);
    const abs = this.abs(path);
    let node: TreeNode;
    switch (entry.type) {
      case 'dir': {
        const existing = this.clear(path, true, parent, name);
        node = existing ?? setChild(parent, name, { kind: 'dir', children: new Map() });
        if (!existing) mkdirSync(abs, { mode: 0o700 });
        node.attributes = a;
        break;
      }
      case 'reg':
        this.clear(path, false, parent, name);
        node = setChild(parent, name, { kind: 'file' });
        this.openRegular(abs, entry, a);
        break;
      case 'symlink': {
        this.clear(path, false, parent, name);
        symlinkSync(entry.linkname, abs);
        node = setChild(parent, name, { kind: 'symlink' });
        lchownSync(abs, a.uid, a.gid);
        lutimesSync(abs, a.atime, a.mtime);
        break;
      }
      case 'hardlink':
        this.hardlink(path, entry);
        return; // a hardlink shares its target's inode: owner, mode and xattrs are the target's
      case 'char':
      case 'block':
      case 'fifo':
        this.clear(path, false, parent, name);
        node = this.addSpecial(path, {
          ...a,
          type: entry.type,
          major: entry.devmajor,
          minor: entry.devminor,
        });
        break;
    }
    if (isEmpty(entry.xattrs)) return;
    const { xattrs, dropped, damaged } = entryXattrs(entry);
    for (const name of damaged) xattrs.set(name, rawXattr(entry, name, pax));
    for (const name of dropped) {
      this.warnings.push(`ignored xattr ${name} of ${JSON.stringify(entry.name)}: overlayfs metadata`);
    }
    if (xattrs.size) node.xattrs = new Map([...(node.xattrs ?? []), ...xattrs]);
  }

  /** `path` is a layerPath (no empty, `.` or `..` component): a plain join is exact. */
  private abs(path: string): string {
    return path ? `${this.options.root}/${path}` : this.options.root;
  }

  /**
   * Makes `dir` and its parents exist as real directories. A component that is not a directory
   * (a symlink above all) is UNSAFE_PATH: writing through it could leave the root.
   */
  private ensureDirectory(dir: string, name: string): TreeNode {
    const last = this.lastDirectory;
    if (last && last.path === dir) return last.node;
    let node = this.tree.root;
    let path = '';
    for (const part of dir ? dir.split('/') : []) {
      path = path ? `${path}/${part}` : part;
      let child = node.children!.get(part);
      if (!child) {
        mkdirSync(this.abs(path), { mode: 0o755 });
        child = { kind: 'dir', children: new Map() };
        node.children!.set(part, child);
      } else if (child.kind !== 'dir') {
        throw unsafePath('tar entry', name, `lies below "${path}", which is a ${describe(child)}`);
      }
      node = child;
    }
    this.lastDirectory = { path: dir, node };
    return node;
  }

  /**
   * Frees `path` for a new entry, as tar replaces a file with a later one of the same name.
   * An existing directory is kept (and returned) when `keepDirectory`: a directory entry over a
   * directory merges.
   */
  private clear(
    path: string,
    keepDirectory: boolean,
    parent?: TreeNode,
    name?: string,
  ): TreeNode | undefined {
    const node = parent && name !== undefined ? parent.children!.get(name) : this.tree.get(path);
    if (!node) return undefined;
    if (node.kind === 'dir' && keepDirectory) return node;
    // rm never follows symlinks: a symlink is removed, not what it points to.
    if (!node.pending) rmSync(this.abs(path), { recursive: true, force: true });
    this.tree.delete(path);
    this.lastDirectory = undefined;
    return undefined;
  }

  private addSpecial(path: string, pending: PendingSpecial): TreeNode {
    const node = this.tree.set(path, { kind: 'special', pending });
    this.pendingSpecials.push([path, node]);
    return node;
  }

  private openRegular(abs: string, entry: FileMetadata, attributes: Attributes): void {
    // Created with its final mode when the umask leaves it whole and no set-ID bit is in it
    // (chown would clear those): one fchmod fewer per file. The descriptor is writable whatever
    // the mode says.
    const modeSet = (attributes.mode & (0o7000 | UMASK)) === 0;
    // O_EXCL: never opens through a symlink, never writes into a file this entry did not create.
    const fd = openSync(abs, CREATE_EXCLUSIVE, modeSet ? attributes.mode : 0o600);
    const file: OpenFile = { fd, entry, attributes, modeSet, left: entry.uncompressedSize };
    this.file = file;
    this.bytes += entry.uncompressedSize;
    if (file.left === 0) this.closeFile(file);
  }

  /** Owner, mode and times through the descriptor, once the content is complete. */
  private closeFile(file: OpenFile): void {
    this.file = undefined;
    try {
      const a = file.attributes;
      // chown before chmod: chown clears set-user-ID and set-group-ID bits.
      if (a.uid !== this.ownUid || a.gid !== this.ownGid) fchownSync(file.fd, a.uid, a.gid);
      if (!file.modeSet) fchmodSync(file.fd, a.mode);
      futimesSync(file.fd, a.atime, a.mtime);
    } finally {
      closeSync(file.fd);
    }
  }

  private hardlink(path: string, entry: FileMetadata): void {
    const target = layerPath(entry.linkname, `hardlink target of ${JSON.stringify(entry.name)}:`);
    if (target === path) return; // a link to itself leaves the file as it is
    if (target === '') throw unsafePath('hardlink', entry.name, 'points at the layer root');
    // The target's parents must be directories of this layer, else the link could reach outside.
    let node: TreeNode | undefined = this.tree.root;
    let walked = '';
    for (const part of target.split('/')) {
      if (node.kind !== 'dir')
        throw unsafePath('hardlink', entry.name, `points through "${walked}", a ${describe(node)}`);
      walked = walked ? `${walked}/${part}` : part;
      node = node.children!.get(part);
      if (!node) {
        throw new UnpackError(
          'SNAPSHOTTER_BAD_LAYER',
          `hardlink ${JSON.stringify(entry.name)} points at ${JSON.stringify(entry.linkname)}, ` +
            'which no earlier entry of the layer created: the layer is corrupt',
        );
      }
    }
    if (node.kind === 'dir') throw unsafePath('hardlink', entry.name, 'points at a directory');
    if (node.pending) this.flushSpecials();
    this.clear(path, false);
    // link(2) does not follow a symlink target: linking to a symlink makes another symlink.
    linkSync(this.abs(target), this.abs(path));
    this.tree.set(path, { kind: node.kind });
  }

  /** Creates the queued device nodes and fifos that are still part of the tree. */
  private flushSpecials(): void {
    const live = this.pendingSpecials.filter(([path, node]) => this.tree.get(path) === node);
    this.pendingSpecials = [];
    if (!live.length) return;
    createSpecialFiles(
      live.map(([path, { pending: p }]) => ({
        path: this.abs(path),
        type: p!.type,
        major: p!.major,
        minor: p!.minor,
      })),
    );
    for (const [path, node] of live) {
      const p = node.pending!;
      node.pending = undefined;
      const abs = this.abs(path);
      lchownSync(abs, p.uid, p.gid);
      chmodSync(abs, p.mode); // just made by mknod: not a symlink
      lutimesSync(abs, p.atime, p.mtime);
    }
  }
}

function rawXattr(entry: FileMetadata, name: string, pax: readonly Uint8Array[]): Uint8Array {
  const key = `${PAX_XATTR_PREFIX}${name}`;
  const raw = rawPaxValue(pax, key, entry.xattrs[key]!);
  if (raw) return raw;
  throw new UnpackError(
    'SNAPSHOTTER_BAD_LAYER',
    `xattr ${name} of tar entry ${JSON.stringify(entry.name)} is binary and its bytes could not be read back`,
  );
}

function describe(node: TreeNode): string {
  return node.kind === 'special' ? 'device or fifo' : node.kind;
}

function writeFailed(entry: FileMetadata, err: unknown): unknown {
  if (err instanceof UnpackError) return err;
  return new UnpackError(
    'SNAPSHOTTER_WRITE_FAILED',
    `could not write tar entry ${JSON.stringify(entry.name)}: ${(err as Error).message}`,
    {
      cause: err,
    },
  );
}

function attributes(entry: FileMetadata, t: EntryTime): Attributes {
  const mtime = utimeSeconds(t.seconds, t.nanos);
  const atimeText = entry.xattrs.atime;
  const atimeRecord = atimeText === undefined ? null : /^(\d+)(?:\.(\d{1,9}))?$/.exec(atimeText);
  const atime = atimeRecord
    ? utimeSeconds(Number(atimeRecord[1]), Number((atimeRecord[2] ?? '').padEnd(9, '0')))
    : mtime;
  return { uid: entry.uid, gid: entry.gid, mode: entry.mode & 0o7777, atime, mtime };
}

function setChild(parent: TreeNode, name: string, node: TreeNode): TreeNode {
  parent.children!.set(name, node);
  return node;
}

function isEmpty(record: Record<string, string>): boolean {
  for (const _ in record) return false;
  return true;
}

/**
 * A time as Node's utimes takes it: seconds in a double. libuv keeps whole microseconds of it
 * (it drops the rest) and a double is only ~0.24 µs exact near today, so the value aims at the
 * middle of the microsecond: the file gets the tar's time truncated to the microsecond, never
 * one microsecond less. (Node has no nanosecond utimes.)
 */
function utimeSeconds(seconds: number, nanos: number): number {
  if (nanos === 0 || seconds < 0) return seconds + nanos / 1e9;
  return seconds + (Math.floor(nanos / 1000) + 0.5) / 1e6;
}
