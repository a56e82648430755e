// The options and statistics of a SpanManager, apart from it so that its helpers (the span
// fetcher) can name them without importing the manager.
import type { LayerSpans } from '@soci-ts/ztoc';
import type { DiskSpanCache } from './disk-cache.js';
import { MemoryLru } from './memory-lru.js';
import type { LazyFsMetrics } from './metrics.js';
import type { BlobRangeReader } from './types.js';

export interface SpanManagerOptions {
  /** Layer digest, the disk cache's key. */
  layerDigest: string;
  layout: LayerSpans;
  blob: BlobRangeReader;
  /** Disk cache of decoded spans, possibly shared with other layers. */
  cache?: DiskSpanCache;
  metrics: LazyFsMetrics;
  /**
   * Decoded spans in memory, shared by the layers given the same one (one budget for all
   * mounts). Default: one of `memoryBudgetBytes` for this layer alone.
   */
  memoryCache?: SpanMemoryCache;
  /** Budget of the layer's own memory cache when `memoryCache` is not given. Default 64 MiB. */
  memoryBudgetBytes?: number;
  /** Largest compressed range one request may cover when adjacent missing spans are merged. Default 16 MiB. */
  maxCoalesceBytes?: number;
  /** Fetch attempts per span before a read fails with EIO. Default 3. */
  maxAttempts?: number;
  /** Pause before a retry, multiplied by the attempt number. Default 50 ms. */
  retryDelayMs?: number;
  /**
   * Longest a span fetch may take, retries included: then the read waiting for it fails with
   * EIO (a registry that accepts connections and never answers must not hang a container).
   * The next read asks the registry again. Default 30 s.
   */
  fetchDeadlineMs?: number;
  /**
   * Spans after the one a sequential read is in that are loaded from the disk cache ahead of
   * the reader (never fetched from the blob for this). Default 2; 0 turns it off.
   */
  diskReadAheadSpans?: number;
}

export interface SpanManagerStats {
  spanCount: number;
  spansCached: number;
  fetches: number;
  bytesFetched: number;
  bytesServed: number;
  verifyFailures: number;
  fetchErrors: number;
  memoryHits: number;
  diskHits: number;
}

/**
 * Decoded spans in memory, keyed by layer and span key, bounded by total bytes. Spans enter it
 * only verified: decoded from compressed bytes that matched their zTOC digest, or read from the
 * disk cache with a matching checksum.
 */
export class SpanMemoryCache extends MemoryLru<string, Uint8Array> {}
