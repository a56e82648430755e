import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker } from 'node:worker_threads';
import { UnpackError, type UnpackErrorCode } from './errors.js';
import {
  classify,
  type ExtractionOptions,
  type ExtractionResult,
  TarExtraction,
} from './layer-extraction.js';

/** A TarExtraction seen from the thread that streams and decodes the blob. */
export interface ExtractionHandle {
  /** The next tar bytes, handed over (the caller must not use the chunk again); resolves when more may come. */
  write(chunk: Uint8Array): Promise<void>;
  end(): Promise<ExtractionResult>;
  /** Stops it; once this resolves nothing writes into the layer root any more. */
  abort(): Promise<void>;
}

/** Replies carry the id of the extraction they belong to: a reused worker may still answer the last one. */
type ToWorker =
  | { type: 'start'; id: number; options: ExtractionOptions }
  | { type: 'chunk'; data: Uint8Array }
  | { type: 'end' }
  | { type: 'abort' };
type FromWorker = { id: number } & (
  | { type: 'ack'; bytes: number }
  | { type: 'done'; result: ExtractionResult }
  | { type: 'failed'; code: UnpackErrorCode; message: string }
);

/** Tar bytes posted to the worker and not written yet: enough that the decoder never waits on it. */
const MAX_QUEUED = 16 << 20;
/** Idle workers kept for the next layer (a worker takes ~30 ms to start). */
const MAX_IDLE = 4;

const WORKER_FILE = fileURLToPath(new URL('./unpack-worker.js', import.meta.url));
const idle: Worker[] = [];
let lastId = 0;

/**
 * Starts an extraction on a worker thread when the built worker file is there (the daemon, the
 * CLI): its file writes are blocking system calls in a row, as GNU tar makes them, which is
 * several times cheaper than a trip through libuv's pool per call and never holds up the
 * caller's event loop. From the sources (unit tests) it runs on this thread.
 */
export function startExtraction(options: ExtractionOptions): ExtractionHandle {
  return existsSync(WORKER_FILE) ? onWorker(options) : inThread(options);
}

/** Starts an idle worker ahead of the first layer (the daemon, at start): its ~50 ms are not on a pull. */
export function prewarmExtraction(): void {
  if (idle.length > 0 || !existsSync(WORKER_FILE)) return;
  const worker = newWorker();
  worker.unref();
  // A worker that dies idle is simply not used: the next layer starts a new one.
  worker.on('error', () => {});
  worker.on('exit', () => {
    const at = idle.indexOf(worker);
    if (at >= 0) idle.splice(at, 1);
  });
  idle.push(worker);
}

function inThread(options: ExtractionOptions): ExtractionHandle {
  const extraction = new TarExtraction(options);
  return {
    write: async (chunk) => extraction.push(chunk),
    end: async () => extraction.end(),
    abort: async () => extraction.abort(),
  };
}

function onWorker(options: ExtractionOptions): ExtractionHandle {
  const worker = idle.pop() ?? newWorker();
  worker.ref();
  const id = ++lastId;
  let queued = 0;
  let resume: (() => void) | undefined;
  let closed = false;
  let settle!: { resolve: (r: ExtractionResult) => void; reject: (e: unknown) => void };
  const finished = new Promise<ExtractionResult>((resolve, reject) => {
    settle = { resolve, reject };
  });
  finished.catch(() => {});
  const release = (reusable: boolean) => {
    closed = true;
    worker.off('message', onMessage);
    worker.off('error', onError);
    worker.off('exit', onExit);
    resume?.();
    if (reusable && idle.length < MAX_IDLE) {
      worker.unref();
      idle.push(worker);
    } else {
      void worker.terminate();
    }
  };
  const onMessage = (m: FromWorker) => {
    if (m.id !== id) return;
    if (m.type === 'ack') {
      queued -= m.bytes;
      if (queued <= MAX_QUEUED) resume?.();
    } else if (m.type === 'done') {
      release(true);
      settle.resolve(m.result);
    } else {
      // The worker answers only after it stopped writing: it may take the next layer.
      release(true);
      settle.reject(new UnpackError(m.code, m.message));
    }
  };
  const onError = (err: Error) => {
    release(false);
    settle.reject(
      new UnpackError('SNAPSHOTTER_WRITE_FAILED', `the unpack worker thread failed: ${err.message}`, {
        cause: err,
      }),
    );
  };
  const onExit = (code: number) => onError(new Error(`it exited with code ${code}`));
  worker.on('message', onMessage);
  worker.on('error', onError);
  worker.on('exit', onExit);
  const post = (message: ToWorker, transfer: ArrayBuffer[] = []) => {
    if (!closed) worker.postMessage(message, transfer);
  };
  post({ type: 'start', id, options });
  return {
    async write(chunk) {
      // Moved to the worker, not copied, when the chunk is all of its buffer (a pipe read's is);
      // the caller never looks at a chunk again once written.
      const owned = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength;
      const data = owned && chunk.buffer instanceof ArrayBuffer ? chunk : new Uint8Array(chunk);
      queued += data.length;
      post({ type: 'chunk', data }, [data.buffer as ArrayBuffer]);
      while (queued > MAX_QUEUED && !closed) {
        await new Promise<void>((resolve) => {
          resume = resolve;
        });
        resume = undefined;
      }
    },
    end() {
      post({ type: 'end' });
      return finished;
    },
    async abort() {
      post({ type: 'abort' });
      await finished.catch(() => undefined);
    },
  };
}

function newWorker(): Worker {
  // execArgv: [] so that no loader or condition of the parent (a test runner's) applies to the bundle.
  return new Worker(WORKER_FILE, { execArgv: [] });
}

/** The worker's side: one extraction at a time, driven by messages (handled in order). */
export function runExtractionWorker(): void {
  if (isMainThread || !parentPort) throw new Error('runExtractionWorker runs on a worker thread');
  const port = parentPort;
  let extraction: TarExtraction | undefined;
  let id = 0;
  const reply = (m: FromWorker) => port.postMessage(m);
  const fail = (err: unknown) => {
    const e = classify(err);
    reply({ id, type: 'failed', code: e.code, message: e.message });
  };
  port.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'start':
        id = m.id;
        extraction = new TarExtraction(m.options);
        return;
      case 'chunk':
        extraction?.push(m.data);
        reply({ id, type: 'ack', bytes: m.data.length });
        return;
      case 'end':
        try {
          if (extraction) reply({ id, type: 'done', result: extraction.end() });
        } catch (err) {
          fail(err);
        }
        extraction = undefined;
        return;
      case 'abort':
        extraction?.abort();
        extraction = undefined;
        fail(new UnpackError('SNAPSHOTTER_ABORTED', 'layer unpack was aborted'));
        return;
    }
  });
}
