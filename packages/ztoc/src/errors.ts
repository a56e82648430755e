/** Stable codes of {@link ZtocError}; callers switch on these, never on messages. */
export type ZtocErrorCode =
  | 'BAD_ZTOC'
  | 'BAD_TAR'
  | 'TRUNCATED_TAR'
  | 'UNSUPPORTED_SPARSE'
  | 'UNSUPPORTED_ENTRY'
  | 'NOT_FOUND'
  | 'OUT_OF_RANGE'
  | 'DIGEST_MISMATCH'
  | 'BAD_ARGUMENT'
  /** The zTOC is well formed but bigger than a configured limit (see ZtocLimits). */
  | 'LIMIT_EXCEEDED';

/** Every error this package throws on bad input. */
export class ZtocError extends Error {
  override readonly name = 'ZtocError';
  constructor(
    readonly code: ZtocErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
