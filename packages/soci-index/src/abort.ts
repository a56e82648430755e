/**
 * Cancellation of this package's registry and store reads. Every such call takes `{ signal }`,
 * passes it to each read it makes, and ends with INDEX_ABORTED (cause: what the abort made fail,
 * the signal's reason at the bottom of the chain) as soon as the signal fires; no new request
 * starts after an abort.
 */
import { untilAborted } from '@soci-ts/oci-referrers';
import { SociIndexError } from './errors.js';

export interface AbortOptions {
  /** Stops the call: requests in flight are cancelled, none starts after it fires. */
  signal?: AbortSignal;
}

/** Throws INDEX_ABORTED when `signal` has fired: called before every request a call starts. */
export function checkAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw aborted(what, signal.reason);
}

/**
 * Runs `step`, and rejects with INDEX_ABORTED as soon as `signal` fires, even when the step (a
 * local read, a reader that does not listen) goes on: its late result is dropped. A failure of
 * the step after the abort (a REGISTRY_ABORTED, Node's AbortError) becomes the error's cause.
 */
export async function abortable<T>(
  signal: AbortSignal | undefined,
  what: string,
  step: () => Promise<T>,
): Promise<T> {
  if (!signal) return step();
  checkAborted(signal, what);
  try {
    return await untilAborted(step(), signal);
  } catch (err) {
    if (!signal.aborted || isIndexAborted(err)) throw err;
    throw aborted(what, err);
  }
}

/**
 * Passes chunks on, and stops with INDEX_ABORTED before the next one once `signal` fires. Without
 * a signal the chunks go through untouched: no extra step per chunk in the index build loop.
 */
export function abortableChunks(
  chunks: AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined,
  what: string,
): AsyncIterable<Uint8Array> {
  return signal ? checkedChunks(chunks, signal, what) : chunks;
}

async function* checkedChunks(
  chunks: AsyncIterable<Uint8Array>,
  signal: AbortSignal,
  what: string,
): AsyncIterable<Uint8Array> {
  checkAborted(signal, what);
  try {
    for await (const chunk of chunks) {
      checkAborted(signal, what);
      yield chunk;
    }
  } catch (err) {
    if (!signal.aborted || isIndexAborted(err)) throw err;
    throw aborted(what, err);
  }
}

function aborted(what: string, cause: unknown): SociIndexError {
  return new SociIndexError('INDEX_ABORTED', `${what}: aborted by the caller`, { cause });
}

function isIndexAborted(err: unknown): boolean {
  return err instanceof SociIndexError && err.code === 'INDEX_ABORTED';
}
