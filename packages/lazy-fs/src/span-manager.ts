import type { LayerSpans } from '@soci-ts/ztoc';
import { spanCacheKey } from './disk-cache.js';
import { LazyFsError } from './errors.js';
import { SpanFetcher } from './span-fetcher.js';
import { type SpanManagerOptions, type SpanManagerStats, SpanMemoryCache } from './span-manager-options.js';
import type { FetchPriority } from './types.js';

/**
 * Serves tar byte ranges of one layer from its spans: memory cache, then disk cache, then one
 * range request per run of adjacent missing spans. Every fetched span is checked against its
 * zTOC digest before it is decoded, cached or served; a span that keeps failing fails the read
 * with a {@link LazyFsError} (EIO) and is tried afresh by the next read.
 */
export class SpanManager {
  private readonly layout: LayerSpans;
  private readonly memory: SpanMemoryCache;
  /** Each span's name in the disk cache ({@link spanCacheKey}). */
  private readonly diskKeys: string[];
  /** Each span's name in the memory cache: layer digest + disk key. */
  private readonly memoryKeys: string[];
  private readonly inflight = new Map<number, Promise<Uint8Array>>();
  /** Disk writes of decoded spans still under way. */
  private readonly storing = new Map<number, Promise<void>>();
  /** Spans stored in the disk cache or (without one) ever decoded; drives the background fetcher. */
  private readonly completed: Uint8Array;
  private completedCount = 0;
  private readonly maxCoalesceBytes: number;
  /** Gets missing spans from the blob, verified and decoded. */
  private readonly fetcher: SpanFetcher;
  private readonly diskReadAheadSpans: number;
  /** Where the last foreground read ended: a read starting there is taken as sequential. */
  private lastReadEnd = -1;
  private foregroundWaiting = 0;
  /** performance.now() when the last foreground read stopped waiting for bytes (0: none yet). */
  private foregroundEndedAt = 0;
  private idleWaiters: (() => void)[] = [];
  /** Aborted by close(): cancels the range requests in flight. */
  private readonly closing = new AbortController();
  private readonly counters = {
    fetches: 0,
    bytesFetched: 0,
    bytesServed: 0,
    verifyFailures: 0,
    fetchErrors: 0,
    memoryHits: 0,
    diskHits: 0,
  };

  constructor(private readonly options: SpanManagerOptions) {
    this.layout = options.layout;
    this.memory = options.memoryCache ?? new SpanMemoryCache(options.memoryBudgetBytes ?? 64 * 1024 * 1024);
    this.diskKeys = [];
    this.memoryKeys = [];
    for (let id = 0; id < this.layout.spanCount; id++) {
      const range = this.layout.uncompressedRange(id);
      const key = spanCacheKey(range.start, range.end, this.layout.digest(id));
      this.diskKeys.push(key);
      this.memoryKeys.push(`${options.layerDigest}/${key}`);
    }
    this.maxCoalesceBytes = options.maxCoalesceBytes ?? 16 * 1024 * 1024;
    this.fetcher = new SpanFetcher(options, {
      counters: this.counters,
      closed: this.closing.signal,
      onVerified: (spanId, decoded, priority) => this.keepDecoded(spanId, decoded, priority),
    });
    this.diskReadAheadSpans = Math.max(0, options.diskReadAheadSpans ?? 2);
    this.completed = new Uint8Array(this.layout.spanCount);
    const disk = options.cache;
    if (disk) {
      for (let id = 0; id < this.layout.spanCount; id++) {
        if (disk.has(options.layerDigest, this.diskKeys[id]!)) this.markCompleted(id);
      }
    }
  }

  get spanCount(): number {
    return this.layout.spanCount;
  }

  get uncompressedSize(): number {
    return this.layout.uncompressedSize;
  }

  /** True when the span was stored for good (disk cache), or fetched once when there is no disk cache. */
  isCached(spanId: number): boolean {
    return this.completed[spanId] === 1;
  }

  /** True when serving the span needs no fetch. */
  private isAvailable(spanId: number): boolean {
    return (
      this.memory.has(this.memoryKeys[spanId]!) ||
      this.options.cache?.has(this.options.layerDigest, this.diskKeys[spanId]!) === true
    );
  }

  /** Compressed bytes of spans `first..last`. */
  compressedBytes(first: number, last: number): number {
    return this.layout.compressedRange(last).end - this.layout.compressedRange(first).start;
  }

  /** Spans holding tar bytes `[start, end)` (end > start), as an inclusive id range. */
  spansOfRange(start: number, end: number): { first: number; last: number } {
    return { first: this.layout.spanForOffset(start), last: this.layout.spanForOffset(end - 1) };
  }

  get isComplete(): boolean {
    return this.completedCount === this.layout.spanCount;
  }

  /**
   * Fills `target` with tar bytes starting at `offset`. The range must lie inside the tar
   * stream. Served from memory without waiting when every span is there.
   */
  async readTar(offset: number, target: Uint8Array): Promise<void> {
    if (this.closing.signal.aborted)
      throw new LazyFsError('LAZYFS_LAYER_CLOSED', 'the layer was closed; mount it again to read');
    const length = target.byteLength;
    if (length === 0) return;
    const first = this.layout.spanForOffset(offset);
    const last = this.layout.spanForOffset(offset + length - 1);
    const sequential = offset === this.lastReadEnd;
    this.lastReadEnd = offset + length;
    if (sequential) this.readAheadFromDisk(last + 1);
    if (this.copyFromMemory(first, last, offset, target)) return;
    this.foregroundWaiting++;
    try {
      this.startFetches(first, last, 'foreground');
      for (let id = first; id <= last; id++) {
        const span = await this.getSpan(id, 'foreground');
        copySpan(this.layout.uncompressedRange(id).start, span, offset, target);
      }
      this.counters.bytesServed += length;
      this.options.metrics.onBytesServed(length);
    } finally {
      this.foregroundWaiting--;
      this.foregroundEndedAt = performance.now();
      if (this.foregroundWaiting === 0) this.wakeIdleWaiters();
    }
  }

  /** When foreground reads last needed the network: now while one waits, else when the last one ended. */
  lastForegroundActivity(): number {
    return this.foregroundWaiting > 0 ? performance.now() : this.foregroundEndedAt;
  }

  /**
   * Starts loading the next spans from the disk cache into memory, so a sequential reader finds
   * them there instead of waiting for one disk read per span. Spans the disk cache lacks are
   * left alone: the network is only asked for what is read (or prefetched on purpose).
   * (A span evicted between the check and the load is fetched, as any disk miss is.)
   */
  private readAheadFromDisk(from: number): void {
    const disk = this.options.cache;
    if (!disk) return;
    const to = Math.min(this.layout.spanCount - 1, from + this.diskReadAheadSpans - 1);
    for (let id = from; id <= to; id++) {
      if (
        this.memory.has(this.memoryKeys[id]!) ||
        this.inflight.has(id) ||
        !disk.has(this.options.layerDigest, this.diskKeys[id]!)
      )
        continue;
      this.track(id, this.loadFromDisk(id, 'prefetch'));
    }
  }

  /**
   * Makes sure spans `first..last` are there, fetching the missing ones with coalesced requests;
   * for prefetch and background work, also that their disk writes are done (the disk paces them).
   */
  async ensureSpans(first: number, last: number, priority: FetchPriority): Promise<void> {
    this.startFetches(first, last, priority);
    const waits: Promise<unknown>[] = [];
    for (let id = first; id <= last; id++) {
      if (!this.isAvailable(id)) waits.push(this.getSpan(id, priority));
    }
    await Promise.all(waits);
    if (priority === 'foreground') return;
    const writes: Promise<void>[] = [];
    for (let id = first; id <= last; id++) {
      const write = this.storing.get(id);
      if (write) writes.push(write);
    }
    await Promise.all(writes);
  }

  /** Resolves when no foreground read waits for bytes (background work yields until then). */
  whenForegroundIdle(): Promise<void> {
    if (this.foregroundWaiting === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Resolves when the disk cache takes writes again (background work waits; readers never do). */
  whenDiskWritable(): Promise<void> {
    return this.options.cache?.whenWritable() ?? Promise.resolve();
  }

  close(): void {
    this.closing.abort(new LazyFsError('LAZYFS_LAYER_CLOSED', 'the layer was closed'));
    for (const key of this.memoryKeys) this.memory.delete(key);
    this.wakeIdleWaiters();
  }

  stats(): SpanManagerStats {
    return { spanCount: this.layout.spanCount, spansCached: this.completedCount, ...this.counters };
  }

  private wakeIdleWaiters(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  private copyFromMemory(first: number, last: number, offset: number, target: Uint8Array): boolean {
    for (let id = first; id <= last; id++) {
      if (this.memory.get(this.memoryKeys[id]!) === undefined) return false;
    }
    for (let id = first; id <= last; id++) {
      const span = this.memory.get(this.memoryKeys[id] as string) as Uint8Array;
      copySpan(this.layout.uncompressedRange(id).start, span, offset, target);
    }
    this.counters.memoryHits += last - first + 1;
    this.counters.bytesServed += target.byteLength;
    this.options.metrics.onCacheHit('memory');
    this.options.metrics.onBytesServed(target.byteLength);
    return true;
  }

  /** One span's decoded bytes, from whichever tier has it; concurrent callers share one fetch. */
  private getSpan(spanId: number, priority: FetchPriority): Promise<Uint8Array> {
    const cached = this.memory.get(this.memoryKeys[spanId]!);
    if (cached) {
      this.counters.memoryHits++;
      this.options.metrics.onCacheHit('memory');
      return Promise.resolve(cached);
    }
    const pending = this.inflight.get(spanId);
    if (pending) return pending;
    const disk = this.options.cache;
    if (disk?.has(this.options.layerDigest, this.diskKeys[spanId]!)) {
      return this.track(spanId, this.loadFromDisk(spanId, priority));
    }
    this.startRun([spanId], priority);
    return this.inflight.get(spanId)!;
  }

  private async loadFromDisk(spanId: number, priority: FetchPriority): Promise<Uint8Array> {
    const range = this.layout.uncompressedRange(spanId);
    const bytes = await this.options.cache!.get(this.options.layerDigest, this.diskKeys[spanId]!);
    if (bytes && bytes.byteLength === range.end - range.start) {
      this.counters.diskHits++;
      this.options.metrics.onCacheHit('disk');
      this.memory.set(this.memoryKeys[spanId]!, bytes);
      return bytes;
    }
    // Evicted meanwhile, or failed its checksum (the cache deleted and reported it): fetch it again.
    this.unmarkCompleted(spanId);
    return this.fetcher.fetch([spanId], priority).then((spans) => spans.get(spanId)!);
  }

  /**
   * Starts fetches for the missing spans in `first..last`, merging adjacent missing spans into
   * one request up to `maxCoalesceBytes`, and registers them as in flight.
   */
  private startFetches(first: number, last: number, priority: FetchPriority): void {
    let run: number[] = [];
    let runBytes = 0;
    const flush = () => {
      if (run.length > 0) this.startRun(run, priority);
      run = [];
      runBytes = 0;
    };
    for (let id = first; id <= last; id++) {
      if (this.inflight.has(id) || this.isAvailable(id)) {
        flush();
        continue;
      }
      const range = this.layout.compressedRange(id);
      const bytes = range.end - range.start;
      if (run.length > 0 && runBytes + bytes > this.maxCoalesceBytes) flush();
      run.push(id);
      runBytes += bytes;
    }
    flush();
  }

  private startRun(ids: number[], priority: FetchPriority): void {
    this.options.metrics.onCacheMiss();
    const all = this.fetcher.fetch(ids, priority);
    for (const id of ids) {
      this.track(
        id,
        all.then((spans) => spans.get(id)!),
      );
    }
  }

  private track(spanId: number, promise: Promise<Uint8Array>): Promise<Uint8Array> {
    const tracked = promise.finally(() => {
      if (this.inflight.get(spanId) === tracked) this.inflight.delete(spanId);
    });
    // A failure is reported to whoever awaits the span; this keeps a run's siblings quiet.
    tracked.catch(() => {});
    this.inflight.set(spanId, tracked);
    return tracked;
  }

  /** Puts a verified, decoded span into memory and starts its disk write. */
  private keepDecoded(spanId: number, decoded: Uint8Array, priority: FetchPriority): void {
    this.memory.set(this.memoryKeys[spanId]!, decoded);
    // Readers need not wait for the disk write; background work waits for it (ensureSpans).
    const stored = this.store(spanId, decoded, priority);
    this.storing.set(spanId, stored);
    void stored.finally(() => {
      if (this.storing.get(spanId) === stored) this.storing.delete(spanId);
    });
  }

  private async store(spanId: number, decoded: Uint8Array, priority: FetchPriority): Promise<void> {
    const disk = this.options.cache;
    if (disk) {
      try {
        // A reader's span is skipped when too many writes are pending (it is fetched again when
        // needed); prefetch and background work, which exists to fill the cache, waits its turn.
        const whenFull = priority === 'foreground' ? 'skip' : 'wait';
        if (!(await disk.put(this.options.layerDigest, this.diskKeys[spanId]!, decoded, { whenFull })))
          return;
      } catch {
        return; // a full or broken cache disk costs speed, not correctness
      }
    }
    this.markCompleted(spanId);
  }

  private markCompleted(spanId: number): void {
    if (this.completed[spanId] === 1) return;
    this.completed[spanId] = 1;
    this.completedCount++;
    if (this.completedCount === this.layout.spanCount) this.options.metrics.onLayerComplete();
  }

  private unmarkCompleted(spanId: number): void {
    if (this.completed[spanId] !== 1) return;
    this.completed[spanId] = 0;
    this.completedCount--;
  }
}

/** Copies the overlap of a decoded span (starting at tar offset `spanStart`) into `target` (at `offset`). */
function copySpan(spanStart: number, span: Uint8Array, offset: number, target: Uint8Array): void {
  const from = Math.max(offset, spanStart);
  const to = Math.min(offset + target.byteLength, spanStart + span.byteLength);
  if (to > from) target.set(span.subarray(from - spanStart, to - spanStart), from - offset);
}
