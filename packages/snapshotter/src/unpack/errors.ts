/** Stable codes of {@link UnpackError}; callers switch on these, never on messages. */
export type UnpackErrorCode =
  /** The layer's media type is not one this unpacker reads (zstd, or unknown). */
  | 'UNSUPPORTED_MEDIA_TYPE'
  /** The blob's bytes do not match its digest or size: fetch it again. */
  | 'DIGEST_MISMATCH'
  /** The blob matches its digest but is not a valid gzip/tar stream: retrying will not help. */
  | 'BAD_LAYER'
  /** The tar holds an entry this unpacker cannot write (sparse file, unknown type). */
  | 'UNSUPPORTED_ENTRY'
  /** An entry's path (or link target) would leave the destination or pass through a non-directory. */
  | 'UNSAFE_PATH'
  /** The destination is not an existing empty directory. */
  | 'BAD_DESTINATION'
  /** An option is malformed (digest syntax, whiteout mode). */
  | 'BAD_ARGUMENT'
  /** Writing an entry failed for a reason of the host (disk full, permissions): see the cause. */
  | 'WRITE_FAILED'
  /** A helper tool (mknod, mkfifo, setfattr) failed or is missing. */
  | 'TOOL_FAILED'
  /** The caller's AbortSignal fired. */
  | 'ABORTED';

/** Every failure of {@link unpackLayer}; the destination has been emptied again when it is thrown. */
export class UnpackError extends Error {
  override readonly name = 'UnpackError';
  constructor(
    readonly code: UnpackErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isUnpackError(err: unknown, code?: UnpackErrorCode): err is UnpackError {
  return err instanceof UnpackError && (code === undefined || err.code === code);
}
