import { SociError } from '@soci-ts/errors';

/**
 * Every failure this package reports on purpose is a SociIndexError with a stable `code`,
 * so callers (the CLI, the snapshotter) can react without parsing messages. Registry failures
 * stay RegistryErrors of @soci-ts/oci-referrers (`REGISTRY_*`), zTOC failures ZtocErrors
 * (`ZTOC_*`): find them with `findCode` of @soci-ts/errors, on the error or its causes.
 */
export type SociIndexErrorCode =
  /** A SOCI index manifest that is malformed or breaks the SOCI rules. */
  | 'INDEX_INVALID'
  | 'INDEX_INVALID_PREFETCH_LIST'
  /** An image manifest, index or config that is malformed. */
  | 'INDEX_INVALID_IMAGE'
  | 'INDEX_PLATFORM_NOT_FOUND'
  /** A layer of a kind zTOCs cannot describe (zstd ...). */
  | 'INDEX_UNSUPPORTED_LAYER'
  /** Building a layer's zTOC failed (the cause says why). */
  | 'INDEX_LAYER_BUILD_FAILED'
  | 'INDEX_STORE_CORRUPT'
  | 'INDEX_STORE_LOCKED'
  /** A path, image, blob or tag that is not there. */
  | 'INDEX_NOT_FOUND'
  /** Text given as a digest that is not one (`sha256:<64 hex digits>`). */
  | 'INDEX_INVALID_DIGEST'
  /** An image source (layout directory, oci-archive) that is not one. */
  | 'INDEX_INVALID_SOURCE'
  | 'INDEX_DIGEST_MISMATCH'
  | 'INDEX_NO_LAYERS_INDEXED'
  /** A v1 SOCI index whose `subject` is not the image manifest it was found for. */
  | 'INDEX_WRONG_SUBJECT'
  /** An artifact is well formed but bigger than a configured limit (see SociIndexLimits). */
  | 'INDEX_LIMIT_EXCEEDED'
  | 'INDEX_INVALID_ARGUMENT'
  /** The caller's AbortSignal fired; the cause chain holds the signal's reason. */
  | 'INDEX_ABORTED';

export class SociIndexError extends SociError<SociIndexErrorCode> {
  override readonly name = 'SociIndexError';
}
