import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LABEL } from '@soci-ts/containerd-client';
import {
  attachRemoteLayer,
  type CorruptEntry,
  DiskSpanCache,
  forceUnmount,
  type MountedLayer,
  type MountRemoteLayerOptions,
  mountRemoteLayer,
  SpanMemoryCache,
  type SpanRangeRequest,
} from '@soci-ts/lazy-fs';
import {
  type Descriptor,
  parseReference,
  type RegistryClient,
  type Repository,
} from '@soci-ts/oci-referrers';
import { ztocForLayer } from '@soci-ts/soci-index';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { SnapshotterConfig } from '../config.js';
import type {
  RemoteLayerSource,
  RemotePrepareRequest,
  RemotePrepareResult,
  RemoteRestoreRequest,
  UnmountReason,
} from '../remote.js';
import { FuseKeeperLink } from './fuse-keeper-link.js';
import { type BlobKeeper, ImageIndexCache, type ImageLayers } from './image-index-cache.js';
import { LocalArtifacts, type RestoreRecord } from './local-artifacts.js';
import { ParallelPullUnpack } from './parallel-pull-unpack.js';
import { PrometheusLayerMetrics } from './prometheus-layer-metrics.js';
import { type MountReads, ReadRecorder } from './read-recorder.js';

export interface SociRemoteSourceOptions {
  config: SnapshotterConfig;
  /** Reads images and their indexes from their registries (registryFromConfig builds it from `[registry]`). */
  registryClient: RegistryClient;
  logger: Logger;
  metrics: Registry;
}

/** Why a layer went back to containerd; each is a metrics label, so keep the set small. */
type FallbackReason = 'no-labels' | 'no-soci-index' | 'discovery-error' | 'unpack-disabled' | 'unpack-failed';

/**
 * The run path of design.md: find the image's SOCI index (once per manifest), then mount a
 * layer that has a zTOC lazily over FUSE; a layer without one, and every layer of an image
 * without an index, is fetched, verified and unpacked by the daemon (ParallelPullUnpack), or
 * left to containerd when that mode is off.
 */
export class SociRemoteSource implements RemoteLayerSource {
  private readonly images: ImageIndexCache;
  /** Layers (digest -> count) whose mounts are being set up right now. */
  private readonly mounting = new Map<string, number>();
  /** Lazy mounts by mountpoint, with their layer digests. */
  private readonly mounted = new Map<string, { layer: MountedLayer; digest: string }>();
  private readonly metrics: PrometheusLayerMetrics;
  private cache: Promise<DiskSpanCache> | undefined;
  private openedCache: DiskSpanCache | undefined;
  /** zTOCs and per-mount records kept on disk: a restart mounts lazy layers without the registry. */
  private readonly artifacts: Promise<LocalArtifacts>;
  /** Decoded spans of every mounted layer: one memory budget (span_cache.memory_bytes). */
  private readonly memory: SpanMemoryCache;
  private readonly recorder: ReadRecorder | undefined;
  /** Per lazy mount (by mountpoint): its reads, when recording. */
  private readonly recordings = new Map<string, MountReads>();
  /** The FUSE sessions live in the keeper process, so they outlive this one. */
  private readonly keeper: FuseKeeperLink;
  private readonly pull: ParallelPullUnpack;
  /** Aborted by close(): stops the shared discoveries and zTOC fetches still in flight. */
  private readonly lifetime = new AbortController();

  constructor(private readonly options: SociRemoteSourceOptions) {
    this.keeper = new FuseKeeperLink(options.config, options.logger);
    this.pull = new ParallelPullUnpack(
      options.config.parallelPullUnpack,
      join(options.config.root, 'staging'),
      options.logger,
    );
    this.artifacts = LocalArtifacts.open(join(options.config.root, 'soci'));
    this.artifacts.catch((err: unknown) =>
      options.logger.warn({ err }, 'cannot keep zTOCs on disk; restarts will need the registry'),
    );
    // Keeping artifacts is an extra: a disk that refuses costs the offline restart, nothing else.
    const keeper: BlobKeeper = {
      blob: (digest) => this.artifacts.then((a) => a.blob(digest)).catch(() => undefined),
      putBlob: (digest, bytes) => this.artifacts.then((a) => a.putBlob(digest, bytes)).catch(() => {}),
    };
    this.images = new ImageIndexCache(options.config.discovery, undefined, keeper, this.lifetime.signal);
    this.memory = new SpanMemoryCache(options.config.spanCache.memoryBytes);
    this.metrics = new PrometheusLayerMetrics(options.metrics, {
      memoryBytes: () => this.memory.bytes,
      diskBytes: () => this.openedCache?.usedBytes ?? 0,
      pendingWriteBytes: () => this.openedCache?.pendingBytes ?? 0,
    });
    const { recordDir } = options.config.prefetch;
    this.recorder = recordDir ? new ReadRecorder(recordDir, options.logger) : undefined;
  }

  async prepareRemote(request: RemotePrepareRequest): Promise<RemotePrepareResult> {
    const result = await this.serve(request, undefined);
    if (typeof result === 'object') this.metrics.fallbacks.inc({ reason: result.fallback });
    return result;
  }

  async restore(request: RemoteRestoreRequest): Promise<void> {
    // A mount the keeper still holds is taken over as it is: containers using it keep it.
    const takeOver = await this.keeper.holds(request.mountpoint);
    if (!takeOver) {
      // A FUSE mount whose keeper died answers ENOTCONN: take it away first.
      await forceUnmount(request.mountpoint);
      // A layer unpacked here lives in its directory already; only lazy mounts need redoing.
      if (!(await isEmptyDir(request.mountpoint))) return;
      // An unpacked layer may hold no file at all (BuildKit's empty layer): its mark tells.
      if (await this.artifacts.then((a) => a.isUnpacked(request.mountpoint)).catch(() => false)) return;
    }
    if (await this.restoreFromRecord(request, takeOver)) return;
    const result = await this.serve(request, { takeOver });
    if (result !== 'mounted') {
      throw new Error(`cannot restore the remote layer of ${request.name}: ${result.fallback}`);
    }
  }

  async unmount(mountpoint: string, why: UnmountReason): Promise<void> {
    this.recordings.get(mountpoint)?.close();
    this.recordings.delete(mountpoint);
    if (why === 'snapshot-removed')
      await this.artifacts.then((a) => a.dropRecord(mountpoint)).catch(() => {});
    const mount = this.mounted.get(mountpoint);
    if (!mount) return;
    this.mounted.delete(mountpoint);
    // At shutdown the mount stays with the keeper: the next daemon takes it over.
    if (why === 'shutdown') return mount.layer.detach();
    await mount.layer.unmount();
    if (why !== 'snapshot-removed') return;
    // The layer's cached spans go with its last snapshot (another image may share the layer).
    if (!this.layerInUse(mount.digest)) {
      await this.spanCache()
        .then((cache) => cache.dropLayer(mount.digest))
        .catch((err: unknown) =>
          this.options.logger.warn({ err, layer: mount.digest }, 'cannot drop cached spans'),
        );
    }
  }

  /** A layer is in use while a mount of it is up or being set up. */
  private layerInUse(digest: string): boolean {
    return (
      (this.mounting.get(digest) ?? 0) > 0 || [...this.mounted.values()].some((m) => m.digest === digest)
    );
  }

  /** Drops cached spans of layers no remote snapshot uses (their snapshots went while the daemon was down). */
  async restored(snapshots: readonly { labels: Readonly<Record<string, string>> }[]): Promise<void> {
    const used = new Set(snapshots.map((s) => s.labels[LABEL.layerDigest]));
    const cache = await this.spanCache();
    for (const layer of cache.layers()) {
      if (used.has(layer) || this.layerInUse(layer)) continue;
      await cache.dropLayer(layer);
      this.options.logger.info({ layer }, 'dropped the cached spans of a layer no snapshot uses');
    }
  }

  async close(): Promise<void> {
    // Discoveries and zTOC fetches in flight are no longer needed by anyone.
    this.lifetime.abort(new Error('the snapshotter is shutting down'));
    await Promise.allSettled([...this.mounted.keys()].map((m) => this.unmount(m, 'shutdown')));
    await this.recorder?.close();
    await this.pull.close();
    await this.options.registryClient.close();
  }

  /** `restore` is set when the daemon restarts: `takeOver` when the keeper still holds the mount. */
  private async serve(
    request: Pick<RemotePrepareRequest, 'labels' | 'mountpoint' | 'signal'> &
      Partial<Pick<RemotePrepareRequest, 'unpacking'>>,
    restore: { takeOver: boolean } | undefined,
  ): Promise<RemotePrepareResult | { fallback: FallbackReason }> {
    const restoring = restore !== undefined;
    const { labels, mountpoint, signal } = request;
    const imageRef = labels[LABEL.imageRef];
    const layerDigest = labels[LABEL.layerDigest];
    if (!imageRef || !layerDigest) return { fallback: 'no-labels' };
    const log = this.options.logger.child({ image: imageRef, layer: layerDigest });

    const repo = this.options.registryClient.repository(imageRef);
    const started = performance.now();
    let image: ImageLayers;
    try {
      // containerd 1.6's CRI sends the manifest digest; other clients may not: resolve the ref then.
      const parsed = parseReference(imageRef);
      const manifestDigest =
        labels[LABEL.manifestDigest] ??
        (await repo.fetchImageManifest(parsed.digest ?? parsed.tag ?? 'latest', undefined, { signal }))
          .descriptor.digest;
      image = await this.images.image(repo, manifestDigest, labels[LABEL.sociIndexDigest], signal);
    } catch (err) {
      log.warn({ err }, 'SOCI index discovery failed; containerd pulls the layer');
      return { fallback: 'discovery-error' };
    }
    const layer = image.manifest.layers.find((l) => l.digest === layerDigest);
    if (!layer) {
      log.warn({ manifest: image.manifestDigest }, 'layer is not in the image manifest');
      return { fallback: 'no-labels' };
    }
    const { enable, primary } = this.options.config.parallelPullUnpack;
    const soci = primary ? undefined : image.soci;
    if (!soci && !enable) return { fallback: 'no-soci-index' };

    const ztocRef = soci && ztocForLayer(soci.index, layerDigest);
    if (soci && ztocRef) {
      // Errors here (zTOC fetch, FUSE mount) propagate: the snapshotter logs them and falls back.
      const discovered = performance.now();
      const [ztoc, prefetch] = await Promise.all([
        this.images.ztoc(repo, ztocRef.digest, ztocRef.size, signal),
        this.prefetchOf(repo, image, layerDigest, log, signal),
      ]);
      const fetched = performance.now();
      signal.throwIfAborted();
      const reads = this.recorder?.mount(image.manifestDigest);
      try {
        await this.mountLazily(repo, layer, ztoc, mountpoint, {
          prefetch,
          onRead: reads?.onRead,
          takeOver: restore?.takeOver,
          signal,
        });
      } catch (err) {
        reads?.close();
        throw err;
      }
      if (reads) this.recordings.set(mountpoint, reads);
      await this.keepRecord(mountpoint, {
        imageRef,
        manifestDigest: image.manifestDigest,
        layer,
        ztoc: { digest: ztocRef.digest, size: ztocRef.size },
        prefetch,
      });
      const ms = (from: number, to: number) => Math.round(to - from);
      log.info(
        {
          via: soci.via,
          restoring,
          prefetchRanges: prefetch.length,
          discoveryMs: ms(started, discovered),
          ztocMs: ms(discovered, fetched),
          mountMs: ms(fetched, performance.now()),
        },
        'layer mounted lazily',
      );
      return 'mounted';
    }
    if (!enable) return { fallback: 'unpack-disabled' };
    // The layers this mode serves: all of the image's, or those its index has no zTOC for.
    const layers = soci
      ? image.manifest.layers.filter((l) => !ztocForLayer(soci.index, l.digest))
      : image.manifest.layers;
    request.unpacking?.();
    try {
      const unpacked = await this.pull.unpackInto({
        repo,
        image: image.manifestDigest,
        layers,
        index: layers.indexOf(layer),
        mountpoint,
        signal,
      });
      await this.artifacts
        .then((a) => a.putUnpacked(mountpoint))
        .catch((err: unknown) => {
          log.warn(
            { err },
            'cannot mark the layer unpacked; if it is empty, a restart asks the registry again',
          );
        });
      this.metrics.mounts.inc({ kind: 'unpacked' });
      const { bytes, entries, decoder, ms, waitedMs } = unpacked;
      log.info({ bytes, entries, decoder, ms, waitedMs, soci: !!soci }, 'layer fetched and unpacked');
      return 'mounted';
    } catch (err) {
      log.warn({ err }, 'fetching and unpacking the layer failed; containerd pulls it');
      return { fallback: 'unpack-failed' };
    }
  }

  /**
   * Mounts a lazy layer again from what was kept when it was first mounted (its record and zTOC),
   * without asking the registry anything. False when something is missing: the caller then
   * discovers as for a new layer.
   */
  private async restoreFromRecord(request: RemoteRestoreRequest, takeOver: boolean): Promise<boolean> {
    const artifacts = await this.artifacts.catch(() => undefined);
    const record = await artifacts?.record(request.mountpoint);
    if (!record) return false;
    const log = this.options.logger.child({ image: record.imageRef, layer: record.layer.digest });
    try {
      const repo = this.options.registryClient.repository(record.imageRef);
      // Kept bytes, verified against the digest; the registry is asked only if they are gone.
      const ztoc = await this.images.ztoc(repo, record.ztoc.digest, record.ztoc.size, request.signal);
      request.signal.throwIfAborted();
      await this.mountLazily(repo, record.layer, ztoc, request.mountpoint, {
        prefetch: record.prefetch,
        takeOver,
        signal: request.signal,
      });
      log.info({ restoring: true, from: 'local record' }, 'layer mounted lazily');
      return true;
    } catch (err) {
      log.warn({ err }, 'cannot restore the layer from its local record; asking the registry');
      return false;
    }
  }

  private async keepRecord(mountpoint: string, record: RestoreRecord): Promise<void> {
    try {
      await (await this.artifacts).putRecord(mountpoint, record);
    } catch (err) {
      this.options.logger.warn(
        { err, mountpoint },
        'cannot keep the restore record; a restart will need the registry',
      );
    }
  }

  /**
   * The span ranges the index's prefetch blobs list for a layer, in order. A blob that cannot
   * be fetched or parsed costs only its prefetch: the layer still mounts.
   */
  private async prefetchOf(
    repo: Repository,
    image: ImageLayers,
    layerDigest: string,
    log: Logger,
    signal: AbortSignal,
  ): Promise<SpanRangeRequest[]> {
    if (!this.options.config.prefetch.enabled || !image.soci) return [];
    const ranges: SpanRangeRequest[] = [];
    for (const ref of image.soci.index.prefetches.filter((p) => p.layerDigest === layerDigest)) {
      try {
        for (const { startSpan, endSpan } of await this.images.prefetch(repo, ref, signal)) {
          ranges.push({ startSpan, endSpan });
        }
      } catch (err) {
        log.warn({ err, prefetch: ref.digest }, 'prefetch blob unusable; the layer mounts without it');
      }
    }
    return ranges;
  }

  private async mountLazily(
    repo: Repository,
    layer: Descriptor,
    ztoc: Parameters<typeof mountRemoteLayer>[0]['ztoc'],
    mountpoint: string,
    extra: Pick<MountRemoteLayerOptions, 'prefetch' | 'onRead' | 'signal'> & { takeOver?: boolean },
  ): Promise<void> {
    const { config } = this.options;
    const bg = config.backgroundFetch;
    const { takeOver, ...layerExtra } = extra;
    // Counted from here: a cache drop for another snapshot of this layer must wait for us.
    this.mounting.set(layer.digest, (this.mounting.get(layer.digest) ?? 0) + 1);
    try {
      const options: MountRemoteLayerOptions = {
        ztoc,
        blob: repo.blobReader(layer),
        layer: { digest: layer.digest, size: layer.size },
        mountpoint,
        cache: await this.spanCache(),
        memoryCache: this.memory,
        fetchDeadlineMs: config.readTimeoutMs,
        metrics: this.metrics,
        // Prefetch spans use the same workers; `fetchAll` is the background fetch of the rest.
        background: {
          fetchAll: bg.enabled,
          concurrency: bg.maxConcurrency,
          bytesPerSecond: bg.bytesPerSecond,
          silencePeriodMs: bg.silencePeriodMs,
        },
        ...layerExtra,
      };
      const mounted = await this.keeper.withKeeper(async (backend) => {
        const kept = takeOver ? await attachRemoteLayer({ ...options, backend }) : undefined;
        if (takeOver) this.metrics.sessionRestores.inc({ result: kept ? 'taken_over' : 'remounted' });
        return kept ?? mountRemoteLayer({ ...options, backend });
      });
      this.mounted.set(mountpoint, { layer: mounted, digest: layer.digest });
      this.metrics.mounts.inc({ kind: 'lazy' });
    } finally {
      const left = (this.mounting.get(layer.digest) ?? 1) - 1;
      if (left > 0) this.mounting.set(layer.digest, left);
      else this.mounting.delete(layer.digest);
    }
  }

  private spanCache(): Promise<DiskSpanCache> {
    const { dir, maxBytes, maxPendingWriteBytes } = this.options.config.spanCache;
    this.cache ??= DiskSpanCache.open({
      root: dir,
      budgetBytes: maxBytes,
      maxPendingBytes: maxPendingWriteBytes,
      onCorrupt: (entry) => this.cacheEntryCorrupt(entry),
    }).then((cache) => {
      this.openedCache = cache;
      return cache;
    });
    return this.cache;
  }

  /** Each bad file is reported once: the cache deletes it, so it cannot fail twice. */
  private cacheEntryCorrupt(entry: CorruptEntry): void {
    this.metrics.cacheCorrupt.inc();
    this.options.logger.warn(
      { layer: entry.layer, span: entry.key, file: entry.file, reason: entry.reason },
      'span cache file damaged: deleted, the span is fetched again (check the disk under span_cache.dir)',
    );
  }
}

async function isEmptyDir(path: string): Promise<boolean> {
  try {
    return (await readdir(path)).length === 0;
  } catch {
    return true;
  }
}
