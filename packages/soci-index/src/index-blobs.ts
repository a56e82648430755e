/**
 * Fetching the blobs a SOCI index points at (zTOCs and prefetch blobs) from a registry: the
 * declared size is checked against the limits before a byte is downloaded, the bytes against
 * their digest (by the repository), then they are decoded under the same limits.
 */
import type { Repository } from '@soci-ts/oci-referrers';
import { DEFAULT_ZTOC_LIMITS, decodeZtoc, type Ztoc, ZtocError, type ZtocLimits } from '@soci-ts/ztoc';
import { type AbortOptions, abortable } from './abort.js';
import { PREFETCH_MEDIA_TYPE, ZTOC_MEDIA_TYPE } from './constants.js';
import { checkLimit, limitsOf, type ParseOptions } from './limits.js';
import { type PrefetchSpan, parsePrefetch } from './prefetch.js';

/** What fetching an index's blobs needs of a repository (a Repository of @soci-ts/oci-referrers fits). */
export type BlobRepository = Pick<Repository, 'fetchBlobBytes'>;

/** A blob of a SOCI index: a ZtocRef or a PrefetchRef fits. */
export interface IndexBlobRef {
  digest: string;
  size: number;
}

export interface FetchZtocOptions extends AbortOptions {
  /** Overrides of DEFAULT_ZTOC_LIMITS; a zTOC declared or decoded beyond one is ZTOC_LIMIT_EXCEEDED. */
  limits?: Partial<ZtocLimits>;
}

/** A zTOC from the registry: its verified bytes (to keep) and its decoded model. */
export function fetchZtoc(
  repo: BlobRepository,
  ref: IndexBlobRef,
  options: FetchZtocOptions = {},
): Promise<{ bytes: Uint8Array; ztoc: Ztoc }> {
  const { signal, limits } = options;
  return abortable(signal, `fetching zTOC ${ref.digest}`, async () => {
    const max = limits?.maxZtocBytes ?? DEFAULT_ZTOC_LIMITS.maxZtocBytes;
    if (ref.size > max) {
      // The decoder would refuse it anyway: do not download it first.
      throw new ZtocError(
        'ZTOC_LIMIT_EXCEEDED',
        `zTOC ${ref.digest} is ${ref.size} bytes, more than the ${max} (maxZtocBytes) accepted; rebuild the index with a larger span size`,
      );
    }
    const bytes = await repo.fetchBlobBytes(
      { mediaType: ZTOC_MEDIA_TYPE, digest: ref.digest, size: ref.size },
      { signal },
    );
    return { bytes, ztoc: decodeZtoc(bytes, limits ? { limits } : {}) };
  });
}

/** The span ranges of a prefetch blob from the registry (verified against its digest, then parsed). */
export function fetchPrefetch(
  repo: BlobRepository,
  ref: IndexBlobRef,
  options: ParseOptions & AbortOptions = {},
): Promise<PrefetchSpan[]> {
  const { signal } = options;
  return abortable(signal, `fetching prefetch blob ${ref.digest}`, async () => {
    // Checked before downloading: parsePrefetch would refuse the bytes anyway.
    checkLimit(
      limitsOf(options),
      'maxPrefetchBytes',
      ref.size,
      `the declared size of prefetch blob ${ref.digest}`,
    );
    const bytes = await repo.fetchBlobBytes(
      { mediaType: PREFETCH_MEDIA_TYPE, digest: ref.digest, size: ref.size },
      { signal },
    );
    return parsePrefetch(bytes, options);
  });
}
