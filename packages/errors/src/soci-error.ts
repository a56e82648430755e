/**
 * What every soci-ts error carries besides its message: `cause` (the failure underneath, kept for
 * the cause chain) and any details of the subclass (an HTTP status, a digest, a path ...).
 */
export interface SociErrorOptions {
  cause?: unknown;
  [detail: string]: unknown;
}

/**
 * The base of every error the soci-ts packages throw. `code` is stable and prefixed by the package
 * that owns it (`REGISTRY_`, `ZTOC_`, `LAZYFS_` ...), so two packages never mean different things
 * by one code; callers branch on `code` (see `hasCode`), never on the message. The message says
 * what failed and what to do. Subclasses add typed details from the same options object, so every
 * error is built the same way: `new XError(code, message, { cause, ...details })`.
 */
/**
 * Marks soci-ts errors across copies of this package (two installed versions each have their own
 * class, so `instanceof` alone would miss the other's errors).
 */
const BRAND = Symbol.for('@soci-ts/errors.SociError');

export class SociError<Code extends string = string> extends Error {
  readonly code: Code;
  // Each subclass sets its own name, so stacks and logs say which package failed.
  override readonly name: string = 'SociError';

  constructor(code: Code, message: string, options: SociErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

Object.defineProperty(SociError.prototype, BRAND, { value: true });

/** Whether `err` is a soci-ts error, from this copy of the package or any other. */
export function isSociError(err: unknown): err is SociError {
  return (
    err instanceof SociError ||
    (err instanceof Error && (err as unknown as Record<symbol, unknown>)[BRAND] === true)
  );
}
