import { SociError } from '@soci-ts/errors';

/** Stable codes of {@link UnpackError}; callers switch on these, never on messages. */
export type UnpackErrorCode =
  /** The layer's media type is not one this unpacker reads (zstd, or unknown). */
  | 'SNAPSHOTTER_UNSUPPORTED_MEDIA_TYPE'
  /** The blob's bytes do not match its digest or size: fetch it again. */
  | 'SNAPSHOTTER_DIGEST_MISMATCH'
  /** The blob matches its digest but is not a valid gzip/tar stream: retrying will not help. */
  | 'SNAPSHOTTER_BAD_LAYER'
  /** The tar holds an entry this unpacker cannot write (sparse file, unknown type). */
  | 'SNAPSHOTTER_UNSUPPORTED_ENTRY'
  /** An entry's path (or link target) would leave the destination or pass through a non-directory. */
  | 'SNAPSHOTTER_UNSAFE_PATH'
  /** The destination is not an existing empty directory. */
  | 'SNAPSHOTTER_BAD_DESTINATION'
  /** An option is malformed (digest syntax, whiteout mode). */
  | 'SNAPSHOTTER_BAD_ARGUMENT'
  /** Writing an entry failed for a reason of the host (disk full, permissions): see the cause. */
  | 'SNAPSHOTTER_WRITE_FAILED'
  /** A helper tool (mknod, mkfifo, setfattr) failed or is missing. */
  | 'SNAPSHOTTER_TOOL_FAILED'
  /** The caller's AbortSignal fired. */
  | 'SNAPSHOTTER_ABORTED';

/** Every failure of {@link unpackLayer}; the destination has been emptied again when it is thrown. */
export class UnpackError extends SociError<UnpackErrorCode> {
  override readonly name = 'UnpackError';
}
