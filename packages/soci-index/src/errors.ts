/**
 * Every failure this package reports on purpose is a SociIndexError with a stable `code`,
 * so callers (the CLI, the snapshotter) can react without parsing messages.
 */
export type SociIndexErrorCode =
  | 'INVALID_SOCI_INDEX'
  | 'INVALID_PREFETCH_LIST'
  | 'INVALID_IMAGE'
  | 'PLATFORM_NOT_FOUND'
  | 'UNSUPPORTED_LAYER'
  | 'LAYER_BUILD_FAILED'
  | 'STORE_CORRUPT'
  | 'STORE_LOCKED'
  | 'NOT_FOUND'
  | 'INVALID_SOURCE'
  | 'DIGEST_MISMATCH'
  | 'ALREADY_EXISTS'
  | 'NO_LAYERS_INDEXED'
  /** A v1 SOCI index whose `subject` is not the image manifest it was found for. */
  | 'WRONG_SUBJECT'
  /** An artifact is well formed but bigger than a configured limit (see SociIndexLimits). */
  | 'LIMIT_EXCEEDED'
  | 'INVALID_ARGUMENT';

export class SociIndexError extends Error {
  override readonly name = 'SociIndexError';
  constructor(
    readonly code: SociIndexErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
