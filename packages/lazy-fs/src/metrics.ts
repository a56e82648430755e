import type { FetchPriority } from './types.js';

/**
 * Hooks for counters and histograms (the daemon wires them to Prometheus). Every method is
 * called on the event loop and must return quickly.
 */
export interface LazyFsMetrics {
  /** One range request finished: compressed bytes received and its duration. */
  onSpanFetch(bytes: number, ms: number, priority: FetchPriority): void;
  /** A range request failed (network error, short body, 5xx ...). */
  onFetchError(error: unknown): void;
  /** A span was found decoded in the memory or disk cache. */
  onCacheHit(tier: 'memory' | 'disk'): void;
  /** A span had to be fetched. */
  onCacheMiss(): void;
  /** Bytes handed to a reader. */
  onBytesServed(bytes: number): void;
  /** A fetched span did not match its zTOC digest (it is refetched, never served). */
  onVerifyFailure(spanId: number): void;
  /** Every span of the layer is cached. */
  onLayerComplete(): void;
}

export const noopMetrics: LazyFsMetrics = {
  onSpanFetch() {},
  onFetchError() {},
  onCacheHit() {},
  onCacheMiss() {},
  onBytesServed() {},
  onVerifyFailure() {},
  onLayerComplete() {},
};

/** Fills in no-ops for hooks a caller left out. */
export function withDefaults(metrics: Partial<LazyFsMetrics> | undefined): LazyFsMetrics {
  if (!metrics) return noopMetrics;
  const out = { ...noopMetrics };
  for (const key of Object.keys(noopMetrics) as (keyof LazyFsMetrics)[]) {
    const hook = metrics[key];
    // biome-ignore lint/suspicious/noExplicitAny: hooks have different signatures; bind keeps `this` for class instances
    if (typeof hook === 'function') (out as any)[key] = hook.bind(metrics);
  }
  return out;
}
