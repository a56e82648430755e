import type { SpanManager } from './span-manager.js';
import type { FetchPriority } from './types.js';

/** Inclusive span range. */
export interface SpanRangeRequest {
  startSpan: number;
  endSpan: number;
}

export interface BackgroundFetcherOptions {
  /** Spans fetched first, in this order (prefetch list). */
  prefetch?: SpanRangeRequest[];
  /** Fetch every remaining span after the prefetch list. Default true. */
  fetchAll?: boolean;
  /** Parallel requests. Default 2. */
  concurrency?: number;
  /** Upper bound on compressed bytes per second for background spans (not prefetch). 0 = unlimited. */
  bytesPerSecond?: number;
  /**
   * Background spans (not prefetch) wait until no foreground read has needed the network for
   * this long, counted from the start too: a starting container gets the whole link first.
   * Default 0.
   */
  silencePeriodMs?: number;
  /** Spans per background request (adjacent spans are merged). Default 4. */
  spansPerRequest?: number;
  /** Called with any error that stopped one batch; the fetcher goes on with the next. */
  onError?: (error: unknown) => void;
}

interface Batch {
  first: number;
  last: number;
  priority: FetchPriority;
}

/**
 * Fills the cache behind the foreground: first the prefetch list in order, then (when enabled)
 * every other span. Background batches wait while a foreground read waits for bytes and are
 * paced to `bytesPerSecond`; prefetch batches go at once. A failed batch is left for a later foreground read.
 */
export class BackgroundFetcher {
  private stopped = false;
  private readonly queue: Batch[] = [];
  private readonly workers: Promise<void>[] = [];
  private nextSlotAt = 0;
  private startedAt = 0;
  private readonly sleepers = new Set<() => void>();
  private readonly options: Required<Omit<BackgroundFetcherOptions, 'prefetch' | 'onError'>> &
    BackgroundFetcherOptions;

  constructor(
    private readonly spans: SpanManager,
    options: BackgroundFetcherOptions = {},
  ) {
    this.options = {
      fetchAll: true,
      concurrency: 2,
      bytesPerSecond: 0,
      spansPerRequest: 4,
      silencePeriodMs: 0,
      ...options,
    };
    this.queuePrefetch(options.prefetch ?? []);
    if (this.options.fetchAll) {
      for (let id = 0; id < spans.spanCount; id += this.options.spansPerRequest) {
        this.queue.push({
          first: id,
          last: Math.min(spans.spanCount - 1, id + this.options.spansPerRequest - 1),
          priority: 'background',
        });
      }
    }
    this.queue.reverse(); // pop() from the end takes them in order
  }

  /**
   * Prefetch ranges become batches of up to `spansPerRequest` adjacent spans, each span queued
   * once however often the list names it (a list from an untrusted index may repeat ranges).
   */
  private queuePrefetch(ranges: SpanRangeRequest[]): void {
    const queued = new Uint8Array(this.spans.spanCount);
    let batchStart = -1;
    const endBatch = (last: number) => {
      if (batchStart >= 0) this.queue.push({ first: batchStart, last, priority: 'prefetch' });
      batchStart = -1;
    };
    for (const r of ranges) {
      const first = Math.max(0, r.startSpan);
      const last = Math.min(this.spans.spanCount - 1, r.endSpan);
      for (let id = first; id <= last; id++) {
        if (queued[id]) {
          endBatch(id - 1);
          continue;
        }
        queued[id] = 1;
        if (batchStart < 0) batchStart = id;
        if (id - batchStart + 1 === this.options.spansPerRequest) endBatch(id);
      }
      endBatch(last);
    }
  }

  start(): this {
    this.startedAt = performance.now();
    const n = Math.max(1, this.options.concurrency);
    for (let i = 0; i < n; i++) this.workers.push(this.work());
    return this;
  }

  /** Resolves when every queued batch was handled (or the fetcher stopped). */
  async done(): Promise<void> {
    await Promise.all(this.workers);
  }

  /** Stops taking new batches, cuts sleeps short, and waits for the ones in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const wake of this.sleepers) wake();
    await this.done();
  }

  private async work(): Promise<void> {
    while (!this.stopped) {
      const batch = this.queue.pop();
      if (!batch) return;
      if (allCached(this.spans, batch)) continue;
      // Prefetch spans are ones the workload is about to read, so they share the link with
      // the foreground; only the rest of the layer steps aside.
      if (batch.priority === 'background') {
        await this.spans.whenForegroundIdle();
        await this.waitForQuiet();
        await this.pace(batch);
      }
      // Fetching faster than the disk cache writes would only pile decoded spans up in memory.
      await this.spans.whenDiskWritable();
      if (this.stopped) return;
      try {
        await this.spans.ensureSpans(batch.first, batch.last, batch.priority);
      } catch (err) {
        this.options.onError?.(err);
      }
    }
  }

  /** Sleeps until foreground reads have left the network alone for `silencePeriodMs`. */
  private async waitForQuiet(): Promise<void> {
    const quiet = this.options.silencePeriodMs;
    while (quiet > 0 && !this.stopped) {
      const since = Math.max(this.startedAt, this.spans.lastForegroundActivity());
      const left = since + quiet - performance.now();
      if (left <= 0) return;
      await this.sleep(left);
    }
  }

  /** Reserves the next time slot for this batch's bytes at the configured rate. */
  private async pace(batch: Batch): Promise<void> {
    const rate = this.options.bytesPerSecond;
    if (!rate) return;
    const bytes = this.spans.compressedBytes(batch.first, batch.last);
    const now = performance.now();
    const at = Math.max(now, this.nextSlotAt);
    this.nextSlotAt = at + (bytes / rate) * 1000;
    if (at > now) await this.sleep(at - now);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }
}

function allCached(spans: SpanManager, batch: Batch): boolean {
  for (let id = batch.first; id <= batch.last; id++) if (!spans.isCached(id)) return false;
  return true;
}
