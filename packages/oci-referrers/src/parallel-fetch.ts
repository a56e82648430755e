import type { BlobRangeReader } from './blob-range.js';
import { abortedBy } from './deadline.js';
import { RegistryError } from './errors.js';

const DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024;
const DEFAULT_CONCURRENCY = 4;

interface Waiter {
  grant: (release: () => void) => void;
  onAbort: () => void;
}

/**
 * A shared cap on range requests in flight (one per daemon = global limit, one per image = per-image limit).
 * Slots are handed out first come, first served, so a blob that started waiting early is not starved by
 * later ones.
 */
export class RequestLimit {
  /** The cap; `Infinity` when unlimited. */
  readonly max: number;
  private held = 0;
  private readonly waiters: Waiter[] = [];

  /** `max <= 0` or `Infinity` means unlimited (the slots are still counted in `inFlight`). */
  constructor(max: number) {
    if (Number.isNaN(max) || (Number.isFinite(max) && !Number.isInteger(max))) {
      throw new RegistryError(
        'REGISTRY_RANGE_INVALID',
        `RequestLimit max must be an integer or Infinity, not ${max}`,
      );
    }
    this.max = max <= 0 ? Number.POSITIVE_INFINITY : max;
  }

  /** Slots held right now. */
  get inFlight(): number {
    return this.held;
  }

  /**
   * Waits for a slot; the returned function gives it back (calling it again does nothing). Rejects with the
   * signal's reason if it aborts first; a slot is then never taken.
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.held < this.max) {
      this.held++;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: (release) => {
          signal?.removeEventListener('abort', waiter.onAbort);
          resolve(release);
        },
        onAbort: () => {
          const at = this.waiters.indexOf(waiter);
          if (at >= 0) this.waiters.splice(at, 1);
          reject(signal?.reason);
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // Hand the slot straight to the next waiter: `held` stays, and nobody can take it in between.
      const next = this.waiters.shift();
      if (next) next.grant(this.releaser());
      else this.held--;
    };
  }
}

export interface ParallelFetchOptions {
  /** Blob size in bytes (from the descriptor). */
  size: number;
  /** Bytes per range request (default 8 MiB). A blob no larger than one chunk is a single request. */
  chunkSize?: number;
  /** Range requests of this blob in flight at most (default 4). */
  concurrency?: number;
  /**
   * Size of the first request (default `chunkSize`); the ones after it double up to `chunkSize`.
   * A small first chunk lets a streaming consumer start while the big ones are still coming.
   */
  firstChunkSize?: number;
  /** Further caps every request must also hold (e.g. [perImage, global]); acquired in array order, released together. */
  limits?: readonly RequestLimit[];
  signal?: AbortSignal;
}

interface Plan {
  size: number;
  /** Where each chunk starts, and the blob's size last: chunk i is [bounds[i], bounds[i + 1]). */
  bounds: number[];
  concurrency: number;
  count: number;
  limits: readonly RequestLimit[];
  signal?: AbortSignal;
}

/**
 * Yields the blob's bytes in order; at most `concurrency` chunks are fetched or buffered ahead of the consumer.
 *
 * No request of this blob outlives the iteration: on an error, an abort or the consumer stopping early, the
 * other requests are aborted and awaited (the reader must honour its signal, as `Repository.blobReader`
 * does) before the iteration settles, so every limit slot is back by then. Each iteration fetches anew.
 */
export function fetchBlobParallel(
  reader: BlobRangeReader,
  options: ParallelFetchOptions,
): AsyncIterable<Uint8Array> {
  const plan = planOf(options);
  return { [Symbol.asyncIterator]: () => iterate(reader, plan) };
}

/** Checks the options now, so a mistake fails at the call and not at the first read. */
function planOf(options: ParallelFetchOptions): Plan {
  const { size, chunkSize = DEFAULT_CHUNK_SIZE, concurrency = DEFAULT_CONCURRENCY } = options;
  const check = (name: string, value: number, min: number) => {
    if (!Number.isSafeInteger(value) || value < min) {
      throw new RegistryError(
        'REGISTRY_RANGE_INVALID',
        `fetchBlobParallel: ${name} must be an integer >= ${min}, not ${value}`,
      );
    }
  };
  const firstChunkSize = options.firstChunkSize ?? chunkSize;
  check('size', size, 0);
  check('chunkSize', chunkSize, 1);
  check('concurrency', concurrency, 1);
  check('firstChunkSize', firstChunkSize, 1);
  const bounds = [0];
  for (
    let at = 0, next = Math.min(firstChunkSize, chunkSize);
    at < size;
    next = Math.min(next * 2, chunkSize)
  ) {
    at = Math.min(size, at + next);
    bounds.push(at);
  }
  return {
    size,
    bounds,
    concurrency,
    count: bounds.length - 1,
    limits: options.limits ?? [],
    signal: options.signal,
  };
}

async function* iterate(reader: BlobRangeReader, plan: Plan): AsyncGenerator<Uint8Array> {
  const window = new ChunkWindow(reader, plan);
  try {
    for (let index = 0; index < plan.count; index++) {
      // Only when the consumer asks for chunk `index` may chunks up to `index + concurrency - 1` start:
      // a consumer that stops pulling stops new requests.
      window.fill(index);
      yield await window.take(index);
    }
  } finally {
    await window.close();
  }
}

/** The chunks of one blob that are requested or buffered but not yet taken by the consumer. */
class ChunkWindow {
  private readonly controller = new AbortController();
  private readonly chunks = new Map<number, Promise<Uint8Array>>();
  private next = 0;
  private readonly unlinkCaller: () => void;

  constructor(
    private readonly reader: BlobRangeReader,
    private readonly plan: Plan,
  ) {
    const caller = plan.signal;
    const onCallerAbort = () => this.abort(abortedBy(this.describe(), caller?.reason));
    if (caller?.aborted) onCallerAbort();
    else caller?.addEventListener('abort', onCallerAbort, { once: true });
    this.unlinkCaller = () => caller?.removeEventListener('abort', onCallerAbort);
  }

  /** Starts the chunks from `index` on that fit in the window; nothing once anything failed. */
  fill(index: number): void {
    const end = Math.min(this.plan.count, index + this.plan.concurrency);
    while (this.next < end && !this.controller.signal.aborted) {
      const chunk = this.fetchChunk(this.next);
      // Failures reach the consumer through `take`; this only marks them handled meanwhile.
      chunk.catch(() => {});
      this.chunks.set(this.next, chunk);
      this.next++;
    }
  }

  async take(index: number): Promise<Uint8Array> {
    const chunk = this.chunks.get(index);
    if (!chunk) throw this.controller.signal.reason;
    try {
      // Any failure aborts the blob, so this wait ends then too (the reader honours its signal).
      const bytes = await chunk;
      this.chunks.delete(index);
      return bytes;
    } catch (error) {
      // Other requests fail with ABORTED because of the first failure: report that one.
      throw this.controller.signal.aborted ? this.controller.signal.reason : error;
    }
  }

  /** Aborts what is still running and waits for it, so every limit slot is back when this resolves. */
  async close(): Promise<void> {
    this.unlinkCaller();
    if (this.chunks.size === 0) return; // the usual end: everything was taken
    this.abort(new RegistryError('REGISTRY_ABORTED', `${this.describe()}: the consumer stopped reading`));
    await Promise.allSettled(this.chunks.values());
  }

  private abort(reason: unknown): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  private async fetchChunk(index: number): Promise<Uint8Array> {
    const { signal } = this.controller;
    const start = this.plan.bounds[index]!;
    const end = this.plan.bounds[index + 1]!;
    const release = await acquireAll(this.plan.limits, signal);
    try {
      const bytes = await this.reader.readRange(start, end, { signal });
      if (bytes.length !== end - start) {
        throw new RegistryError(
          'REGISTRY_PROTOCOL',
          `${this.describe()}: the range [${start}, ${end}) came back with ${bytes.length} bytes instead of ${end - start}; check that the descriptor's size is the blob's real size, else the registry served a wrong range — fetch the blob again`,
        );
      }
      return bytes;
    } catch (error) {
      // The first failure aborts the whole blob at once, not only when the consumer reaches this chunk, and
      // before the slot goes back: a chunk waiting for it must not start a request that is of no use now.
      this.abort(error);
      throw error;
    } finally {
      // Right after the request, not when the consumer takes the chunk: a slow consumer of one blob must
      // not hold slots that other blobs sharing the limits wait for.
      release();
    }
  }

  private describe(): string {
    return `parallel fetch of a ${this.plan.size}-byte blob`;
  }
}

/** Takes a slot of every limit in array order (a fixed order cannot deadlock); on failure gives back all. */
async function acquireAll(limits: readonly RequestLimit[], signal: AbortSignal): Promise<() => void> {
  const releases: (() => void)[] = [];
  const releaseAll = () => {
    for (const release of releases.splice(0).reverse()) release();
  };
  try {
    for (const limit of limits) {
      releases.push(await limit.acquire(signal));
      // A slot granted in the same turn as the abort: don't start a request with an aborted signal.
      signal.throwIfAborted();
    }
  } catch (error) {
    releaseAll();
    throw error;
  }
  return releaseAll;
}
