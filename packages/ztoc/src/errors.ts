import { SociError } from '@soci-ts/errors';

/** Stable codes of {@link ZtocError}; callers switch on these, never on messages. */
export type ZtocErrorCode =
  /** The zTOC bytes are corrupt, or its parts (checkpoints, span digests, sizes) disagree. */
  | 'ZTOC_INVALID'
  /** A tar header or PAX record is malformed. */
  | 'ZTOC_BAD_TAR'
  /** The tar stream ends before its end-of-archive marker. */
  | 'ZTOC_TRUNCATED_TAR'
  /** A sparse file (GNU `S` or PAX `GNU.sparse.*`): its data is not one range. */
  | 'ZTOC_UNSUPPORTED_SPARSE'
  /** A tar typeflag a layer has no use for (`V`, `D`, ...). */
  | 'ZTOC_UNSUPPORTED_ENTRY'
  /** No entry of that path in the zTOC. */
  | 'ZTOC_NOT_FOUND'
  /** A span, file index or byte range outside the layer, or a fetch that returned too few bytes. */
  | 'ZTOC_OUT_OF_RANGE'
  /** A span's bytes do not hash to the digest the zTOC records. */
  | 'ZTOC_DIGEST_MISMATCH'
  /** The API was used wrongly (a bad span size, an unknown limit, a directory where a file is needed). */
  | 'ZTOC_INVALID_ARGUMENT'
  /** The zTOC is well formed but bigger than a configured limit (see ZtocLimits). */
  | 'ZTOC_LIMIT_EXCEEDED';

/** Every error this package throws on bad input. */
export class ZtocError extends SociError<ZtocErrorCode> {
  override readonly name = 'ZtocError';
}
