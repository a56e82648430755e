import { webcrypto } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { untilAborted } from '@soci-ts/oci-referrers';
import type { LayerSpans } from '@soci-ts/ztoc';
import { LazyFsError, messageOf } from './errors.js';
import type { SpanManagerOptions, SpanManagerStats } from './span-manager-options.js';
import type { FetchPriority } from './types.js';

/** The counters of SpanManager's stats that fetching moves. */
export type SpanFetchCounters = Pick<
  SpanManagerStats,
  'fetches' | 'bytesFetched' | 'verifyFailures' | 'fetchErrors'
>;

/** What the fetcher reports to, and asks of, the SpanManager it works for. */
export interface SpanFetcherHooks {
  counters: SpanFetchCounters;
  /** Aborts when the layer is closed: requests in flight are cancelled and nothing is retried. */
  closed: AbortSignal;
  /** A span verified and decoded, before it is handed to its reader: caches it. */
  onVerified(spanId: number, decoded: Uint8Array, priority: FetchPriority): void;
}

/**
 * Gets spans of one layer from its blob: one range request for a run of adjacent spans, each span
 * checked against its zTOC digest, then decoded; a span that failed is fetched again alone.
 */
export class SpanFetcher {
  private readonly layout: LayerSpans;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: number;
  private readonly fetchDeadlineMs: number;

  constructor(
    private readonly options: Pick<
      SpanManagerOptions,
      'layerDigest' | 'layout' | 'blob' | 'metrics' | 'maxAttempts' | 'retryDelayMs' | 'fetchDeadlineMs'
    >,
    private readonly hooks: SpanFetcherHooks,
  ) {
    this.layout = options.layout;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 3);
    this.retryDelayMs = options.retryDelayMs ?? 50;
    // AbortSignal.timeout takes 1 ms .. 2^31-1 ms; outside that every fetch would fail at once.
    this.fetchDeadlineMs = Math.min(Math.max(1, options.fetchDeadlineMs ?? 30_000), 2 ** 31 - 1);
  }

  /**
   * Fetches `ids` (adjacent) with one request, then refetches each span that failed, alone, up
   * to `maxAttempts` attempts in total. Resolves with every span's decoded bytes, or rejects
   * when one span could not be had.
   */
  async fetch(ids: number[], priority: FetchPriority): Promise<Map<number, Uint8Array>> {
    const done = new Map<number, Uint8Array>();
    let lastError: unknown;
    let todo = ids;
    const deadline = AbortSignal.timeout(this.fetchDeadlineMs);
    // Every request of this fetch ends at the deadline or when the layer closes, whichever comes first.
    const signal = AbortSignal.any([deadline, this.hooks.closed]);
    for (let attempt = 1; attempt <= this.maxAttempts && todo.length > 0 && !signal.aborted; attempt++) {
      // The pause ends early when the signal aborts (checked next).
      if (attempt > 1) await sleep(this.retryDelayMs * (attempt - 1), undefined, { signal }).catch(() => {});
      if (signal.aborted) break;
      const groups = attempt === 1 ? [todo] : todo.map((id) => [id]);
      const results = await Promise.allSettled(
        groups.map((group) => this.fetchGroup(group, priority, done, signal)),
      );
      for (const r of results) if (r.status === 'rejected') lastError = r.reason;
      todo = ids.filter((id) => !done.has(id));
    }
    if (todo.length > 0) {
      if (this.hooks.closed.aborted)
        throw new LazyFsError('LAZYFS_LAYER_CLOSED', 'the layer was closed while a span was fetched');
      if (deadline.aborted) {
        throw new LazyFsError(
          'LAZYFS_SPAN_FETCH_FAILED',
          `span ${todo[0]} of layer ${this.options.layerDigest} could not be fetched within ${this.fetchDeadlineMs} ms (the registry does not answer); the next read tries again`,
          { cause: lastError },
        );
      }
      if (lastError instanceof LazyFsError) throw lastError; // verify/decode failures keep their code
      throw new LazyFsError(
        'LAZYFS_SPAN_FETCH_FAILED',
        `could not fetch span ${todo[0]} of layer ${this.options.layerDigest} after ${this.maxAttempts} attempts: ${String(lastError)}`,
        { cause: lastError },
      );
    }
    return done;
  }

  /** One range request for adjacent spans; verified spans go into `done`, the rest throw. */
  private async fetchGroup(
    ids: number[],
    priority: FetchPriority,
    done: Map<number, Uint8Array>,
    signal: AbortSignal,
  ): Promise<void> {
    const start = this.layout.compressedRange(ids[0]!).start;
    const end = this.layout.compressedRange(ids[ids.length - 1]!).end;
    const began = performance.now();
    let bytes: Uint8Array;
    try {
      // The reader is asked to stop at the deadline or close; one that does not is left behind all the same.
      bytes = await untilAborted(this.options.blob.readRange(start, end, { signal }), signal);
      if (bytes.byteLength !== end - start) {
        throw new Error(`got ${bytes.byteLength} bytes for range [${start}, ${end}) of ${end - start}`);
      }
    } catch (err) {
      this.hooks.counters.fetchErrors++;
      this.options.metrics.onFetchError(err);
      throw new LazyFsError(
        'LAZYFS_SPAN_FETCH_FAILED',
        `range request for spans ${ids[0]}..${ids.at(-1)} failed: ${err}`,
        {
          cause: err,
        },
      );
    }
    this.hooks.counters.fetches++;
    this.hooks.counters.bytesFetched += bytes.byteLength;
    this.options.metrics.onSpanFetch(bytes.byteLength, performance.now() - began, priority);
    let failure: unknown;
    await Promise.all(
      ids.map(async (id) => {
        const range = this.layout.compressedRange(id);
        const compressed = bytes.subarray(range.start - start, range.end - start);
        try {
          done.set(id, await this.verifyAndDecode(id, compressed, priority));
        } catch (err) {
          failure = err;
        }
      }),
    );
    if (failure) throw failure;
  }

  private async verifyAndDecode(
    spanId: number,
    compressed: Uint8Array,
    priority: FetchPriority,
  ): Promise<Uint8Array> {
    const expected = this.layout.digest(spanId);
    const actual = await sha256(compressed);
    if (actual !== expected) {
      this.hooks.counters.verifyFailures++;
      this.options.metrics.onVerifyFailure(spanId);
      throw new LazyFsError(
        'LAZYFS_SPAN_VERIFY_FAILED',
        `span ${spanId} of layer ${this.options.layerDigest} has digest ${actual}, the zTOC says ${expected}; the registry served different bytes`,
      );
    }
    let decoded: Uint8Array;
    try {
      // ztoc's decode yields exactly the span's uncompressed range, or throws.
      decoded = await this.layout.decode(spanId, compressed);
    } catch (err) {
      throw new LazyFsError(
        'LAZYFS_SPAN_DECODE_FAILED',
        `span ${spanId} of layer ${this.options.layerDigest} could not be decoded: ${messageOf(err)}`,
        { cause: err },
      );
    }
    this.hooks.onVerified(spanId, decoded, priority);
    return decoded;
  }
}

async function sha256(bytes: Uint8Array): Promise<string> {
  // WebCrypto digests run on libuv's thread pool: hashing a span never blocks the event loop.
  const digest = await webcrypto.subtle.digest('SHA-256', bytes);
  return `sha256:${Buffer.from(digest).toString('hex')}`;
}
