import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { findCode } from '@soci-ts/errors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attachRemoteLayer,
  type BlobRangeReader,
  type FuseBackend,
  type FuseMount,
  type FuseNodeOps,
  LazyFsError,
  type MountRemoteLayerOptions,
  mountRemoteLayer,
  RemoteLayer,
} from '../src/index.js';
import {
  type BuiltLayer,
  buildLayer,
  compressibleBytes,
  FileBlobReader,
  tempDir,
  writeTree,
} from './helpers.js';

const FILE = 'data/file.bin';
const CONTENT = compressibleBytes(300_000, 7);
let built: BuiltLayer;
let work: string;

beforeAll(async () => {
  work = await tempDir('cancel');
  await writeTree(join(work, 'root'), { [FILE]: CONTENT });
  built = await buildLayer(join(work, 'root'), join(work, 'layer'), { spanSize: 64 * 1024 });
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** A blob that never answers: each request waits until its signal aborts, then rejects with the reason. */
class SilentBlob implements BlobRangeReader {
  readonly signals: (AbortSignal | undefined)[] = [];

  readRange(_start: number, _end: number, options?: { signal?: AbortSignal }): Promise<Uint8Array> {
    const signal = options?.signal;
    this.signals.push(signal);
    return new Promise((_resolve, reject) => {
      signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  }
}

/** A blob reader over the layer file that records the signal of every request. */
class RecordingBlob extends FileBlobReader {
  readonly signals: (AbortSignal | undefined)[] = [];

  override readRange(start: number, end: number, options?: { signal?: AbortSignal }): Promise<Uint8Array> {
    this.signals.push(options?.signal);
    return super.readRange(start, end);
  }
}

async function until(what: string, test: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !test(); i++) await new Promise((r) => setTimeout(r, 2));
  if (!test()) throw new Error(`timed out waiting for ${what}`);
}

describe('closing a layer cancels its range requests', () => {
  function silentLayer(extra: Partial<ConstructorParameters<typeof RemoteLayer>[0]> = {}) {
    const blob = new SilentBlob();
    const layer = new RemoteLayer({
      layer: { digest: built.digest, size: built.size },
      ztoc: built.ztoc,
      blob,
      // Far beyond the test's time: only close() can end these requests.
      fetchDeadlineMs: 600_000,
      ...extra,
    });
    return { layer, blob };
  }

  it('aborts the signal of a foreground read in flight, which fails LAZYFS_LAYER_CLOSED', async () => {
    const { layer, blob } = silentLayer();
    const read = layer.read(FILE, 0, 4096).catch((e: unknown) => e);
    await until('the range request', () => blob.signals.length === 1);
    expect(blob.signals[0]).toBeInstanceOf(AbortSignal);
    expect(blob.signals[0]!.aborted).toBe(false);
    await layer.close();
    expect(blob.signals[0]!.aborted).toBe(true);
    const err = await read;
    expect(err).toBeInstanceOf(LazyFsError);
    expect(err).toMatchObject({ code: 'LAZYFS_LAYER_CLOSED', errno: 107 });
  }, 10_000);

  it('does not wait for background requests in flight: they are cancelled', async () => {
    const errors: unknown[] = [];
    const { layer, blob } = silentLayer({
      background: { concurrency: 2, spansPerRequest: 1, onError: (e) => errors.push(e) },
    });
    layer.startBackground();
    await until('both background requests', () => blob.signals.length === 2);
    await layer.close();
    expect(blob.signals.every((s) => s?.aborted)).toBe(true);
    expect(errors.map((e) => findCode(e, 'LAZYFS_LAYER_CLOSED')?.code)).toEqual([
      'LAZYFS_LAYER_CLOSED',
      'LAZYFS_LAYER_CLOSED',
    ]);
  }, 10_000);

  it('passes a signal with every range request', async () => {
    const blob = new RecordingBlob(built.blobPath, built.size);
    const layer = new RemoteLayer({
      layer: { digest: built.digest, size: built.size },
      ztoc: built.ztoc,
      blob,
      prefetch: [FILE],
      background: { spansPerRequest: 1 },
    });
    const bytes = await layer.read(FILE, 100_000, 50_000);
    expect(Buffer.from(bytes).equals(Buffer.from(CONTENT.subarray(100_000, 150_000)))).toBe(true);
    layer.startBackground();
    await layer.backgroundDone();
    expect(blob.signals.length).toBeGreaterThan(1);
    for (const signal of blob.signals) expect(signal).toBeInstanceOf(AbortSignal);
    await layer.close();
  });
});

/**
 * A FUSE backend in memory: mounts wait for `release()` when gated, and every step is logged,
 * so a test sees what was left mounted.
 */
class FakeBackend implements FuseBackend {
  readonly events: string[] = [];
  readonly mounted = new Set<string>();
  /** Mountpoints with a session kept from a previous process (attach takes them). */
  readonly kept = new Set<string>();
  ops: FuseNodeOps | undefined;
  private gate: Promise<void> = Promise.resolve();
  private open: (() => void) | undefined;
  private entered: (() => void) | undefined;
  /** Resolves once a mount or attach has started. */
  started = new Promise<void>((r) => {
    this.entered = r;
  });

  hold(): void {
    this.gate = new Promise((r) => {
      this.open = r;
    });
  }

  release(): void {
    this.open?.();
  }

  async mount(mountpoint: string, ops: FuseNodeOps): Promise<FuseMount> {
    return this.serve('mount', mountpoint, ops);
  }

  async attach(mountpoint: string, ops: FuseNodeOps): Promise<FuseMount | undefined> {
    if (!this.kept.has(mountpoint)) return undefined;
    return this.serve('attach', mountpoint, ops);
  }

  private async serve(how: string, mountpoint: string, ops: FuseNodeOps): Promise<FuseMount> {
    this.events.push(how);
    this.entered?.();
    await this.gate;
    this.ops = ops;
    this.mounted.add(mountpoint);
    return {
      mountpoint,
      unmount: async () => {
        this.events.push('unmount');
        this.mounted.delete(mountpoint);
        this.kept.delete(mountpoint);
      },
      detach: async () => {
        this.events.push('detach');
        this.kept.add(mountpoint);
      },
    };
  }
}

describe('mountRemoteLayer and attachRemoteLayer with a signal', () => {
  function options(
    backend: FakeBackend,
    blob: BlobRangeReader,
    signal: AbortSignal,
  ): MountRemoteLayerOptions {
    return {
      ztoc: built.ztoc,
      blob,
      layer: { digest: built.digest, size: built.size },
      mountpoint: join(work, 'mnt'),
      background: false,
      backend,
      signal,
    };
  }

  /** Reads the file through the ops the backend was given, as the kernel would. */
  async function readThroughOps(backend: FakeBackend): Promise<number> {
    const ops = backend.ops!;
    const dir = ops.lookup(1, 'data');
    if (typeof dir === 'number') throw new Error(`lookup data: errno ${dir}`);
    const file = ops.lookup(dir.ino, 'file.bin');
    if (typeof file === 'number') throw new Error(`lookup file.bin: errno ${file}`);
    return ops.read(file.ino, new Uint8Array(4096), 0);
  }

  it('rejects LAZYFS_ABORTED at once when the signal has already aborted, without mounting', async () => {
    const backend = new FakeBackend();
    const reason = new Error('the snapshot was removed');
    const err = await mountRemoteLayer(options(backend, new SilentBlob(), AbortSignal.abort(reason))).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LazyFsError);
    expect(err).toMatchObject({ code: 'LAZYFS_ABORTED' });
    expect((err as Error).cause).toBe(reason);
    expect((err as Error).message).toContain('the snapshot was removed');
    expect(backend.events).toEqual([]);
  });

  it('an abort while the mount is made leaves nothing mounted and the layer closed', async () => {
    const backend = new FakeBackend();
    backend.hold();
    const blob = new RecordingBlob(built.blobPath, built.size);
    const controller = new AbortController();
    const mounting = mountRemoteLayer(options(backend, blob, controller.signal)).catch((e: unknown) => e);
    await backend.started;
    const reason = new Error('daemon shutting down');
    controller.abort(reason);
    backend.release();
    const err = await mounting;
    expect(err).toMatchObject({ code: 'LAZYFS_ABORTED' });
    expect(findCode(err, 'LAZYFS_ABORTED')?.cause).toBe(reason);
    expect(backend.events).toEqual(['mount', 'unmount']);
    expect(backend.mounted.size).toBe(0);
    // The layer it would have served is closed: a late kernel request fails and fetches nothing.
    await expect(readThroughOps(backend)).rejects.toMatchObject({ code: 'LAZYFS_LAYER_CLOSED' });
    expect(blob.signals).toEqual([]);
  });

  it('once mounted, an abort changes nothing: the layer serves until unmount()', async () => {
    const backend = new FakeBackend();
    const controller = new AbortController();
    const blob = new RecordingBlob(built.blobPath, built.size);
    const mounted = await mountRemoteLayer(options(backend, blob, controller.signal));
    controller.abort(new Error('too late'));
    expect(await readThroughOps(backend)).toBe(4096);
    expect(blob.signals.some((s) => s?.aborted)).toBe(false);
    expect(backend.events).toEqual(['mount']);
    await mounted.unmount();
    expect(backend.events).toEqual(['mount', 'unmount']);
  });

  it('an abort while attaching gives the kept session back to the keeper instead of unmounting it', async () => {
    const backend = new FakeBackend();
    const mountpoint = join(work, 'mnt');
    backend.kept.add(mountpoint);
    backend.hold();
    const controller = new AbortController();
    const attaching = attachRemoteLayer({
      ...options(backend, new SilentBlob(), controller.signal),
      backend,
    }).catch((e: unknown) => e);
    await backend.started;
    controller.abort();
    backend.release();
    const err = await attaching;
    expect(err).toMatchObject({ code: 'LAZYFS_ABORTED' });
    expect((err as Error).cause).toBeInstanceOf(DOMException); // AbortController's default reason
    expect(backend.events).toEqual(['attach', 'detach']);
    expect(backend.kept.has(mountpoint)).toBe(true);
  });
});
