import type { FileHandle } from 'node:fs/promises';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type FileMetadata, parseModTime } from '@soci-ts/ztoc';
import { layerPath, overlayRole, parentOf, unsafePath } from './entry-path.js';
import { UnpackError } from './errors.js';
import { rawPaxValue } from './raw-pax-value.js';
import { createSpecialFiles } from './special-files.js';
import { entryXattrs, PAX_XATTR_PREFIX, restoreXattrs, type Xattrs } from './xattrs.js';

export interface LayerWriterOptions {
  /** The layer root (real path of an existing directory). */
  root: string;
  /** The uncompressed tar the entries' data offsets point into. */
  tar: FileHandle;
  opaqueXattr: string;
  signal?: AbortSignal;
}

/** Owner, mode and times of a file, applied after its content. */
interface Attributes {
  uid: number;
  gid: number;
  mode: number;
  atime: number;
  mtime: number;
}

interface PendingNode extends Attributes {
  type: 'char' | 'block' | 'fifo';
  major: number;
  minor: number;
}

const COPY_BUFFER = 1 << 20;

/**
 * Writes tar entries below `root`, in stream order, the way `tar -x` would, without ever following
 * a symlink: every parent of an entry must be a real directory made by this layer (lstat), and
 * files are created with O_EXCL after whatever held their path was removed.
 *
 * Work that must wait for the whole layer is queued and done by {@link finish}: device nodes and
 * fifos (one spawn for all), xattrs (one setfattr spawn), directory modes and times (last, since
 * writing children changes a directory's mtime). Anything queued under a path that a later entry
 * replaces is forgotten with it.
 */
export class LayerWriter {
  /** Tar entries seen (including whiteouts and the root). */
  entries = 0;
  /** Bytes of regular-file content written. */
  bytes = 0;
  readonly warnings: string[] = [];
  /** xattr names set on the root itself, which a cleanup must take off again. */
  readonly rootXattrs: string[] = [];

  private readonly dirs = new Set<string>(['']);
  private readonly nodes = new Map<string, PendingNode>();
  private readonly dirAttributes = new Map<string, Attributes>();
  private readonly layerXattrs = new Map<string, Xattrs>();
  private readonly overlayXattrs = new Map<string, Xattrs>();
  private readonly buffer = Buffer.allocUnsafe(COPY_BUFFER);

  constructor(private readonly options: LayerWriterOptions) {}

  async apply(entry: FileMetadata): Promise<void> {
    this.entries++;
    const path = layerPath(entry.name, 'tar entry');
    // The root is the snapshot directory itself: its owner and mode are not the layer's to set.
    if (path === '') return;
    try {
      await this.applyAt(path, entry);
    } catch (err) {
      if (err instanceof UnpackError) throw err;
      throw new UnpackError(
        'WRITE_FAILED',
        `could not write tar entry ${JSON.stringify(entry.name)}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  private async applyAt(path: string, entry: FileMetadata): Promise<void> {
    const role = overlayRole(path, entry.name);
    if (role.kind === 'aufs-meta') return;
    if (role.kind === 'opaque') {
      await this.ensureDirectory(role.dir, entry.name);
      addXattr(this.overlayXattrs, role.dir, this.options.opaqueXattr, Buffer.from('y'));
      return;
    }
    if (role.kind === 'whiteout') {
      await this.ensureDirectory(parentOf(role.target), entry.name);
      await this.clear(role.target, false);
      // overlayfs: a 0/0 character device hides the lower file; owner as containerd gives it.
      this.nodes.set(role.target, { ...attributes(entry), mode: 0, type: 'char', major: 0, minor: 0 });
      return;
    }

    await this.ensureDirectory(parentOf(path), entry.name);
    const abs = this.abs(path);
    switch (entry.type) {
      case 'dir':
        if (!(await this.clear(path, true))) {
          await mkdir(abs, { mode: 0o700 });
          this.dirs.add(path);
        }
        this.dirAttributes.set(path, attributes(entry));
        break;
      case 'reg':
        await this.clear(path, false);
        await this.writeRegular(abs, entry);
        break;
      case 'symlink': {
        await this.clear(path, false);
        await symlink(entry.linkname, abs);
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
        this.nodes.set(path, {
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
    for (const [name, value] of xattrs) addXattr(this.layerXattrs, path, name, value);
  }

  /** Finishes the queued work; returns warnings (xattrs the file system refused). */
  async finish(workDir: string): Promise<void> {
    await this.flushNodes();
    const { signal } = this.options;
    const layer = absoluteKeys(this.layerXattrs, (p) => this.abs(p));
    this.warnings.push(...(await restoreXattrs(layer, join(workDir, 'layer.xattrs'), 'lenient', signal)));
    const overlay = absoluteKeys(this.overlayXattrs, (p) => this.abs(p));
    const root = this.overlayXattrs.get('');
    if (root) this.rootXattrs.push(...root.keys());
    await restoreXattrs(overlay, join(workDir, 'overlay.xattrs'), 'strict', signal);
    for (const [path, a] of this.dirAttributes) {
      const abs = this.abs(path);
      if (!(await lstat(abs)).isDirectory()) throw new Error(`${path} is no longer a directory`);
      await lchown(abs, a.uid, a.gid);
      await chmod(abs, a.mode);
      await lutimes(abs, a.atime, a.mtime);
    }
  }

  private abs(path: string): string {
    return path ? join(this.options.root, path) : this.options.root;
  }

  /**
   * Makes `dir` and its parents exist as real directories. An existing component that is not a
   * directory (a symlink above all) is UNSAFE_PATH: writing through it could leave the root.
   */
  private async ensureDirectory(dir: string, name: string): Promise<void> {
    if (this.dirs.has(dir)) return;
    let prefix = '';
    for (const part of dir.split('/')) {
      prefix = prefix ? `${prefix}/${part}` : part;
      if (this.dirs.has(prefix)) continue;
      if (this.nodes.has(prefix))
        throw unsafePath('tar entry', name, `lies below "${prefix}", which is a device or fifo`);
      const kind = await fileKind(this.abs(prefix));
      if (kind === undefined) await mkdir(this.abs(prefix), { mode: 0o755 });
      else if (kind !== 'directory')
        throw unsafePath('tar entry', name, `lies below "${prefix}", which is a ${kind}`);
      this.dirs.add(prefix);
    }
  }

  /**
   * Frees `path` for a new entry, as tar replaces a file with a later one of the same name.
   * An existing directory is kept (and true returned) when `keepDirectory`: a directory entry
   * over a directory merges.
   */
  private async clear(path: string, keepDirectory: boolean): Promise<boolean> {
    if (this.nodes.has(path)) {
      this.forget(path);
      return false;
    }
    if (keepDirectory && this.dirs.has(path)) return true;
    const kind = await fileKind(this.abs(path));
    if (kind === undefined) return false;
    if (kind === 'directory' && keepDirectory) {
      this.dirs.add(path);
      return true;
    }
    // rm never follows symlinks: a symlink is removed, not what it points to.
    await rm(this.abs(path), { recursive: true, force: true });
    this.forget(path);
    return false;
  }

  /** Drops everything known or queued at `path` and below it. */
  private forget(path: string): void {
    const below = `${path}/`;
    const gone = (p: string) => p === path || p.startsWith(below);
    for (const p of this.dirs) if (gone(p)) this.dirs.delete(p);
    for (const map of [this.nodes, this.dirAttributes, this.layerXattrs, this.overlayXattrs]) {
      for (const p of map.keys()) if (gone(p)) map.delete(p);
    }
  }

  private async writeRegular(abs: string, entry: FileMetadata): Promise<void> {
    const a = attributes(entry);
    // O_EXCL: never opens through a symlink, never writes into a file this entry did not create.
    const file = await open(abs, 'wx', 0o600);
    try {
      let position = entry.uncompressedOffset;
      let left = entry.uncompressedSize;
      while (left > 0) {
        const want = Math.min(left, this.buffer.length);
        const { bytesRead } = await this.options.tar.read(this.buffer, 0, want, position);
        if (bytesRead === 0) throw new Error(`tar spool ended inside the data of ${entry.name}`);
        let written = 0;
        while (written < bytesRead) {
          written += (await file.write(this.buffer, written, bytesRead - written)).bytesWritten;
        }
        position += bytesRead;
        left -= bytesRead;
      }
      // chown before chmod: chown clears set-user-ID and set-group-ID bits.
      await file.chown(a.uid, a.gid);
      await file.chmod(a.mode);
      await file.utimes(a.atime, a.mtime);
    } finally {
      await file.close();
    }
    this.bytes += entry.uncompressedSize;
  }

  private async hardlink(path: string, entry: FileMetadata): Promise<void> {
    const target = layerPath(entry.linkname, `hardlink target of ${JSON.stringify(entry.name)}:`);
    if (target === path) return; // a link to itself leaves the file as it is
    if (target === '') throw unsafePath('hardlink', entry.name, 'points at the layer root');
    const missing = () =>
      new UnpackError(
        'BAD_LAYER',
        `hardlink ${JSON.stringify(entry.name)} points at ${JSON.stringify(entry.linkname)}, ` +
          'which no earlier entry of the layer created: the layer is corrupt',
      );
    // The target's parents must be real directories too, else the link could reach outside.
    let prefix = '';
    for (const part of parentOf(target).split('/').filter(Boolean)) {
      prefix = prefix ? `${prefix}/${part}` : part;
      if (this.dirs.has(prefix)) continue;
      const kind = await fileKind(this.abs(prefix));
      if (kind === undefined) throw missing();
      if (kind !== 'directory')
        throw unsafePath('hardlink', entry.name, `points through "${prefix}", a ${kind}`);
      this.dirs.add(prefix);
    }
    if (this.nodes.has(target)) await this.flushNodes();
    const kind = await fileKind(this.abs(target));
    if (kind === undefined) throw missing();
    if (kind === 'directory') throw unsafePath('hardlink', entry.name, 'points at a directory');
    await this.clear(path, false);
    // link(2) does not follow a symlink target: linking to a symlink makes another symlink.
    await link(this.abs(target), this.abs(path));
  }

  private async rawXattr(entry: FileMetadata, name: string): Promise<Uint8Array> {
    const key = `${PAX_XATTR_PREFIX}${name}`;
    const raw = await rawPaxValue(this.options.tar, entry.uncompressedOffset - 512, key, entry.xattrs[key]!);
    if (raw) return raw;
    throw new UnpackError(
      'BAD_LAYER',
      `xattr ${name} of tar entry ${JSON.stringify(entry.name)} is binary and its bytes could not be read back`,
    );
  }

  private async flushNodes(): Promise<void> {
    if (this.nodes.size === 0) return;
    const nodes = [...this.nodes];
    this.nodes.clear();
    await createSpecialFiles(
      nodes.map(([path, n]) => ({ path: this.abs(path), type: n.type, major: n.major, minor: n.minor })),
      this.options.signal,
    );
    for (const [path, n] of nodes) {
      const abs = this.abs(path);
      await lchown(abs, n.uid, n.gid);
      await chmod(abs, n.mode);
      await lutimes(abs, n.atime, n.mtime);
    }
  }
}

function addXattr(map: Map<string, Xattrs>, path: string, name: string, value: Uint8Array): void {
  const xattrs = map.get(path) ?? new Map<string, Uint8Array>();
  xattrs.set(name, value);
  map.set(path, xattrs);
}

function absoluteKeys<T>(map: ReadonlyMap<string, T>, abs: (path: string) => string): Map<string, T> {
  return new Map([...map].map(([path, value]) => [abs(path), value]));
}

type FileKind = 'directory' | 'symlink' | 'file' | 'special file';

/** What is at `abs` without following a symlink; undefined when nothing is. */
async function fileKind(abs: string): Promise<FileKind | undefined> {
  try {
    const st = await lstat(abs);
    if (st.isDirectory()) return 'directory';
    if (st.isSymbolicLink()) return 'symlink';
    return st.isFile() ? 'file' : 'special file';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
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
