import { SociError } from '@soci-ts/errors';

/** Stable error codes; callers branch on `code`, never on the message. */
export type SeekableGzipErrorCode =
  /** The bytes are not valid gzip/deflate (bad magic, bad method, invalid deflate data, trailing garbage). */
  | 'GZIP_CORRUPT'
  /** The gzip stream ends before its last member is complete. */
  | 'GZIP_TRUNCATED'
  /** A member's CRC32 or ISIZE trailer does not match the decompressed data. */
  | 'GZIP_CRC_MISMATCH'
  /** A zinfo / TarZinfo blob is malformed or does not fit the blob it claims to describe. */
  | 'GZIP_BAD_ZINFO'
  /** A span id, range or the span's compressed bytes do not fit the index. */
  | 'GZIP_BAD_SPAN'
  /** The API was used wrongly (e.g. push after finish, invalid span size). */
  | 'GZIP_INVALID_ARGUMENT';

/** Every error this package throws on bad input or misuse. */
export class SeekableGzipError extends SociError<SeekableGzipErrorCode> {
  override readonly name = 'SeekableGzipError';
}
