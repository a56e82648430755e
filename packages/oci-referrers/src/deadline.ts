import { RegistryError } from './errors.js';

/**
 * What a read or write fails with when its caller's signal aborts: a RegistryError reason (an enclosing
 * read's deadline) passes through as is, so it stays a TIMEOUT; any other reason becomes ABORTED, with the
 * reason as its cause.
 */
export function abortedBy(what: string, reason: unknown): RegistryError {
  return reason instanceof RegistryError
    ? reason
    : new RegistryError('REGISTRY_ABORTED', `${what}: aborted by the caller`, { cause: reason });
}

/**
 * One read's time budget and the caller's AbortSignal as one signal for undici: when the clock runs out
 * the signal aborts with a TIMEOUT RegistryError, when the caller aborts it aborts with ABORTED. undici
 * rejects a request (or fails its body) with the abort reason, so these typed errors reach the caller as is.
 * Without `ms` there is no clock (a write): only the caller's signal aborts.
 */
export class Deadline {
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly unlinkCaller: () => void;

  constructor(ms: number | undefined, what: string, callerSignal?: AbortSignal) {
    this.signal = this.controller.signal;
    const onCallerAbort = () => this.controller.abort(abortedBy(what, callerSignal?.reason));
    if (callerSignal?.aborted) onCallerAbort();
    else callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
    this.unlinkCaller = () => callerSignal?.removeEventListener('abort', onCallerAbort);
    if (ms === undefined) return;
    this.timer = setTimeout(
      () =>
        this.controller.abort(
          new RegistryError(
            'REGISTRY_TIMEOUT',
            `${what}: no complete answer within ${ms} ms, retries included; the registry is unreachable or stalled (raise timeouts.readMs if it is only slow)`,
          ),
        ),
      ms,
    );
    this.timer.unref();
  }

  /** Stops the clock (a blob stream once its headers came); the caller's signal still aborts. */
  stopClock(): void {
    clearTimeout(this.timer);
  }

  /** Stops the clock and forgets the caller's signal. */
  dispose(): void {
    this.stopClock();
    this.unlinkCaller();
  }
}

/** Waits `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * `promise`, or a rejection with the signal's reason as soon as `signal` aborts. The promise
 * itself is left to settle alone: what it stands for goes on (or is stopped by its own signal).
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
