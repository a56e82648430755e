import type { FileMetadata } from '@soci-ts/ztoc';

/** What an inode is, as `stat` would tell. */
export type InodeKind = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';

const TYPE_BITS: Record<InodeKind, number> = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
};

/** One inode of the layer. Hardlinked names share one object. */
export interface Inode {
  readonly ino: number;
  kind: InodeKind;
  /** Full st_mode: type bits | permission, setuid/setgid/sticky bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of file data (regular files), target length (symlinks), 4096 (dirs). */
  size: number;
  mtimeMs: number;
  nlink: number;
  rdev: number;
  /** Symlink target. */
  linkTarget: string;
  /** Where the file's data starts in the uncompressed tar stream. */
  dataOffset: number;
  xattrs: Map<string, Buffer>;
  /** Directory entries by name (directories only). */
  children: Map<string, Inode> | undefined;
  /** Cached readdir answer, rebuilt when `children` changes during construction. */
  names: string[] | undefined;
}

/** Where overlayfs looks for the opaque marker of a directory. */
export type OpaqueXattr = 'trusted.overlay.opaque' | 'user.overlay.opaque';

export interface FileTreeOptions {
  /** Xattr that marks a directory opaque (`.wh..wh..opq`). Default `trusted.overlay.opaque`. */
  opaqueXattr?: OpaqueXattr;
}

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
const IMPLICIT_DIR_MODE = TYPE_BITS.dir | 0o755;

/**
 * The file tree of one layer, built from its zTOC entries the way `tar -x` followed by
 * containerd's overlay conversion would lay it out: later entries replace earlier ones with
 * the same path, missing parents are created, hardlinks share an inode, whiteouts become
 * 0/0 character devices and opaque markers become an xattr of their directory.
 */
export class FileTree {
  readonly root: Inode;
  private readonly byTocIndex: (Inode | undefined)[];
  /** Inodes by number: FUSE node ids are inode numbers, the same for every build of one zTOC. */
  private readonly byIno: Inode[] = [];
  private nextIno = 1;
  private readonly opaqueXattr: OpaqueXattr;

  constructor(entries: readonly FileMetadata[], options: FileTreeOptions = {}) {
    this.opaqueXattr = options.opaqueXattr ?? 'trusted.overlay.opaque';
    this.root = this.newInode('dir', IMPLICIT_DIR_MODE);
    this.byTocIndex = new Array(entries.length);
    entries.forEach((entry, index) => {
      this.byTocIndex[index] = this.add(entry);
    });
    this.finish();
  }

  /**
   * Inode at an absolute path (`/`, `/etc/passwd`), as FUSE passes them: a walk down from the
   * root, one map lookup per component. (A map of every full path would make building the tree
   * quadratic in path depth: a deep chain stores each prefix again.)
   */
  lookup(path: string): Inode | undefined {
    let inode: Inode | undefined = this.root;
    let start = 1;
    while (inode && start < path.length) {
      let end = path.indexOf('/', start);
      if (end === -1) end = path.length;
      if (end > start) inode = inode.children?.get(path.slice(start, end));
      start = end + 1;
    }
    return inode;
  }

  /** Inode a zTOC entry ended up as (undefined for whiteout markers and skipped entries). */
  inodeOfTocIndex(index: number): Inode | undefined {
    return this.byTocIndex[index];
  }

  /** Inode by number (1 is the root); numbers are given in zTOC order, so a restart finds the same. */
  inodeOfIno(ino: number): Inode | undefined {
    return this.byIno[ino];
  }

  /** Number of distinct inodes. */
  get inodeCount(): number {
    return this.nextIno - 1;
  }

  /** Every path of the tree with its inode, parents before children (an explicit stack: no depth limit). */
  *walk(): Generator<[string, Inode]> {
    const stack: [string, Inode][] = [['/', this.root]];
    for (let item = stack.pop(); item; item = stack.pop()) {
      yield item;
      const [path, inode] = item;
      if (!inode.children) continue;
      const prefix = path === '/' ? '' : path;
      for (const [name, child] of inode.children) stack.push([`${prefix}/${name}`, child]);
    }
  }

  private newInode(kind: InodeKind, mode: number): Inode {
    const inode: Inode = {
      ino: this.nextIno++,
      kind,
      mode,
      uid: 0,
      gid: 0,
      size: kind === 'dir' ? 4096 : 0,
      mtimeMs: 0,
      nlink: 1,
      rdev: 0,
      linkTarget: '',
      dataOffset: 0,
      xattrs: new Map(),
      children: kind === 'dir' ? new Map() : undefined,
      names: undefined,
    };
    this.byIno[inode.ino] = inode;
    return inode;
  }

  private add(entry: FileMetadata): Inode | undefined {
    const parts = splitPath(entry.name);
    if (parts === undefined) return undefined; // hostile path (`..`): never placed outside the root
    if (parts.length === 0) {
      if (entry.type === 'dir') applyMetadata(this.root, entry);
      return entry.type === 'dir' ? this.root : undefined;
    }
    const baseName = parts[parts.length - 1]!;
    const parent = this.ensureDir(parts, parts.length - 1);
    if (baseName === OPAQUE_MARKER) {
      parent.xattrs.set(this.opaqueXattr, Buffer.from('y'));
      return undefined;
    }
    if (baseName.startsWith(WHITEOUT_PREFIX)) {
      const hidden = baseName.slice(WHITEOUT_PREFIX.length);
      // Other `.wh..wh.` names are overlay/aufs metadata, not whiteouts of a real name.
      if (hidden.startsWith(WHITEOUT_PREFIX) || hidden === '') return undefined;
      const whiteout = this.newInode('char', TYPE_BITS.char);
      whiteout.uid = entry.uid;
      whiteout.gid = entry.gid;
      whiteout.mtimeMs = parseMtime(entry.modTime);
      this.link(parent, hidden, whiteout);
      return undefined;
    }
    if (entry.type === 'hardlink') {
      const targetParts = splitPath(entry.linkname);
      const target = targetParts && this.find(targetParts);
      // tar refuses a link to a missing file or to a directory; so do we (the entry is left out).
      if (!target || target.kind === 'dir') return undefined;
      this.link(parent, baseName, target);
      target.nlink++;
      return target;
    }
    const existing = parent.children!.get(baseName);
    if (entry.type === 'dir' && existing?.kind === 'dir') {
      // A repeated directory keeps its contents; only its metadata changes (as with tar -x).
      applyMetadata(existing, entry);
      return existing;
    }
    const inode = this.newInode(kindOf(entry), 0);
    applyMetadata(inode, entry);
    this.link(parent, baseName, inode);
    return inode;
  }

  /** Puts `inode` at `parent/name`, replacing whatever was there. */
  private link(parent: Inode, name: string, inode: Inode): void {
    const previous = parent.children!.get(name);
    if (previous) this.detach(previous);
    parent.children!.set(name, inode);
  }

  /**
   * Takes a replaced inode and everything below it out of the link counts (an explicit stack:
   * 20,000 nested directories must not overflow the call stack). Each inode is detached at most
   * once after it was linked, so replacing costs O(n) over a whole build.
   */
  private detach(inode: Inode): void {
    const stack = [inode];
    for (let node = stack.pop(); node; node = stack.pop()) {
      node.nlink--;
      if (node.children) for (const child of node.children.values()) stack.push(child);
    }
  }

  /** The inode at `parts` below the root, if any. */
  private find(parts: readonly string[]): Inode | undefined {
    let inode: Inode | undefined = this.root;
    for (const name of parts) inode = inode?.children?.get(name);
    return inode;
  }

  /** The directory at the first `count` parts, created (with implicit parents) where missing. */
  private ensureDir(parts: readonly string[], count: number): Inode {
    let dir = this.root;
    for (let i = 0; i < count; i++) {
      const name = parts[i]!;
      let child = dir.children!.get(name);
      if (!child || child.kind !== 'dir') {
        child = this.newInode('dir', IMPLICIT_DIR_MODE);
        this.link(dir, name, child);
      }
      dir = child;
    }
    return dir;
  }

  private finish(): void {
    const stack = [this.root];
    for (let inode = stack.pop(); inode; inode = stack.pop()) {
      if (!inode.children) continue;
      for (const child of inode.children.values()) if (child.children) stack.push(child);
      let subdirs = 0;
      for (const child of inode.children.values()) if (child.kind === 'dir') subdirs++;
      inode.nlink = 2 + subdirs;
      inode.names = ['.', '..', ...inode.children.keys()];
    }
  }
}

function kindOf(entry: FileMetadata): InodeKind {
  switch (entry.type) {
    case 'dir':
      return 'dir';
    case 'symlink':
      return 'symlink';
    case 'char':
      return 'char';
    case 'block':
      return 'block';
    case 'fifo':
      return 'fifo';
    default:
      return 'file';
  }
}

function applyMetadata(inode: Inode, entry: FileMetadata): void {
  inode.mode = TYPE_BITS[inode.kind] | (entry.mode & 0o7777);
  inode.uid = entry.uid;
  inode.gid = entry.gid;
  inode.mtimeMs = parseMtime(entry.modTime);
  inode.xattrs = xattrsOf(entry.xattrs);
  if (inode.kind === 'file') {
    inode.size = entry.uncompressedSize;
    inode.dataOffset = entry.uncompressedOffset;
  } else if (inode.kind === 'symlink') {
    inode.linkTarget = entry.linkname;
    inode.size = Buffer.byteLength(entry.linkname);
  } else if (inode.kind === 'char' || inode.kind === 'block') {
    inode.rdev = makedev(entry.devmajor, entry.devminor);
  }
}

const SCHILY_XATTR = 'SCHILY.xattr.';
const LIBARCHIVE_XATTR = 'LIBARCHIVE.xattr.';

/** File xattrs from the entry's PAX records (GNU/star `SCHILY.xattr.*`, libarchive's base64 form). */
function xattrsOf(records: Record<string, string>): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [key, value] of Object.entries(records)) {
    if (key.startsWith(SCHILY_XATTR)) {
      out.set(key.slice(SCHILY_XATTR.length), Buffer.from(value, 'utf8'));
    } else if (key.startsWith(LIBARCHIVE_XATTR)) {
      out.set(decodeURIComponent(key.slice(LIBARCHIVE_XATTR.length)), Buffer.from(value, 'base64'));
    }
  }
  return out;
}

/** Linux `makedev` for the device numbers a tar header can hold. */
function makedev(major: number, minor: number): number {
  return (((major & 0xfff) << 8) | (minor & 0xff) | ((minor & 0xfff00) << 12)) >>> 0;
}

function parseMtime(text: string): number {
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : 0;
}

/**
 * Tar path -> components, relative to the root. `./`, leading and trailing slashes and `.`
 * components are dropped; a path that climbs out with `..` gives undefined.
 */
export function splitPath(name: string): string[] | undefined {
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return undefined;
    parts.push(part);
  }
  return parts;
}
