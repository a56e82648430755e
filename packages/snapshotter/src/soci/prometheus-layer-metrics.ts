import type { LazyFsMetrics } from '@soci-ts/lazy-fs';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What the cache gauges read when scraped. */
export interface SpanCacheLevels {
  memoryBytes(): number;
  diskBytes(): number;
  pendingWriteBytes(): number;
}

/** Prometheus counters for lazily loaded layers; one instance serves every mounted layer. */
export class PrometheusLayerMetrics implements LazyFsMetrics {
  private readonly spanFetches: Counter<'priority'>;
  private readonly fetchSeconds: Histogram<'priority'>;
  private readonly bytesFetched: Counter;
  private readonly bytesServed: Counter;
  private readonly cacheHits: Counter<'tier'>;
  private readonly cacheMisses: Counter;
  private readonly fetchErrors: Counter;
  private readonly verifyFailures: Counter;
  private readonly layersComplete: Counter;
  readonly mounts: Counter<'kind'>;
  readonly fallbacks: Counter<'reason'>;
  readonly cacheCorrupt: Counter;
  readonly sessionRestores: Counter<'result'>;

  constructor(registry: Registry, levels?: SpanCacheLevels) {
    const registers = [registry];
    this.sessionRestores = new Counter({
      name: 'soci_fuse_session_restores_total',
      help: 'Lazy mounts found at a daemon start: taken_over (the keeper still held the FUSE session; containers kept it) or remounted (a new mount; containers started before lost theirs)',
      labelNames: ['result'],
      registers,
    });
    this.cacheCorrupt = new Counter({
      name: 'soci_span_cache_corrupt_total',
      help: 'Span cache files that failed their checksum or length check (deleted, refetched, never served)',
      registers,
    });
    if (levels) {
      const gauges = [
        {
          name: 'soci_span_cache_memory_bytes',
          help: 'Decoded spans held in memory by all mounted layers (span_cache.memory_bytes bounds it)',
          read: levels.memoryBytes,
        },
        {
          name: 'soci_span_cache_disk_bytes',
          help: 'Span cache files on disk (span_cache.max_bytes bounds it)',
          read: levels.diskBytes,
        },
        {
          name: 'soci_span_cache_pending_write_bytes',
          help: 'Decoded spans waiting for their disk write (span_cache.max_pending_write_bytes bounds it)',
          read: levels.pendingWriteBytes,
        },
      ];
      for (const { name, help, read } of gauges) {
        new Gauge({
          name,
          help,
          registers,
          collect() {
            this.set(read());
          },
        });
      }
    }
    this.spanFetches = new Counter({
      name: 'soci_span_fetches_total',
      help: 'Range requests for spans, by priority (foreground, prefetch, background)',
      labelNames: ['priority'],
      registers,
    });
    this.fetchSeconds = new Histogram({
      name: 'soci_span_fetch_duration_seconds',
      help: 'Time of one span range request',
      labelNames: ['priority'],
      buckets: [0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    this.bytesFetched = new Counter({
      name: 'soci_bytes_fetched_total',
      help: 'Compressed layer bytes fetched from registries by range requests',
      registers,
    });
    this.bytesServed = new Counter({
      name: 'soci_bytes_served_total',
      help: 'File bytes handed to readers of lazily loaded layers',
      registers,
    });
    this.cacheHits = new Counter({
      name: 'soci_span_cache_hits_total',
      help: 'Spans found decoded in a cache, by tier',
      labelNames: ['tier'],
      registers,
    });
    this.cacheMisses = new Counter({
      name: 'soci_span_cache_misses_total',
      help: 'Spans that had to be fetched',
      registers,
    });
    this.fetchErrors = new Counter({
      name: 'soci_span_fetch_errors_total',
      help: 'Failed span range requests (each is retried before a read fails)',
      registers,
    });
    this.verifyFailures = new Counter({
      name: 'soci_span_verify_failures_total',
      help: 'Fetched spans whose sha256 did not match the zTOC (never served)',
      registers,
    });
    this.layersComplete = new Counter({
      name: 'soci_layers_complete_total',
      help: 'Lazily loaded layers whose every span is now cached',
      registers,
    });
    this.mounts = new Counter({
      name: 'soci_layer_mounts_total',
      help: 'Layers served by the SOCI source, by kind (lazy: FUSE mount, unpacked: fetched and unpacked here)',
      labelNames: ['kind'],
      registers,
    });
    this.fallbacks = new Counter({
      name: 'soci_fallbacks_total',
      help: 'Layers left to containerd to pull and unpack, by reason',
      labelNames: ['reason'],
      registers,
    });
  }

  onSpanFetch(bytes: number, ms: number, priority: string): void {
    this.spanFetches.inc({ priority });
    this.fetchSeconds.observe({ priority }, ms / 1000);
    this.bytesFetched.inc(bytes);
  }
  onFetchError(): void {
    this.fetchErrors.inc();
  }
  onCacheHit(tier: 'memory' | 'disk'): void {
    this.cacheHits.inc({ tier });
  }
  onCacheMiss(): void {
    this.cacheMisses.inc();
  }
  onBytesServed(bytes: number): void {
    this.bytesServed.inc(bytes);
  }
  onVerifyFailure(): void {
    this.verifyFailures.inc();
  }
  onLayerComplete(): void {
    this.layersComplete.inc();
  }
}
