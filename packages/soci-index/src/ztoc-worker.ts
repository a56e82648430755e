/**
 * The body of a zTOC worker thread: receives a layer's chunks, runs buildZtoc on them and
 * sends back the encoded zTOC. Started by a program's own worker entry file, which only
 * calls runZtocWorker() (see the CLI's src/ztoc-worker.ts).
 */
import { parentPort } from 'node:worker_threads';
import { buildZtoc, encodeZtoc } from '@soci-ts/ztoc';
import type { FromWorker, ToWorker } from './worker-protocol.js';

/** A queue the main thread fills and buildZtoc drains, acknowledging what it took. */
class ChunkQueue implements AsyncIterable<Uint8Array> {
  private readonly chunks: Uint8Array[] = [];
  private ended = false;
  private wake?: () => void;

  constructor(private readonly ack: (bytes: number) => void) {}

  push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (;;) {
      const chunk = this.chunks.shift();
      if (chunk) {
        this.ack(chunk.length);
        yield chunk;
      } else if (this.ended) return;
      else {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    }
  }
}

export function runZtocWorker(): void {
  const port = parentPort;
  if (!port) throw new Error('runZtocWorker() must run in a worker thread');
  const send = (message: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
  let queue: ChunkQueue | undefined;
  port.on('message', (message: ToWorker) => {
    if (message.type === 'start') {
      const current = new ChunkQueue((bytes) => send({ type: 'ack', bytes }));
      queue = current;
      buildZtoc(current, message.options).then(
        (ztoc) => {
          const bytes = encodeZtoc(ztoc);
          send({ type: 'done', ztoc: bytes }, [bytes.buffer as ArrayBuffer]);
        },
        (err: Error & { code?: string }) => send({ type: 'error', message: err.message, code: err.code }),
      );
    } else if (message.type === 'chunk') queue?.push(message.chunk);
    else queue?.end();
  });
}
