import { isSociError, SociError } from '@soci-ts/errors';

/**
 * Stable error codes of lazy-fs. Each maps to the errno a FUSE read gets, so a failure
 * reaches the reading process as a plain I/O error and never as wrong bytes.
 */
export type LazyFsErrorCode =
  | 'LAZYFS_SPAN_FETCH_FAILED'
  | 'LAZYFS_SPAN_VERIFY_FAILED'
  | 'LAZYFS_SPAN_DECODE_FAILED'
  | 'LAZYFS_BAD_ZTOC'
  | 'LAZYFS_NOT_FOUND'
  | 'LAZYFS_NOT_A_FILE'
  | 'LAZYFS_LAYER_CLOSED'
  | 'LAZYFS_MOUNT_FAILED'
  | 'LAZYFS_UNMOUNT_FAILED'
  | 'LAZYFS_KEEPER_UNAVAILABLE'
  | 'LAZYFS_KEEPER_REFUSED'
  | 'LAZYFS_BAD_OPTIONS'
  | 'LAZYFS_ABORTED';

const EIO = 5;
const ERRNO_BY_CODE: Record<LazyFsErrorCode, number> = {
  LAZYFS_SPAN_FETCH_FAILED: EIO,
  LAZYFS_SPAN_VERIFY_FAILED: EIO,
  LAZYFS_SPAN_DECODE_FAILED: EIO,
  LAZYFS_BAD_ZTOC: EIO,
  LAZYFS_NOT_FOUND: 2, // ENOENT
  LAZYFS_NOT_A_FILE: 21, // EISDIR
  LAZYFS_LAYER_CLOSED: 107, // ENOTCONN
  LAZYFS_MOUNT_FAILED: EIO,
  LAZYFS_UNMOUNT_FAILED: 16, // EBUSY
  LAZYFS_KEEPER_UNAVAILABLE: 107, // ENOTCONN
  LAZYFS_KEEPER_REFUSED: EIO,
  LAZYFS_BAD_OPTIONS: 22, // EINVAL
  LAZYFS_ABORTED: 125, // ECANCELED
};

export class LazyFsError extends SociError<LazyFsErrorCode> {
  override readonly name: string = 'LazyFsError';

  /** Positive errno for this error (EIO for anything about span bytes). */
  get errno(): number {
    return ERRNO_BY_CODE[this.code];
  }
}

/**
 * Positive errno for any error thrown on the read path; unknown errors become EIO. Read by code,
 * not by class, so a LazyFsError from another copy of this package maps the same way.
 */
export function errnoOf(err: unknown): number {
  return isSociError(err) && Object.hasOwn(ERRNO_BY_CODE, err.code)
    ? ERRNO_BY_CODE[err.code as LazyFsErrorCode]
    : EIO;
}

/** The error an aborted mount rejects with; the abort's reason stays as its cause. */
export function abortedError(what: string, signal: AbortSignal): LazyFsError {
  return new LazyFsError('LAZYFS_ABORTED', `${what} was aborted: ${messageOf(signal.reason)}`, {
    cause: signal.reason,
  });
}

/** An error's message, or the thrown value as text. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
