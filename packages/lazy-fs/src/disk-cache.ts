import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LazyFsError } from './errors.js';

export interface DiskSpanCacheOptions {
  /** Directory holding one sub-directory per layer, one file per decoded span. */
  root: string;
  /** Total bytes of span files kept; least recently used spans are deleted beyond it. */
  budgetBytes: number;
}

interface Entry {
  size: number;
}

const SPAN_FILE = /^\d+$/;

/**
 * Decoded spans on local disk, shared by any number of layers, bounded by a byte budget with
 * least-recently-used eviction. Files are written to a temporary name and renamed, so a crash
 * never leaves a partial span under a real name; the index is rebuilt from the directory on
 * open, oldest write first (uses within one process refine the order; they are not written back,
 * to keep reads at one open + one read), and stray temporary files are removed.
 */
export class DiskSpanCache {
  private readonly index = new Map<string, Entry>();
  private total = 0;

  private constructor(
    readonly root: string,
    readonly budgetBytes: number,
  ) {}

  static async open(options: DiskSpanCacheOptions): Promise<DiskSpanCache> {
    if (!(options.budgetBytes >= 0)) {
      throw new LazyFsError('BAD_OPTIONS', `cache budget must be >= 0 bytes, got ${options.budgetBytes}`);
    }
    const cache = new DiskSpanCache(options.root, options.budgetBytes);
    await cache.rebuild();
    return cache;
  }

  has(layer: string, spanId: number): boolean {
    return this.index.has(keyOf(layer, spanId));
  }

  /** The span's bytes, or undefined when not cached (or deleted meanwhile). */
  async get(layer: string, spanId: number): Promise<Uint8Array | undefined> {
    const key = keyOf(layer, spanId);
    const entry = this.index.get(key);
    if (!entry) return undefined;
    this.index.delete(key);
    this.index.set(key, entry);
    try {
      // One open + one read of the known size: fs.readFile's chunked reads cost several times more.
      const fh = await open(join(this.root, key), 'r');
      try {
        const bytes = Buffer.allocUnsafe(entry.size);
        const { bytesRead } = await fh.read(bytes, 0, entry.size, 0);
        if (bytesRead !== entry.size) throw new Error('span file shorter than recorded');
        return bytes;
      } finally {
        await fh.close();
      }
    } catch {
      this.forget(key);
      return undefined;
    }
  }

  /** Stores a span (atomically); evicts older spans to stay within the budget. */
  async put(layer: string, spanId: number, bytes: Uint8Array): Promise<void> {
    if (bytes.byteLength > this.budgetBytes) return;
    const key = keyOf(layer, spanId);
    const file = join(this.root, key);
    const tmp = `${file}.tmp-${randomBytes(6).toString('hex')}`;
    await mkdir(join(this.root, layerDir(layer)), { recursive: true });
    try {
      await writeFile(tmp, bytes, { flag: 'wx' });
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    this.forget(key);
    this.index.set(key, { size: bytes.byteLength });
    this.total += bytes.byteLength;
    await this.evict();
  }

  /** Deletes every span of one layer. */
  async dropLayer(layer: string): Promise<void> {
    const prefix = `${layerDir(layer)}/`;
    for (const key of [...this.index.keys()]) if (key.startsWith(prefix)) this.forget(key);
    await rm(join(this.root, layerDir(layer)), { recursive: true, force: true });
  }

  get usedBytes(): number {
    return this.total;
  }

  get spanCount(): number {
    return this.index.size;
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
          await rm(file, { force: true, recursive: true }); // interrupted write
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
  if (!m) throw new LazyFsError('BAD_OPTIONS', `layer digest "${layer}" is not of the form sha256:<hex>`);
  return `${m[1]}-${m[2]}`;
}

function keyOf(layer: string, spanId: number): string {
  return `${layerDir(layer)}/${spanId}`;
}
