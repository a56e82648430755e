import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { LazyFsError } from './errors.js';

export interface DiskSpanCacheOptions {
  /** Directory holding one sub-directory per layer, one file per decoded span. */
  root: string;
  /**
   * Total bytes of span files kept; least recently used spans are deleted beyond it. Default
   * DEFAULT_SPAN_CACHE_BYTES (10 GiB).
   */
  budgetBytes?: number;
  /**
   * Bytes of spans handed to `put` whose files are not written yet. Beyond it `put` skips the
   * write (`whenFull: 'skip'`, a reader's span: it stays in memory only) or waits for room
   * (`whenFull: 'wait'`, prefetch and background work). Default 256 MiB.
   */
  maxPendingBytes?: number;
  /**
   * A span file failed its check (checksum, length, header) and was deleted; its span is fetched
   * again. Called once per bad file.
   */
  onCorrupt?: (entry: CorruptEntry) => void;
}

export interface CorruptEntry {
  layer: string;
  /** The span's key (see {@link spanCacheKey}). */
  key: string;
  file: string;
  reason: string;
}

/**
 * What names a decoded span exactly: the tar bytes it decodes to and the digest of the
 * compressed bytes it came from. Two zTOCs of one layer with other span sizes or checkpoint
 * places name different spans, and share an entry only where their spans are the same.
 */
export function spanCacheKey(uncompressedStart: number, uncompressedEnd: number, digest: string): string {
  const hex = /^sha256:([a-f0-9]{64})$/.exec(digest)?.[1];
  if (!hex) throw new LazyFsError('LAZYFS_BAD_ZTOC', `span digest "${digest}" is not sha256:<64 hex>`);
  return `${uncompressedStart}-${uncompressedEnd}-${hex}`;
}

const SPAN_FILE = /^\d+-\d+-[a-f0-9]{64}$/;
/**
 * Span file = MAGIC, CRC-32 of the body (little endian), body (the decoded span). The span was
 * proven against its zTOC sha256 when it was fetched; the CRC guards the file against what disks
 * and file systems do to it afterwards (it catches every burst of up to 32 flipped bits and all but
 * 2^-32 of random damage) at a quarter of sha256's cost per read (bench/lazy-read: a sha256 check
 * made reads from this cache 20-30% slower, CRC-32 keeps them within a few percent).
 */
const MAGIC = Buffer.from('soci-ts-span-v2\n');
const HEADER_BYTES = MAGIC.byteLength + 4;

interface Entry {
  /** File size: header + body. */
  size: number;
}

/**
 * Decoded spans on local disk, shared by any number of layers, bounded by a byte budget with
 * least-recently-used eviction. Every file carries a CRC-32 of its span, computed when the span
 * had been verified against its zTOC digest and decoded; every read checks it, and a file that
 * fails is deleted and reported, never served. Files are written to a
 * temporary name, synced and renamed, so a crash leaves either the whole entry or none (and a
 * torn file fails its checksum). The index is rebuilt from the directory on open, oldest write
 * first (uses within one process refine the order; they are not written back, to keep reads at
 * one open + one read), and stray temporary files are removed.
 */
/** The span cache's default byte budget on disk, for the library and the daemon alike. */
export const DEFAULT_SPAN_CACHE_BYTES = 10 * 1024 ** 3;

export class DiskSpanCache {
  private readonly index = new Map<string, Entry>();
  private total = 0;
  private pending = 0;
  private readonly maxPendingBytes: number;
  private writableWaiters: (() => void)[] = [];
  private writeDoneWaiters: (() => void)[] = [];

  private constructor(
    readonly root: string,
    readonly budgetBytes: number,
    private readonly options: DiskSpanCacheOptions,
  ) {
    this.maxPendingBytes = options.maxPendingBytes ?? 256 * 1024 * 1024;
  }

  static async open(options: DiskSpanCacheOptions): Promise<DiskSpanCache> {
    const budgetBytes = options.budgetBytes ?? DEFAULT_SPAN_CACHE_BYTES;
    if (!(budgetBytes >= 0)) {
      throw new LazyFsError('LAZYFS_BAD_OPTIONS', `cache budget must be >= 0 bytes, got ${budgetBytes}`);
    }
    if (options.maxPendingBytes !== undefined && !(options.maxPendingBytes >= 0)) {
      throw new LazyFsError(
        'LAZYFS_BAD_OPTIONS',
        `maxPendingBytes must be >= 0, got ${options.maxPendingBytes}`,
      );
    }
    const cache = new DiskSpanCache(options.root, budgetBytes, options);
    await cache.rebuild();
    return cache;
  }

  has(layer: string, key: string): boolean {
    return this.index.has(entryKey(layer, key));
  }

  /** The span's bytes, checked against the checksum stored with them; undefined when not cached or bad. */
  async get(layer: string, key: string): Promise<Uint8Array | undefined> {
    const k = entryKey(layer, key);
    const entry = this.index.get(k);
    if (!entry) return undefined;
    this.index.delete(k);
    this.index.set(k, entry);
    const file = join(this.root, k);
    let bytes: Buffer;
    try {
      // One open + one read of the known size: fs.readFile's chunked reads cost several times more.
      const fh = await open(file, 'r');
      try {
        bytes = Buffer.allocUnsafe(entry.size);
        const { bytesRead } = await fh.read(bytes, 0, entry.size, 0);
        if (bytesRead !== entry.size) return this.corrupt(layer, key, `${bytesRead} of ${entry.size} bytes`);
      } finally {
        await fh.close();
      }
    } catch {
      this.forget(k); // deleted or evicted meanwhile: a miss
      return undefined;
    }
    if (bytes.byteLength < HEADER_BYTES || !bytes.subarray(0, MAGIC.byteLength).equals(MAGIC)) {
      return this.corrupt(layer, key, 'no span header');
    }
    const body = bytes.subarray(HEADER_BYTES);
    if (crc32(body) !== bytes.readUInt32LE(MAGIC.byteLength))
      return this.corrupt(layer, key, 'checksum mismatch');
    return body;
  }

  /**
   * Stores a verified span: its checksum, then the bytes, atomically; evicts older spans to stay
   * within the budget. With too many writes pending, `whenFull: 'skip'` (default) gives up at once
   * and `'wait'` waits for room. Resolves false when the write was skipped.
   */
  async put(
    layer: string,
    key: string,
    bytes: Uint8Array,
    options: { whenFull?: 'skip' | 'wait' } = {},
  ): Promise<boolean> {
    const size = HEADER_BYTES + bytes.byteLength;
    if (size > this.budgetBytes) return false;
    while (this.pending > 0 && this.pending + size > this.maxPendingBytes) {
      if (options.whenFull !== 'wait') return false;
      // The next finished write makes room (or not): check again then. (Waiting for the
      // half-full mark could spin when one span is over half the bound.)
      await new Promise<void>((resolve) => this.writeDoneWaiters.push(resolve));
    }
    const k = entryKey(layer, key);
    this.pending += size;
    try {
      const checksum = Buffer.alloc(4);
      checksum.writeUInt32LE(crc32(bytes));
      const file = join(this.root, k);
      const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
      await mkdir(join(this.root, layerDir(layer)), { recursive: true });
      try {
        const fh = await open(tmp, 'wx');
        try {
          await fh.writev([MAGIC, checksum, bytes]);
          await fh.datasync();
        } finally {
          await fh.close();
        }
        await rename(tmp, file);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
    } finally {
      this.pending -= size;
      if (this.pending <= this.maxPendingBytes / 2) this.wakeWritableWaiters();
      const waiters = this.writeDoneWaiters;
      this.writeDoneWaiters = [];
      for (const wake of waiters) wake();
    }
    this.forget(k);
    this.index.set(k, { size });
    this.total += size;
    await this.evict();
    return true;
  }

  /** Resolves when pending writes are at most half of `maxPendingBytes` (a producer's backpressure). */
  whenWritable(): Promise<void> {
    if (this.pending <= this.maxPendingBytes / 2) return Promise.resolve();
    return new Promise((resolve) => this.writableWaiters.push(resolve));
  }

  /** Deletes every span of one layer. */
  async dropLayer(layer: string): Promise<void> {
    const prefix = `${layerDir(layer)}/`;
    for (const key of [...this.index.keys()]) if (key.startsWith(prefix)) this.forget(key);
    await rm(join(this.root, layerDir(layer)), { recursive: true, force: true });
  }

  /** Layers (digests) with at least one span on disk. */
  layers(): string[] {
    const dirs = new Set<string>();
    for (const key of this.index.keys()) dirs.add(key.slice(0, key.indexOf('/')));
    return [...dirs].map((d) => d.replace('-', ':'));
  }

  get usedBytes(): number {
    return this.total;
  }

  /** Bytes handed to `put` and not on disk yet. */
  get pendingBytes(): number {
    return this.pending;
  }

  get spanCount(): number {
    return this.index.size;
  }

  private async corrupt(layer: string, key: string, reason: string): Promise<undefined> {
    const k = entryKey(layer, key);
    const file = join(this.root, k);
    this.forget(k);
    await unlink(file).catch(() => {});
    this.options.onCorrupt?.({ layer, key, file, reason });
    return undefined;
  }

  private wakeWritableWaiters(): void {
    const waiters = this.writableWaiters;
    this.writableWaiters = [];
    for (const wake of waiters) wake();
  }

  private forget(key: string): void {
    const entry = this.index.get(key);
    if (!entry) return;
    this.index.delete(key);
    this.total -= entry.size;
  }

  private async evict(): Promise<void> {
    const victims: string[] = [];
    for (const [key, entry] of this.index) {
      if (this.total <= this.budgetBytes) break;
      victims.push(key);
      this.total -= entry.size;
    }
    for (const key of victims) this.index.delete(key);
    await Promise.all(victims.map((key) => unlink(join(this.root, key)).catch(() => {})));
  }

  private async rebuild(): Promise<void> {
    await mkdir(this.root, { recursive: true });
    const found: { key: string; size: number; mtimeMs: number }[] = [];
    for (const dir of await readdir(this.root, { withFileTypes: true })) {
      if (!dir.isDirectory()) continue;
      const dirPath = join(this.root, dir.name);
      for (const name of await readdir(dirPath)) {
        const file = join(dirPath, name);
        if (!SPAN_FILE.test(name)) {
          // An interrupted write, or a span file of an older format (keyed by span index only).
          await rm(file, { force: true, recursive: true });
          continue;
        }
        const st = await stat(file).catch(() => undefined);
        if (st?.isFile()) found.push({ key: `${dir.name}/${name}`, size: st.size, mtimeMs: st.mtimeMs });
      }
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const { key, size } of found) {
      this.index.set(key, { size });
      this.total += size;
    }
    await this.evict();
  }
}

/** `sha256:abc...` -> `sha256-abc...`; anything else is refused rather than used as a path. */
function layerDir(layer: string): string {
  const m = /^([a-z0-9]+)[:-]([a-f0-9]{16,128})$/.exec(layer);
  if (!m)
    throw new LazyFsError('LAZYFS_BAD_OPTIONS', `layer digest "${layer}" is not of the form sha256:<hex>`);
  return `${m[1]}-${m[2]}`;
}

function entryKey(layer: string, key: string): string {
  if (!SPAN_FILE.test(key)) throw new LazyFsError('LAZYFS_BAD_OPTIONS', `"${key}" is not a span cache key`);
  return `${layerDir(layer)}/${key}`;
}
