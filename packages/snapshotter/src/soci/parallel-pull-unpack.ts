import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type Descriptor,
  fetchBlobParallel,
  type Repository,
  RequestLimit,
  untilAborted,
} from '@soci-ts/oci-referrers';
import type { Logger } from 'pino';
import type { SnapshotterConfig } from '../config.js';
import { prewarmExtraction } from '../unpack/extraction-thread.js';
import { type UnpackResult, unpackLayer } from '../unpack/unpack-layer.js';

export type ParallelPullUnpackConfig = SnapshotterConfig['parallelPullUnpack'];

export interface UnpackLayerRequest {
  repo: Repository;
  /** The image the layer belongs to (its manifest digest): per-image limits are counted by it. */
  image: string;
  /** The layers of the image this mode unpacks, bottom first. */
  layers: readonly Descriptor[];
  /** Which of `layers` this Prepare wants. */
  index: number;
  /** The snapshot's empty directory; the unpacked layer takes its place. */
  mountpoint: string;
  /** The Prepare gave up (containerd cancelled it, or the daemon stops). */
  signal: AbortSignal;
}

export interface UnpackedLayer extends UnpackResult {
  /** From the start of its download to the end of its unpack. */
  ms: number;
  /** How long the Prepare waited for it (less when it was fetched ahead). */
  waitedMs: number;
}

/** One layer being fetched and unpacked into its own staging directory. */
interface Job {
  digest: string;
  result: Promise<{ staged: string; unpacked: UnpackResult; ms: number }>;
  stop: AbortController;
  /** Stops a job whose layer no Prepare asked for in time (the pull was abandoned). */
  expiry: NodeJS.Timeout;
}

interface ImageLimits {
  downloads: RequestLimit;
  unpacks: RequestLimit;
  jobs: number;
}

/** An unclaimed staged layer (or one still waiting for a slot) is dropped after this long. */
const UNCLAIMED_MS = 10 * 60_000;
/** Range requests of one layer in flight (and chunks buffered ahead of its decoder) at most. */
const PER_LAYER_DOWNLOADS = 4;
/** The first range of a layer: small, so decoding starts while the big ones are on their way. */
const FIRST_CHUNK = 1 << 20;

/**
 * The daemon's own pull for layers that are not loaded lazily (AWS SOCI's parallel pull and
 * unpack mode). containerd prepares an image's layers one after another, each waiting for the
 * one below; so the first Prepare of an image starts every layer from there to the top at once
 * (within the per-image and global limits), each downloaded with several range requests, checked
 * against its digest and unpacked while it streams into a staging directory of its own. A
 * Prepare then only waits for its layer and renames it into place: a layer becomes a snapshot
 * only complete and verified, and a failure leaves nothing behind but what the next try redoes.
 */
export class ParallelPullUnpack {
  private readonly downloads: RequestLimit;
  private readonly unpacks: RequestLimit;
  private readonly images = new Map<string, ImageLimits>();
  /** Jobs no Prepare has claimed yet, by layer digest. */
  private readonly jobs = new Map<string, Job>();
  /** Every job whose staging directory is not cleaned up yet, claimed or not: close() stops them all. */
  private readonly live = new Set<Job>();
  private closed = false;
  private readonly ready: Promise<void>;

  constructor(
    private readonly config: ParallelPullUnpackConfig,
    /** Where layers are staged: on the file system of the snapshots, so a rename moves them. */
    private readonly stagingDir: string,
    private readonly logger: Logger,
  ) {
    this.downloads = new RequestLimit(config.maxConcurrentDownloads);
    if (config.enable) prewarmExtraction();
    this.unpacks = new RequestLimit(config.maxConcurrentUnpacks);
    // Whatever a previous daemon staged is of no use: no Prepare waits for it any more.
    this.ready = rm(stagingDir, { recursive: true, force: true }).then(async () => {
      await mkdir(stagingDir, { recursive: true });
    });
    this.ready.catch(() => {});
  }

  /** Fetches and unpacks `layers[index]` (starting the layers above it too) and moves it onto the mountpoint. */
  async unpackInto(request: UnpackLayerRequest): Promise<UnpackedLayer> {
    await this.ready;
    const started = performance.now();
    const { layers, index } = request;
    const job = this.claim(request, layers[index]!);
    // The layers above are wanted next: containerd will prepare them as soon as this one is done.
    for (const layer of layers.slice(index + 1)) {
      if (!this.jobs.has(layer.digest)) this.jobs.set(layer.digest, this.start(request, layer));
    }
    let done: Awaited<Job['result']>;
    try {
      done = await untilAborted(job.result, request.signal);
    } catch (err) {
      // A Prepare that gave up leaves its layer to the next one (containerd retries the pull),
      // unless another job of the layer is waiting already.
      const handOn = request.signal.aborted && !this.closed && !this.jobs.has(job.digest);
      if (handOn) this.jobs.set(job.digest, job);
      else await this.drop(job);
      throw err;
    }
    clearTimeout(job.expiry);
    try {
      // rename(2) replaces the empty snapshot directory in one step: no half layer is ever seen.
      await rename(join(done.staged, 'fs'), request.mountpoint);
      return { ...done.unpacked, ms: done.ms, waitedMs: Math.round(performance.now() - started) };
    } finally {
      await rm(done.staged, { recursive: true, force: true });
      this.live.delete(job);
    }
  }

  /** Stops every job, claimed or not, and resolves once what they staged is removed. */
  async close(): Promise<void> {
    this.closed = true;
    this.jobs.clear();
    await Promise.allSettled([...this.live].map((job) => this.drop(job)));
  }

  /** The job of `layer`, taken out of the map: a started one if there is one, else a new one. */
  private claim(request: UnpackLayerRequest, layer: Descriptor): Job {
    const job = this.jobs.get(layer.digest) ?? this.start(request, layer);
    this.jobs.delete(layer.digest);
    return job;
  }

  private start(request: UnpackLayerRequest, layer: Descriptor): Job {
    const stop = new AbortController();
    const limits = this.limitsOf(request.image);
    limits.jobs++;
    const job: Job = {
      digest: layer.digest,
      stop,
      result: this.run(request.repo, layer, limits, stop.signal).finally(() => {
        if (--limits.jobs === 0) this.images.delete(request.image);
      }),
      expiry: setTimeout(() => this.expire(job), UNCLAIMED_MS),
    };
    job.expiry.unref();
    this.live.add(job);
    job.result.catch((err: unknown) => {
      // A failed job is forgotten at once, so the next Prepare of the layer tries again.
      if (this.jobs.get(layer.digest) === job) this.jobs.delete(layer.digest);
      this.live.delete(job); // run() removed its staging directory
      if (!stop.signal.aborted) this.logger.debug({ err, layer: layer.digest }, 'layer pull failed');
    });
    return job;
  }

  private async run(repo: Repository, layer: Descriptor, limits: ImageLimits, signal: AbortSignal) {
    const releaseImage = await limits.unpacks.acquire(signal);
    let releaseAll = releaseImage;
    let staged: string | undefined;
    try {
      const releaseGlobal = await this.unpacks.acquire(signal);
      releaseAll = () => {
        releaseGlobal();
        releaseImage();
      };
      const started = performance.now();
      staged = await mkdtemp(join(this.stagingDir, 'layer-'));
      const dest = join(staged, 'fs');
      await mkdir(dest);
      const unpacked = await unpackLayer({
        blob: await this.blobOf(repo, layer, limits, signal),
        digest: layer.digest,
        size: layer.size,
        mediaType: layer.mediaType,
        dest,
        decoders: { gzip: this.config.gzipDecoder, zstd: this.config.zstdDecoder },
        signal,
      });
      return { staged, unpacked, ms: Math.round(performance.now() - started) };
    } catch (err) {
      if (staged) await rm(staged, { recursive: true, force: true });
      throw err;
    } finally {
      releaseAll();
    }
  }

  /** The layer's bytes: in concurrent ranges when it is larger than one chunk, else in one stream. */
  private async blobOf(
    repo: Repository,
    layer: Descriptor,
    limits: ImageLimits,
    signal: AbortSignal,
  ): Promise<AsyncIterable<Uint8Array>> {
    const chunkSize = this.config.concurrentDownloadChunkSize;
    if (chunkSize > 0 && layer.size > chunkSize) {
      return fetchBlobParallel(repo.blobReader(layer), {
        size: layer.size,
        chunkSize,
        firstChunkSize: FIRST_CHUNK,
        concurrency: PER_LAYER_DOWNLOADS,
        limits: [limits.downloads, this.downloads],
        signal,
      });
    }
    const global = this.downloads;
    return (async function* () {
      // Slots are taken when the unpacker starts reading, so they are given back however it ends.
      const releaseImage = await limits.downloads.acquire(signal);
      try {
        const releaseGlobal = await global.acquire(signal);
        try {
          yield* await repo.fetchBlob(layer, { signal });
        } finally {
          releaseGlobal();
        }
      } finally {
        releaseImage();
      }
    })();
  }

  private limitsOf(image: string): ImageLimits {
    let limits = this.images.get(image);
    if (!limits) {
      limits = {
        downloads: new RequestLimit(this.config.maxConcurrentDownloadsPerImage),
        unpacks: new RequestLimit(this.config.maxConcurrentUnpacksPerImage),
        jobs: 0,
      };
      this.images.set(image, limits);
    }
    return limits;
  }

  private expire(job: Job): void {
    if (this.jobs.get(job.digest) !== job) return;
    this.jobs.delete(job.digest);
    this.logger.info({ layer: job.digest }, 'no Prepare asked for a layer fetched ahead; dropped it');
    void this.drop(job);
  }

  /** Stops the job; resolves once its staging directory is gone. */
  private async drop(job: Job): Promise<void> {
    clearTimeout(job.expiry);
    job.stop.abort(new Error('layer no longer wanted'));
    try {
      const { staged } = await job.result;
      await rm(staged, { recursive: true, force: true });
    } catch {
      // A failed job removed its staging directory itself.
    }
    this.live.delete(job);
  }
}
