/** Stable error codes; callers branch on `code`, never on the message. */
export type SeekableGzipErrorCode =
  /** The bytes are not valid gzip/deflate (bad magic, bad method, invalid deflate data, trailing garbage). */
  | 'CORRUPT_GZIP'
  /** The gzip stream ends before its last member is complete. */
  | 'TRUNCATED_GZIP'
  /** A member's CRC32 or ISIZE trailer does not match the decompressed data. */
  | 'CRC_MISMATCH'
  /** A zinfo / TarZinfo blob is malformed or does not fit the blob it claims to describe. */
  | 'BAD_ZINFO'
  /** A span id, range or the span's compressed bytes do not fit the index. */
  | 'BAD_SPAN'
  /** The API was used wrongly (e.g. push after finish, invalid span size). */
  | 'INVALID_ARGUMENT';

export class SeekableGzipError extends Error {
  readonly code: SeekableGzipErrorCode;

  constructor(code: SeekableGzipErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SeekableGzipError';
    this.code = code;
  }
}
