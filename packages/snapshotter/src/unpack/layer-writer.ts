import * as fs from 'node:fs';
import { chmod, lchown, link, lutimes, mkdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type FileMetadata, parseModTime } from '@soci-ts/ztoc';
import { layerPath, overlayRole, parentOf, unsafePath } from './entry-path.js';
import { UnpackError } from './errors.js';
import { type Attributes, LayerTree, type PendingSpecial, type TreeNode } from './layer-tree.js';
import { rawPaxValue } from './raw-pax-value.js';
import { createSpecialFiles } from './special-files.js';
import type { TarReader } from './tar-reader.js';
import { entryXattrs, PAX_XATTR_PREFIX, restoreXattrs, type Xattrs } from './xattrs.js';

export interface LayerWriterOptions {
  /** The layer root (real path of an existing empty directory). */
  root: string;
  /** The uncompressed tar the entries' data offsets point into. */
  tar: TarReader;
  opaqueXattr: string;
  signal?: AbortSignal;
}

/** Contents up to this size are read in stream order and handed to a write task whole. */
const SMALL_FILE = 1 << 20;
/** Files whose content and metadata are being written at once (the fs thread pool does the work). */
const MAX_IN_FLIGHT = 16;

/**
 * Writes tar entries below `root`, in stream order, the way `tar -x` would, without ever following
 * a symlink: every parent of an entry must be a real directory of this layer (a LayerTree lookup:
 * the root started empty, so the tree knows what is on disk), and files are created with O_EXCL
 * after whatever held their path was removed. Once a file is created its content, owner, mode and
 * times are written through its descriptor by a bounded pool of tasks, so later entries do not
 * wait for them.
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
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown;

  constructor(private readonly options: LayerWriterOptions) {}

  async apply(entry: FileMetadata): Promise<void> {
    this.entries++;
    if (this.failure !== undefined) throw this.failure;
    const path = layerPath(entry.name, 'tar entry');
    // The root is the snapshot directory itself: its owner and mode are not the layer's to set.
    if (path === '') return;
    try {
      await this.applyAt(path, entry);
    } catch (err) {
      throw writeFailed(entry, err);
    }
  }

  /** Waits for the write tasks still running (before a cleanup, or at the end). */
  async settle(): Promise<void> {
    await Promise.all(this.inFlight);
  }

  /** Finishes the queued work: special files, xattrs, directory attributes. */
  async finish(workDir: string): Promise<void> {
    await this.settle();
    if (this.failure !== undefined) throw this.failure;
    await this.flushSpecials();
    const layerXattrs = new Map<string, Xattrs>();
    const overlayXattrs = new Map<string, Xattrs>();
    const opaque: Xattrs = new Map([[this.options.opaqueXattr, Buffer.from('y')]]);
    const directories: Array<[string, Attributes]> = [];
    for (const [path, node] of this.tree.walk()) {
      if (node.xattrs?.size) layerXattrs.set(this.abs(path), node.xattrs);
      if (node.opaque) overlayXattrs.set(this.abs(path), opaque);
      if (node.attributes) directories.push([path, node.attributes]);
    }
    const { signal } = this.options;
    this.warnings.push(
      ...(await restoreXattrs(layerXattrs, join(workDir, 'layer.xattrs'), 'lenient', signal)),
    );
    if (this.tree.root.opaque) this.rootXattrs.push(this.options.opaqueXattr);
    await restoreXattrs(overlayXattrs, join(workDir, 'overlay.xattrs'), 'strict', signal);
    for (const [path, a] of directories) {
      const abs = this.abs(path);
      await lchown(abs, a.uid, a.gid);
      await chmod(abs, a.mode); // a directory of the tree: never a symlink
      await lutimes(abs, a.atime, a.mtime);
    }
  }

  private async applyAt(path: string, entry: FileMetadata): Promise<void> {
    const role = overlayRole(path, entry.name);
    if (role.kind === 'aufs-meta') return;
    if (role.kind === 'opaque') {
      (await this.ensureDirectory(role.dir, entry.name)).opaque = true;
      return;
    }
    if (role.kind === 'whiteout') {
      await this.ensureDirectory(parentOf(role.target), entry.name);
      await this.clear(role.target, false);
      // overlayfs: a 0/0 character device hides the lower file; owner as containerd gives it.
      this.addSpecial(role.target, { ...attributes(entry), mode: 0, type: 'char', major: 0, minor: 0 });
      return;
    }

    await this.ensureDirectory(parentOf(path), entry.name);
    const abs = this.abs(path);
    let node: TreeNode;
    switch (entry.type) {
      case 'dir': {
        const existing = await this.clear(path, true);
        node = existing ?? this.tree.set(path, { kind: 'dir', children: new Map() });
        if (!existing) await mkdir(abs, { mode: 0o700 });
        node.attributes = attributes(entry);
        break;
      }
      case 'reg':
        await this.clear(path, false);
        node = this.tree.set(path, { kind: 'file' });
        await this.writeRegular(abs, entry);
        break;
      case 'symlink': {
        await this.clear(path, false);
        await symlink(entry.linkname, abs);
        node = this.tree.set(path, { kind: 'symlink' });
        const a = attributes(entry);
        await lchown(abs, a.uid, a.gid);
        await lutimes(abs, a.atime, a.mtime);
        break;
      }
      case 'hardlink':
        await this.hardlink(path, entry);
        return; // a hardlink shares its target's inode: owner, mode and xattrs are the target's
      case 'char':
      case 'block':
      case 'fifo':
        await this.clear(path, false);
        node = this.addSpecial(path, {
          ...attributes(entry),
          type: entry.type,
          major: entry.devmajor,
          minor: entry.devminor,
        });
        break;
    }
    const { xattrs, dropped, damaged } = entryXattrs(entry);
    for (const name of damaged) xattrs.set(name, await this.rawXattr(entry, name));
    for (const name of dropped) {
      this.warnings.push(`ignored xattr ${name} of ${JSON.stringify(entry.name)}: overlayfs metadata`);
    }
    if (xattrs.size) node.xattrs = new Map([...(node.xattrs ?? []), ...xattrs]);
  }

  private abs(path: string): string {
    return path ? join(this.options.root, path) : this.options.root;
  }

  /**
   * Makes `dir` and its parents exist as real directories. A component that is not a directory
   * (a symlink above all) is UNSAFE_PATH: writing through it could leave the root.
   */
  private async ensureDirectory(dir: string, name: string): Promise<TreeNode> {
    let node = this.tree.root;
    let path = '';
    for (const part of dir ? dir.split('/') : []) {
      path = path ? `${path}/${part}` : part;
      let child = node.children!.get(part);
      if (!child) {
        await mkdir(this.abs(path), { mode: 0o755 });
        child = { kind: 'dir', children: new Map() };
        node.children!.set(part, child);
      } else if (child.kind !== 'dir') {
        throw unsafePath('tar entry', name, `lies below "${path}", which is a ${describe(child)}`);
      }
      node = child;
    }
    return node;
  }

  /**
   * Frees `path` for a new entry, as tar replaces a file with a later one of the same name.
   * An existing directory is kept (and returned) when `keepDirectory`: a directory entry over a
   * directory merges.
   */
  private async clear(path: string, keepDirectory: boolean): Promise<TreeNode | undefined> {
    const node = this.tree.get(path);
    if (!node) return undefined;
    if (node.kind === 'dir' && keepDirectory) return node;
    // rm never follows symlinks: a symlink is removed, not what it points to.
    if (!node.pending) await rm(this.abs(path), { recursive: true, force: true });
    this.tree.delete(path);
    return undefined;
  }

  private addSpecial(path: string, pending: PendingSpecial): TreeNode {
    const node = this.tree.set(path, { kind: 'special', pending });
    this.pendingSpecials.push([path, node]);
    return node;
  }

  private async writeRegular(abs: string, entry: FileMetadata): Promise<void> {
    const size = entry.uncompressedSize;
    // Small contents are read now, in stream order, from the reader's read-ahead window.
    const content =
      size <= SMALL_FILE ? await this.options.tar.bytes(entry.uncompressedOffset, size) : undefined;
    // O_EXCL: never opens through a symlink, never writes into a file this entry did not create.
    const fd = await fdOpen(abs, 'wx', 0o600);
    this.bytes += size;
    await this.run(entry, async () => {
      try {
        if (content) await writeAll(fd, content, content.length);
        else await this.copyLarge(fd, entry);
        const a = attributes(entry);
        // chown before chmod: chown clears set-user-ID and set-group-ID bits.
        if (a.uid !== process.geteuid?.() || a.gid !== process.getegid?.()) await fdChown(fd, a.uid, a.gid);
        await fdChmod(fd, a.mode);
        await fdUtimes(fd, a.atime, a.mtime);
      } finally {
        await fdClose(fd);
      }
    });
  }

  private async copyLarge(fd: number, entry: FileMetadata): Promise<void> {
    const buffer = Buffer.allocUnsafe(SMALL_FILE);
    let position = entry.uncompressedOffset;
    let left = entry.uncompressedSize;
    while (left > 0) {
      const n = await this.options.tar.readInto(buffer, Math.min(left, buffer.length), position);
      await writeAll(fd, buffer, n);
      position += n;
      left -= n;
    }
  }

  /** Runs `task` in the pool; waits while the pool is full; rethrows the first failure of any task. */
  private async run(entry: FileMetadata, task: () => Promise<void>): Promise<void> {
    const running: Promise<void> = task()
      .catch((err: unknown) => {
        this.failure ??= writeFailed(entry, err);
      })
      .finally(() => this.inFlight.delete(running));
    this.inFlight.add(running);
    while (this.inFlight.size >= MAX_IN_FLIGHT) await Promise.race(this.inFlight);
    if (this.failure !== undefined) throw this.failure;
  }

  private async hardlink(path: string, entry: FileMetadata): Promise<void> {
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
          'BAD_LAYER',
          `hardlink ${JSON.stringify(entry.name)} points at ${JSON.stringify(entry.linkname)}, ` +
            'which no earlier entry of the layer created: the layer is corrupt',
        );
      }
    }
    if (node.kind === 'dir') throw unsafePath('hardlink', entry.name, 'points at a directory');
    if (node.pending) await this.flushSpecials();
    await this.clear(path, false);
    // link(2) does not follow a symlink target: linking to a symlink makes another symlink.
    await link(this.abs(target), this.abs(path));
    this.tree.set(path, { kind: node.kind });
  }

  /** Creates the queued device nodes and fifos that are still part of the tree. */
  private async flushSpecials(): Promise<void> {
    const live = this.pendingSpecials.filter(([path, node]) => this.tree.get(path) === node);
    this.pendingSpecials = [];
    if (!live.length) return;
    await createSpecialFiles(
      live.map(([path, { pending: p }]) => ({
        path: this.abs(path),
        type: p!.type,
        major: p!.major,
        minor: p!.minor,
      })),
      this.options.signal,
    );
    for (const [path, node] of live) {
      const p = node.pending!;
      node.pending = undefined;
      const abs = this.abs(path);
      await lchown(abs, p.uid, p.gid);
      await chmod(abs, p.mode); // just made by mknod: not a symlink
      await lutimes(abs, p.atime, p.mtime);
    }
  }

  private async rawXattr(entry: FileMetadata, name: string): Promise<Uint8Array> {
    const key = `${PAX_XATTR_PREFIX}${name}`;
    const raw = await rawPaxValue(
      this.options.tar.file,
      entry.uncompressedOffset - 512,
      key,
      entry.xattrs[key]!,
    );
    if (raw) return raw;
    throw new UnpackError(
      'BAD_LAYER',
      `xattr ${name} of tar entry ${JSON.stringify(entry.name)} is binary and its bytes could not be read back`,
    );
  }
}

function describe(node: TreeNode): string {
  return node.kind === 'special' ? 'device or fifo' : node.kind;
}

function writeFailed(entry: FileMetadata, err: unknown): unknown {
  if (err instanceof UnpackError) return err;
  return new UnpackError(
    'WRITE_FAILED',
    `could not write tar entry ${JSON.stringify(entry.name)}: ${(err as Error).message}`,
    {
      cause: err,
    },
  );
}

// The callback API on plain descriptors: FileHandle's promises cost several times more per call,
// which shows when a layer holds tens of thousands of small files.
const fdOpen = promisify(fs.open);
const fdWrite = promisify(fs.write);
const fdChown = promisify(fs.fchown);
const fdChmod = promisify(fs.fchmod);
const fdUtimes = promisify(fs.futimes);
const fdClose = promisify(fs.close);

async function writeAll(fd: number, buffer: Buffer, length: number): Promise<void> {
  let written = 0;
  while (written < length)
    written += (await fdWrite(fd, buffer, written, length - written, null)).bytesWritten;
}

function attributes(entry: FileMetadata): Attributes {
  const t = parseModTime(entry.modTime);
  const mtime = t ? utimeSeconds(t.seconds, t.nanos) : 0;
  const atimeRecord = /^(\d+)(?:\.(\d{1,9}))?$/.exec(entry.xattrs.atime ?? '');
  const atime = atimeRecord
    ? utimeSeconds(Number(atimeRecord[1]), Number((atimeRecord[2] ?? '').padEnd(9, '0')))
    : mtime;
  return { uid: entry.uid, gid: entry.gid, mode: entry.mode & 0o7777, atime, mtime };
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
