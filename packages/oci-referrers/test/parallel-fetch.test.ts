import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { seededRandom, startRegistry, type TestRegistry } from '@soci-ts/testing';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BlobRangeReader,
  fetchBlobParallel,
  RegistryClient,
  RegistryError,
  RequestLimit,
} from '../src/index.js';

/** One readRange call of a ControlledReader, settled by the test (or by its signal aborting). */
interface Call {
  start: number;
  end: number;
  signal?: AbortSignal;
  settled: boolean;
  resolve(bytes?: Uint8Array): void;
  reject(error: unknown): void;
}

/** A reader whose answers the test gives by hand; an abort rejects a call with the signal's reason. */
function controlledReader(blob: Uint8Array): BlobRangeReader & { calls: Call[] } {
  const calls: Call[] = [];
  return {
    calls,
    size: blob.length,
    readRange(start, end, options) {
      return new Promise<Uint8Array>((resolve, reject) => {
        const signal = options?.signal;
        const call: Call = {
          start,
          end,
          signal,
          settled: false,
          resolve: (bytes = blob.slice(start, end)) => {
            call.settled = true;
            resolve(bytes);
          },
          reject: (error) => {
            call.settled = true;
            reject(error);
          },
        };
        calls.push(call);
        // Like undici, the rejection comes a little after the abort, not in the same turn.
        const onAbort = () => setTimeout(() => call.settled || call.reject(signal?.reason), 2);
        if (signal?.aborted) onAbort();
        else signal?.addEventListener('abort', onAbort, { once: true });
      });
    },
  };
}

/** Lets every pending timer, immediate and microtask of the fetch run. */
const settle = () => sleep(15);

async function collect(iterable: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of iterable) parts.push(part);
  return Buffer.concat(parts);
}

/** Fails instead of hanging when the promise does not settle in time (a deadlock). */
function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Some answers in the same turn, some on the next, some a millisecond or two later: many orders. */
function randomDelay(next: () => number): Promise<void> {
  const r = next();
  if (r < 0.3) return Promise.resolve();
  if (r < 0.6) return new Promise((resolve) => setImmediate(resolve));
  return sleep(1 + Math.floor(r * 3));
}

describe('fetchBlobParallel (property)', () => {
  const blobSpec = fc.integer({ min: 1, max: 4096 }).chain((chunkSize) =>
    fc.record({
      chunkSize: fc.constant(chunkSize),
      size: fc.integer({ min: 0, max: chunkSize * 24 }),
      concurrency: fc.integer({ min: 1, max: 6 }),
      firstChunkSize: fc.option(fc.integer({ min: 1, max: chunkSize * 2 }), { nil: undefined }),
    }),
  );

  /** The ranges the plan asks for: the first of firstChunkSize, then doubling up to chunkSize. */
  function expectedRanges(spec: { size: number; chunkSize: number; firstChunkSize?: number }): number[][] {
    const ranges: number[][] = [];
    let length = Math.min(spec.firstChunkSize ?? spec.chunkSize, spec.chunkSize);
    for (let at = 0; at < spec.size; at += length, length = Math.min(length * 2, spec.chunkSize)) {
      ranges.push([at, Math.min(spec.size, at + length)]);
    }
    return ranges;
  }

  it('yields every blob in order, within its concurrency and the shared limits, and gives every slot back', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(blobSpec, { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer(),
        async (specs, perImageMax, globalMax, seed) => {
          const next = seededRandom(seed);
          // Blobs 0 and 2 belong to image 0, blob 1 to image 1: two per-image limits under one global one.
          const images = [new RequestLimit(perImageMax), new RequestLimit(perImageMax)];
          const global = new RequestLimit(globalMax);
          const imageRequests = [0, 0];
          let globalRequests = 0;
          const fetches = specs.map(async (spec, b) => {
            const blob = randomBytes(spec.size);
            const image = b % 2;
            let inFlight = 0;
            let issued = 0;
            let received = 0;
            const asked: number[][] = [];
            const reader: BlobRangeReader = {
              async readRange(start, end) {
                issued++;
                asked.push([start, end]);
                inFlight++;
                imageRequests[image]!++;
                globalRequests++;
                expect(inFlight).toBeLessThanOrEqual(spec.concurrency);
                expect(issued - received).toBeLessThanOrEqual(spec.concurrency);
                expect(imageRequests[image]).toBeLessThanOrEqual(perImageMax);
                expect(globalRequests).toBeLessThanOrEqual(globalMax);
                await randomDelay(next);
                inFlight--;
                imageRequests[image]!--;
                globalRequests--;
                return blob.slice(start, end);
              },
            };
            const parts: Uint8Array[] = [];
            for await (const part of fetchBlobParallel(reader, {
              size: spec.size,
              chunkSize: spec.chunkSize,
              concurrency: spec.concurrency,
              firstChunkSize: spec.firstChunkSize,
              limits: [images[image]!, global],
            })) {
              received++;
              parts.push(part);
              await randomDelay(next); // a consumer that is sometimes slower than the registry
            }
            expect(Buffer.concat(parts).equals(blob)).toBe(true);
            // Requests start in order: the ranges asked for are the plan's, in order.
            expect(asked).toEqual(expectedRanges(spec));
          });
          await within(10_000, Promise.all(fetches), 'the parallel fetches');
          expect([images[0]!.inFlight, images[1]!.inFlight, global.inFlight]).toEqual([0, 0, 0]);
        },
      ),
      { numRuns: 80 },
    );
  });
});

describe('fetchBlobParallel', () => {
  it('a blob of size 0 yields nothing and sends no request', async () => {
    const reader = controlledReader(new Uint8Array(0));
    expect((await collect(fetchBlobParallel(reader, { size: 0 }))).length).toBe(0);
    expect(reader.calls).toHaveLength(0);
  });

  it('a blob no larger than one chunk is one request for all of it', async () => {
    const blob = randomBytes(1000);
    const reader = controlledReader(blob);
    const result = collect(fetchBlobParallel(reader, { size: 1000, chunkSize: 1000, concurrency: 4 }));
    await settle();
    expect(reader.calls.map((c) => [c.start, c.end])).toEqual([[0, 1000]]);
    reader.calls[0]!.resolve();
    expect((await result).equals(blob)).toBe(true);
  });

  it('yields in order when later chunks arrive first', async () => {
    const blob = randomBytes(40);
    const reader = controlledReader(blob);
    const result = collect(fetchBlobParallel(reader, { size: 40, chunkSize: 10, concurrency: 4 }));
    await settle();
    expect(reader.calls).toHaveLength(4);
    for (const call of [...reader.calls].reverse()) call.resolve();
    expect((await result).equals(blob)).toBe(true);
  });

  it('rejects bad options at the call with RANGE_INVALID', () => {
    const reader = controlledReader(new Uint8Array(0));
    for (const options of [
      { size: -1 },
      { size: 1.5 },
      { size: 10, chunkSize: 0 },
      { size: 10, concurrency: 0 },
    ]) {
      expect(() => fetchBlobParallel(reader, options)).toThrow(
        expect.objectContaining({ code: 'REGISTRY_RANGE_INVALID' }) as Error,
      );
    }
  });
});

describe('backpressure', () => {
  it('a consumer that does not pull stops new requests at `concurrency`', async () => {
    const blob = randomBytes(1000);
    let requests = 0;
    const reader: BlobRangeReader = {
      async readRange(start, end) {
        requests++;
        return blob.slice(start, end);
      },
    };
    const iterator = fetchBlobParallel(reader, { size: 1000, chunkSize: 10, concurrency: 3 })[
      Symbol.asyncIterator
    ]();
    await settle();
    expect(requests).toBe(0); // nothing before the first pull
    expect(Buffer.from((await iterator.next()).value as Uint8Array).equals(blob.subarray(0, 10))).toBe(true);
    await settle();
    expect(requests).toBe(3);
    await iterator.next();
    await settle();
    expect(requests).toBe(4);
    await iterator.return?.();
    await settle();
    expect(requests).toBe(4);
  });

  it('buffered chunks hold no limit slot: a stalled consumer of one blob does not block another blob', async () => {
    const global = new RequestLimit(1);
    const blobA = randomBytes(100);
    const blobB = randomBytes(100);
    const reader = (blob: Uint8Array): BlobRangeReader => ({
      readRange: async (start, end) => blob.slice(start, end),
    });
    const a = fetchBlobParallel(reader(blobA), {
      size: 100,
      chunkSize: 10,
      concurrency: 4,
      limits: [global],
    })[Symbol.asyncIterator]();
    await a.next(); // then A's consumer stalls with up to 3 chunks buffered
    await settle();
    const b = collect(
      fetchBlobParallel(reader(blobB), { size: 100, chunkSize: 10, concurrency: 4, limits: [global] }),
    );
    expect((await within(2000, b, 'blob B behind a stalled blob A')).equals(blobB)).toBe(true);
    const rest: Uint8Array[] = [];
    for (let r = await a.next(); !r.done; r = await a.next()) rest.push(r.value);
    expect(Buffer.concat(rest).equals(blobA.subarray(10))).toBe(true);
    expect(global.inFlight).toBe(0);
  });
});

describe('errors, abort and early stop', () => {
  it('a failed chunk rejects with its error at once, aborts the other requests and frees every slot', async () => {
    const limit = new RequestLimit(10);
    const reader = controlledReader(randomBytes(100));
    const iterator = fetchBlobParallel(reader, { size: 100, chunkSize: 10, concurrency: 4, limits: [limit] })[
      Symbol.asyncIterator
    ]();
    const first = iterator.next();
    await settle();
    expect(reader.calls).toHaveLength(4);
    const failure = new RegistryError('REGISTRY_UNAVAILABLE', 'boom');
    reader.calls[2]!.reject(failure); // a later chunk fails while the consumer waits for chunk 0
    await expect(first).rejects.toBe(failure);
    expect(reader.calls.every((c) => c.settled)).toBe(true);
    expect(reader.calls.filter((c) => c !== reader.calls[2]).every((c) => c.signal?.aborted)).toBe(true);
    expect(limit.inFlight).toBe(0);
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    await settle();
    expect(reader.calls).toHaveLength(4);
  });

  it('a failure while the consumer holds a chunk surfaces at its next pull; chunks waiting for a slot give up', async () => {
    const limit = new RequestLimit(1);
    const reader = controlledReader(randomBytes(100));
    const iterator = fetchBlobParallel(reader, { size: 100, chunkSize: 10, concurrency: 4, limits: [limit] })[
      Symbol.asyncIterator
    ]();
    const first = iterator.next();
    await settle();
    reader.calls[0]!.resolve();
    await first;
    await settle();
    expect(reader.calls).toHaveLength(2); // the limit lets one through; chunks 2 and 3 wait for the slot
    const failure = new Error('connection reset');
    reader.calls[1]!.reject(failure);
    await settle();
    expect(limit.inFlight).toBe(0);
    await expect(iterator.next()).rejects.toBe(failure);
    expect(reader.calls).toHaveLength(2);
    // The waiters left the queue: the slot is free for someone else at once.
    const release = await within(100, limit.acquire(), 'a free slot');
    release();
    expect(limit.inFlight).toBe(0);
  });

  it('a chunk of the wrong length is a PROTOCOL error naming the range', async () => {
    const limit = new RequestLimit(2);
    const reader = controlledReader(randomBytes(25));
    const result = collect(fetchBlobParallel(reader, { size: 30, chunkSize: 10, limits: [limit] }));
    await settle();
    for (const call of reader.calls) call.resolve(); // the last range is clamped to 5 bytes: the size was wrong
    await settle();
    for (const call of reader.calls.slice(2)) call.resolve();
    const error = (await result.catch((e: unknown) => e)) as RegistryError;
    expect(error).toBeInstanceOf(RegistryError);
    expect(error.code).toBe('REGISTRY_PROTOCOL');
    expect(error.message).toContain('[20, 30)');
    expect(error.message).toContain('5 bytes instead of 10');
    expect(limit.inFlight).toBe(0);
  });

  it('the caller aborting fails the iteration with ABORTED, aborts the requests and frees every slot', async () => {
    const limits = [new RequestLimit(3), new RequestLimit(2)];
    const reader = controlledReader(randomBytes(100));
    const controller = new AbortController();
    const result = collect(
      fetchBlobParallel(reader, {
        size: 100,
        chunkSize: 10,
        concurrency: 4,
        limits,
        signal: controller.signal,
      }),
    );
    await settle();
    expect(reader.calls).toHaveLength(2); // two hold both slots, one holds the first and waits for the second
    controller.abort();
    const error = (await result.catch((e: unknown) => e)) as RegistryError;
    expect(error).toBeInstanceOf(RegistryError);
    expect(error.code).toBe('REGISTRY_ABORTED');
    expect(reader.calls.every((c) => c.signal?.aborted && c.settled)).toBe(true);
    expect(limits.map((l) => l.inFlight)).toEqual([0, 0]);
    await settle();
    expect(reader.calls).toHaveLength(2);
  });

  it('a RegistryError abort reason (an enclosing deadline) passes through as is', async () => {
    const reader = controlledReader(randomBytes(100));
    const timeout = new RegistryError('REGISTRY_TIMEOUT', 'deadline');
    const result = collect(
      fetchBlobParallel(reader, { size: 100, chunkSize: 10, signal: AbortSignal.timeout(20) }),
    ).catch((e: unknown) => e);
    expect(((await result) as RegistryError).code).toBe('REGISTRY_ABORTED'); // a DOMException reason is wrapped
    const controller = new AbortController();
    const second = collect(
      fetchBlobParallel(reader, { size: 100, chunkSize: 10, signal: controller.signal }),
    );
    await settle();
    controller.abort(timeout);
    await expect(second).rejects.toBe(timeout);
  });

  it('an abort while the consumer holds a chunk aborts the requests at once, not at the next pull', async () => {
    const limit = new RequestLimit(0);
    const reader = controlledReader(randomBytes(100));
    const controller = new AbortController();
    const iterator = fetchBlobParallel(reader, {
      size: 100,
      chunkSize: 10,
      concurrency: 4,
      limits: [limit],
      signal: controller.signal,
    })[Symbol.asyncIterator]();
    const first = iterator.next();
    await settle();
    reader.calls[0]!.resolve();
    await first;
    await settle();
    expect(limit.inFlight).toBe(3);
    controller.abort();
    await settle();
    expect(reader.calls.slice(1).every((c) => c.signal?.aborted && c.settled)).toBe(true);
    expect(limit.inFlight).toBe(0);
    await expect(iterator.next()).rejects.toMatchObject({ code: 'REGISTRY_ABORTED' });
  });

  it('an already aborted signal sends no request', async () => {
    const reader = controlledReader(randomBytes(100));
    const result = collect(fetchBlobParallel(reader, { size: 100, signal: AbortSignal.abort() }));
    await expect(result).rejects.toMatchObject({ code: 'REGISTRY_ABORTED' });
    expect(reader.calls).toHaveLength(0);
  });

  it('breaking out of the loop aborts the requests in flight and frees every slot before the loop ends', async () => {
    const limits = [new RequestLimit(2), new RequestLimit(0)];
    const blob = randomBytes(100);
    const reader = controlledReader(blob);
    const answer = setInterval(() => reader.calls[0]?.settled || reader.calls[0]?.resolve(), 1);
    try {
      for await (const part of fetchBlobParallel(reader, {
        size: 100,
        chunkSize: 10,
        concurrency: 4,
        limits,
      })) {
        expect(Buffer.from(part).equals(blob.subarray(0, 10))).toBe(true);
        await settle(); // chunks 1 and 2 hold the slots (2 took chunk 0's), chunk 3 waits for one
        break;
      }
    } finally {
      clearInterval(answer);
    }
    expect(reader.calls).toHaveLength(3);
    expect(reader.calls.slice(1).every((c) => c.signal?.aborted && c.settled)).toBe(true);
    expect(limits.map((l) => l.inFlight)).toEqual([0, 0]);
  });

  it('return() on the iterator does the same', async () => {
    const limit = new RequestLimit(4);
    const reader = controlledReader(randomBytes(100));
    const iterator = fetchBlobParallel(reader, { size: 100, chunkSize: 10, limits: [limit] })[
      Symbol.asyncIterator
    ]();
    const first = iterator.next();
    await settle();
    reader.calls[0]!.resolve();
    await first;
    await iterator.return?.();
    expect(reader.calls.slice(1).every((c) => c.signal?.aborted && c.settled)).toBe(true);
    expect(limit.inFlight).toBe(0);
  });
});

describe('RequestLimit', () => {
  it('max <= 0 or Infinity is unlimited, still counted', async () => {
    for (const max of [0, -1, Number.POSITIVE_INFINITY]) {
      const limit = new RequestLimit(max);
      expect(limit.max).toBe(Number.POSITIVE_INFINITY);
      const releases = await Promise.all(Array.from({ length: 100 }, () => limit.acquire()));
      expect(limit.inFlight).toBe(100);
      for (const release of releases) release();
      expect(limit.inFlight).toBe(0);
    }
  });

  it('rejects a max that is not an integer', () => {
    expect(() => new RequestLimit(1.5)).toThrow(
      expect.objectContaining({ code: 'REGISTRY_RANGE_INVALID' }) as Error,
    );
    expect(() => new RequestLimit(Number.NaN)).toThrow(RegistryError);
  });

  it('hands slots out first come first served; releasing twice frees one slot', async () => {
    const limit = new RequestLimit(1);
    const order: number[] = [];
    const first = await limit.acquire();
    const waiting = [1, 2, 3].map((n) =>
      limit.acquire().then((release) => {
        order.push(n);
        return release;
      }),
    );
    await settle();
    expect(order).toEqual([]);
    first();
    first();
    await settle();
    expect(order).toEqual([1]);
    expect(limit.inFlight).toBe(1);
    (await waiting[0]!)();
    (await waiting[1]!)();
    (await waiting[2]!)();
    expect(order).toEqual([1, 2, 3]);
    expect(limit.inFlight).toBe(0);
  });

  it('an aborted waiter rejects with the reason and never takes a slot', async () => {
    const limit = new RequestLimit(1);
    const held = await limit.acquire();
    const controller = new AbortController();
    const waiter = limit.acquire(controller.signal);
    controller.abort(new Error('gave up'));
    await expect(waiter).rejects.toThrow('gave up');
    held();
    expect(limit.inFlight).toBe(0);
    await expect(limit.acquire(AbortSignal.abort(new Error('early')))).rejects.toThrow('early');
    expect(limit.inFlight).toBe(0);
  });
});

describe('against a real registry', () => {
  let registry: TestRegistry;
  let client: RegistryClient;

  beforeAll(async () => {
    registry = await startRegistry();
    client = new RegistryClient();
  });

  afterAll(async () => {
    await client?.close();
    await registry?.stop();
  });

  it('fetches a pushed blob of a few MiB in 256 KiB ranges, byte for byte', async () => {
    const repo = client.repository(`${registry.host}/test/parallel`);
    const blob = randomBytes(3 * 1024 * 1024 + 12_345);
    const descriptor = await repo.pushBlob(blob);
    const global = new RequestLimit(3);
    let requests = 0;
    const inner = repo.blobReader(descriptor);
    const reader: BlobRangeReader = {
      readRange: (start, end, options) => {
        requests++;
        return inner.readRange(start, end, options);
      },
    };
    const bytes = await collect(
      fetchBlobParallel(reader, {
        size: descriptor.size,
        chunkSize: 256 * 1024,
        concurrency: 4,
        limits: [global],
      }),
    );
    expect(bytes.equals(blob)).toBe(true);
    expect(requests).toBe(13);
    expect(global.inFlight).toBe(0);
  });
});
