/**
 * Builds zTOCs on worker threads, one layer per worker, so layers decode on all cores while
 * the main thread streams and hashes. The main thread keeps at most MAX_INFLIGHT bytes
 * queued per worker (flow control by acknowledgements).
 */
import { Worker } from 'node:worker_threads';
import { SociError } from '@soci-ts/errors';
import type { BuildZtocOptions } from '@soci-ts/ztoc';
import type { FromWorker, ToWorker } from './worker-protocol.js';
import type { ZtocBuilder } from './ztoc-builder.js';

const MAX_INFLIGHT = 16 * 1024 * 1024;

export interface WorkerPool {
  build: ZtocBuilder;
  close(): Promise<void>;
}

/** `workerFile`: a JS file whose only job is to call runZtocWorker(). */
export function createWorkerPool(workerFile: string | URL, size: number): WorkerPool {
  const idle: Worker[] = [];
  const all: Worker[] = [];
  const waiting: ((w: Worker) => void)[] = [];

  const acquire = (): Promise<Worker> => {
    const w = idle.pop();
    if (w) return Promise.resolve(w);
    if (all.length < size) {
      const worker = new Worker(workerFile);
      worker.unref();
      all.push(worker);
      return Promise.resolve(worker);
    }
    return new Promise((resolve) => waiting.push(resolve));
  };
  const release = (w: Worker) => {
    const next = waiting.shift();
    if (next) next(w);
    else idle.push(w);
  };

  const build: ZtocBuilder = async (chunks, options: BuildZtocOptions) => {
    const worker = await acquire();
    let inflight = 0;
    let resume: (() => void) | undefined;
    let settle!: { resolve: (bytes: Uint8Array) => void; reject: (err: Error) => void };
    const result = new Promise<Uint8Array>((resolve, reject) => {
      settle = { resolve, reject };
    });
    const onMessage = (m: FromWorker) => {
      if (m.type === 'ack') {
        inflight -= m.bytes;
        if (inflight <= MAX_INFLIGHT) resume?.();
      } else if (m.type === 'done') settle.resolve(m.ztoc);
      else settle.reject(workerFailure(m));
    };
    const onError = (err: Error) => settle.reject(err);
    worker.on('message', onMessage);
    worker.on('error', onError);
    const send = (message: ToWorker, transfer: ArrayBuffer[] = []) => worker.postMessage(message, transfer);
    let failed = false;
    let clean = false;
    result.catch(() => {
      failed = true;
      resume?.();
    });
    try {
      send({ type: 'start', options });
      for await (const chunk of chunks) {
        if (failed) break;
        // A copy owns its memory, so it can be moved to the worker without touching the
        // pooled buffer the chunk may live in.
        const copy = new Uint8Array(chunk);
        inflight += copy.length;
        send({ type: 'chunk', chunk: copy }, [copy.buffer]);
        if (inflight > MAX_INFLIGHT) {
          await new Promise<void>((r) => {
            resume = r;
          });
        }
        resume = undefined;
      }
      send({ type: 'end' });
      const bytes = await result;
      clean = true;
      return { bytes };
    } finally {
      worker.off('message', onMessage);
      worker.off('error', onError);
      if (!clean) {
        // A worker whose job failed (or whose input failed) may hold a half-fed build: replace it.
        all.splice(all.indexOf(worker), 1);
        void worker.terminate();
        const next = waiting.shift();
        if (next) acquire().then(next);
      } else release(worker);
    }
  };

  return {
    build,
    async close() {
      await Promise.all(all.map((w) => w.terminate()));
    },
  };
}

/**
 * A worker's failure as this thread sees it: errors do not cross threads with their class, so a
 * coded one (ZTOC_*, GZIP_*) comes back as a SociError with the same code and message, which
 * `findCode` / `hasCode` find as they would the original.
 */
function workerFailure(m: Extract<FromWorker, { type: 'error' }>): Error {
  return m.code === undefined ? new Error(m.message) : new SociError(m.code, m.message);
}
