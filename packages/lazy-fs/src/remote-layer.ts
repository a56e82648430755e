import type { Ztoc } from '@soci-ts/ztoc';
import {
  BackgroundFetcher,
  type BackgroundFetcherOptions,
  type SpanRangeRequest,
} from './background-fetcher.js';
import type { DiskSpanCache } from './disk-cache.js';
import { LazyFsError } from './errors.js';
import { FileTree, type Inode, type OpaqueXattr, splitPath } from './file-tree.js';
import { type LazyFsMetrics, withDefaults } from './metrics.js';
import { SpanManager } from './span-manager.js';
import type { SpanManagerOptions, SpanManagerStats } from './span-manager-options.js';
import type { BlobRangeReader, LayerDescriptor } from './types.js';
import { layerSpansOf } from './ztoc-spans.js';

/** The span manager's tuning, as the span manager documents it. */
type SpanTuning = Pick<
  SpanManagerOptions,
  | 'memoryCache'
  | 'memoryBudgetBytes'
  | 'maxCoalesceBytes'
  | 'maxAttempts'
  | 'retryDelayMs'
  | 'fetchDeadlineMs'
  | 'diskReadAheadSpans'
>;

export interface RemoteLayerOptions extends SpanTuning {
  layer: LayerDescriptor;
  ztoc: Ztoc;
  blob: BlobRangeReader;
  /** Disk cache for decoded spans (may be shared by layers). Without one, only memory caches. */
  cache?: DiskSpanCache;
  metrics?: Partial<LazyFsMetrics>;
  opaqueXattr?: OpaqueXattr;
  /** Files (paths in the layer) or span ranges fetched first, in this order. */
  prefetch?: (string | SpanRangeRequest)[];
  /** Background fetch of all remaining spans; `false` turns it off. */
  background?: false | Omit<BackgroundFetcherOptions, 'prefetch'>;
}

export interface RemoteLayerStats extends SpanManagerStats {
  files: number;
  complete: boolean;
}

/**
 * One image layer, readable file by file while its bytes arrive on demand: the zTOC's file
 * tree plus a span manager that fetches, verifies, decodes and caches spans of the blob.
 */
export class RemoteLayer {
  readonly tree: FileTree;
  /** The layer's span manager: internal (tests and the bench look inside), not part of the API. */
  readonly spans: SpanManager;
  private fetcher: BackgroundFetcher | undefined;

  constructor(private readonly options: RemoteLayerOptions) {
    this.tree = new FileTree(options.ztoc.toc, { opaqueXattr: options.opaqueXattr });
    this.spans = new SpanManager({
      layerDigest: options.layer.digest,
      layout: layerSpansOf(options.ztoc, options.layer),
      blob: options.blob,
      cache: options.cache,
      metrics: withDefaults(options.metrics),
      memoryCache: options.memoryCache,
      memoryBudgetBytes: options.memoryBudgetBytes,
      maxCoalesceBytes: options.maxCoalesceBytes,
      maxAttempts: options.maxAttempts,
      retryDelayMs: options.retryDelayMs,
      fetchDeadlineMs: options.fetchDeadlineMs,
      diskReadAheadSpans: options.diskReadAheadSpans,
    });
  }

  /** Bytes `[offset, offset + length)` of a file (zTOC index or path), cut at the file's end. */
  async read(file: number | string, offset: number, length: number): Promise<Uint8Array> {
    const inode = this.fileInode(file);
    const n = Math.max(0, Math.min(length, inode.size - offset));
    const out = new Uint8Array(n);
    await this.readInto(inode, offset, out);
    return out;
  }

  /**
   * Fills `target` with the file's bytes from `offset` on; returns the count (less than
   * `target.length` only at the end of the file). The FUSE read path: no allocation.
   */
  async readInto(inode: Inode, offset: number, target: Uint8Array): Promise<number> {
    if (inode.kind !== 'file')
      throw new LazyFsError('LAZYFS_NOT_A_FILE', `inode ${inode.ino} is not a regular file`);
    const n = Math.max(0, Math.min(target.byteLength, inode.size - offset));
    if (n === 0) return 0;
    const start = inode.dataOffset + offset;
    if (start + n > this.spans.uncompressedSize) {
      throw new LazyFsError(
        'LAZYFS_BAD_ZTOC',
        `file data [${inode.dataOffset}, ${inode.dataOffset + inode.size}) lies beyond the layer's ${this.spans.uncompressedSize} tar bytes; the zTOC does not match the layer`,
      );
    }
    await this.spans.readTar(start, n === target.byteLength ? target : target.subarray(0, n));
    return n;
  }

  /** Starts prefetch and (unless switched off) the background fetch of the rest. */
  startBackground(): void {
    if (this.fetcher) return;
    const background = this.options.background;
    const prefetch = (this.options.prefetch ?? []).flatMap((p) => this.prefetchRange(p));
    if (background === false && prefetch.length === 0) return;
    this.fetcher = new BackgroundFetcher(this.spans, {
      ...(background || {}),
      fetchAll: background !== false && (background?.fetchAll ?? true),
      prefetch,
    }).start();
  }

  /** Resolves when prefetch and background fetch have finished (tests, benchmarks). */
  async backgroundDone(): Promise<void> {
    await this.fetcher?.done();
  }

  stats(): RemoteLayerStats {
    return { ...this.spans.stats(), files: this.tree.inodeCount, complete: this.spans.isComplete };
  }

  /** Stops background work and cancels the range requests in flight; reads fail from now on. */
  async close(): Promise<void> {
    // The fetches are cancelled first, so stopping the fetcher does not wait for them to end.
    const stopping = this.fetcher?.stop();
    this.spans.close();
    await stopping;
  }

  private prefetchRange(item: string | SpanRangeRequest): SpanRangeRequest[] {
    if (typeof item !== 'string') return [item];
    const parts = splitPath(item);
    const inode = parts && this.tree.lookup(`/${parts.join('/')}`);
    if (!inode || inode.kind !== 'file' || inode.size === 0) return [];
    const { first, last } = this.spans.spansOfRange(inode.dataOffset, inode.dataOffset + inode.size);
    return [{ startSpan: first, endSpan: last }];
  }

  private fileInode(file: number | string): Inode {
    let inode: Inode | undefined;
    if (typeof file === 'number') {
      inode = this.tree.inodeOfTocIndex(file);
    } else {
      const parts = splitPath(file);
      inode = parts && this.tree.lookup(`/${parts.join('/')}`);
    }
    if (!inode)
      throw new LazyFsError(
        'LAZYFS_NOT_FOUND',
        `no file ${JSON.stringify(file)} in layer ${this.options.layer.digest}`,
      );
    if (inode.kind !== 'file') {
      throw new LazyFsError(
        'LAZYFS_NOT_A_FILE',
        `${JSON.stringify(file)} is a ${inode.kind}, not a regular file`,
      );
    }
    return inode;
  }
}
