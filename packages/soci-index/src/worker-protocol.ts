import type { BuildZtocOptions } from '@soci-ts/ztoc';

/** Messages between the pool (worker-pool.ts) and a worker (ztoc-worker.ts); one job per worker at a time. */
export type ToWorker =
  | { type: 'start'; options: BuildZtocOptions }
  | { type: 'chunk'; chunk: Uint8Array }
  | { type: 'end' };

export type FromWorker =
  | { type: 'ack'; bytes: number }
  | { type: 'done'; ztoc: Uint8Array }
  | { type: 'error'; message: string; code?: string };
