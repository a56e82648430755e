/**
 * Layer decoding on worker threads when running from the built CLI (dist/ztoc-worker.js
 * exists next to this code); from sources (tests) layers are built in the main thread.
 * SOCI_TS_WORKERS=0 turns workers off.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createWorkerPool, type ZtocBuilder } from '@soci-ts/soci-index';
import type { Context } from './context.js';

export function ztocBuilder(ctx: Context, concurrency?: number): ZtocBuilder | undefined {
  const file = fileURLToPath(new URL('./ztoc-worker.js', import.meta.url));
  if (process.env.SOCI_TS_WORKERS === '0' || !existsSync(file)) return undefined;
  const pool = createWorkerPool(file, concurrency ?? availableParallelism());
  ctx.onClose(() => pool.close());
  return pool.build;
}
