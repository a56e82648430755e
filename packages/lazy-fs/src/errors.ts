/**
 * Stable error codes of lazy-fs. Each maps to the errno a FUSE read gets, so a failure
 * reaches the reading process as a plain I/O error and never as wrong bytes.
 */
export type LazyFsErrorCode =
  | 'SPAN_FETCH_FAILED'
  | 'SPAN_VERIFY_FAILED'
  | 'SPAN_DECODE_FAILED'
  | 'BAD_ZTOC'
  | 'NOT_FOUND'
  | 'NOT_A_FILE'
  | 'LAYER_CLOSED'
  | 'MOUNT_FAILED'
  | 'UNMOUNT_FAILED'
  | 'KEEPER_UNAVAILABLE'
  | 'KEEPER_REFUSED'
  | 'BAD_OPTIONS';

const ERRNO_BY_CODE: Record<LazyFsErrorCode, number> = {
  SPAN_FETCH_FAILED: 5, // EIO
  SPAN_VERIFY_FAILED: 5, // EIO
  SPAN_DECODE_FAILED: 5, // EIO
  BAD_ZTOC: 5, // EIO
  NOT_FOUND: 2, // ENOENT
  NOT_A_FILE: 21, // EISDIR
  LAYER_CLOSED: 107, // ENOTCONN
  MOUNT_FAILED: 5,
  UNMOUNT_FAILED: 16, // EBUSY
  KEEPER_UNAVAILABLE: 107, // ENOTCONN
  KEEPER_REFUSED: 5,
  BAD_OPTIONS: 22, // EINVAL
};

export class LazyFsError extends Error {
  override readonly name = 'LazyFsError';
  constructor(
    readonly code: LazyFsErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Positive errno for this error (EIO for anything about span bytes). */
  get errno(): number {
    return ERRNO_BY_CODE[this.code];
  }
}

/** Positive errno for any error thrown on the read path; unknown errors become EIO. */
export function errnoOf(err: unknown): number {
  return err instanceof LazyFsError ? err.errno : 5;
}
