import { UnpackError } from './errors.js';

export function abortedError(signal: AbortSignal): UnpackError {
  return new UnpackError('SNAPSHOTTER_ABORTED', 'layer unpack was aborted; nothing of it was kept', {
    cause: signal.reason,
  });
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortedError(signal);
}

/**
 * Iterates `source`, but stops waiting for its next chunk as soon as `signal` fires (a stalled
 * registry response must not keep an aborted unpack alive).
 */
export async function* abortable<T>(
  source: AsyncIterable<T>,
  signal: AbortSignal | undefined,
): AsyncGenerator<T> {
  if (!signal) {
    yield* source;
    return;
  }
  const iterator = source[Symbol.asyncIterator]();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortedError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => {});
  try {
    for (;;) {
      throwIfAborted(signal);
      const next = await Promise.race([iterator.next(), aborted]);
      if (next.done) return;
      yield next.value;
    }
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
    // Releases the source (closes the HTTP response); a source stuck in next() is not awaited.
    void Promise.resolve(iterator.return?.()).catch(() => {});
  }
}
