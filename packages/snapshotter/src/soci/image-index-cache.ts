import type { Repository } from '@soci-ts/oci-referrers';
import {
  DEFAULT_SOCI_INDEX_LIMITS,
  type DiscoveryRepository as FindRepository,
  type FoundSociIndex,
  findSociIndex,
  type ImageManifest,
  PREFETCH_MEDIA_TYPE,
  type PrefetchRef,
  type PrefetchSpan,
  parsePrefetch,
  SociIndexError,
  ZTOC_MEDIA_TYPE,
} from '@soci-ts/soci-index';
import { DEFAULT_ZTOC_LIMITS, decodeZtoc, type Ztoc, ZtocError } from '@soci-ts/ztoc';

/** What the daemon knows about one image manifest: its layers and, when it has one, its SOCI index. */
export interface ImageLayers {
  manifestDigest: string;
  manifest: ImageManifest;
  soci: FoundSociIndex | undefined;
}

/** What discovery needs of a repository (a Repository of @soci-ts/oci-referrers fits). */
export type DiscoveryRepository = FindRepository & Pick<Repository, 'registry' | 'name'>;

export interface DiscoveryModes {
  sociV2: boolean;
  sociV1Referrers: boolean;
  referrersTagFallback: boolean;
}

/** Blobs kept on local disk by digest (LocalArtifacts). */
export interface BlobKeeper {
  blob(digest: string): Promise<Uint8Array | undefined>;
  putBlob(digest: string, bytes: Uint8Array): Promise<void>;
}

/** soci-index's bound on a prefetch blob (a few bytes per span range); a bigger one is not even fetched. */
const MAX_PREFETCH_BLOB_BYTES = DEFAULT_SOCI_INDEX_LIMITS.maxPrefetchBytes;

/** How long "this image has no SOCI index" is believed before the registry is asked again. */
export const NO_INDEX_RECHECK_MS = 60_000;

/**
 * Discovery runs once per manifest (every layer of an image asks the same question), and a
 * zTOC is fetched once per layer however many snapshots use it. Failed lookups are forgotten
 * so that a registry hiccup does not pin an image to the fallback path for the daemon's life,
 * and "no index" is forgotten after a while, so an index pushed later is found without a restart.
 */
export class ImageIndexCache {
  private readonly images = new Map<string, Promise<ImageLayers>>();
  private readonly ztocs = new Map<string, Promise<Ztoc>>();
  private readonly prefetches = new Map<string, Promise<PrefetchSpan[]>>();

  constructor(
    private readonly modes: DiscoveryModes,
    private readonly noIndexRecheckMs = NO_INDEX_RECHECK_MS,
    /** Where zTOCs are kept on disk (and looked up first), so that a restart needs no registry. */
    private readonly blobs?: BlobKeeper,
  ) {}

  image(
    repo: DiscoveryRepository,
    manifestDigest: string,
    explicitIndexDigest?: string,
  ): Promise<ImageLayers> {
    const key = `${repo.registry}/${repo.name}@${manifestDigest}#${explicitIndexDigest ?? ''}`;
    return this.memo(
      this.images,
      key,
      async () => {
        const { manifest } = await repo.fetchManifest(manifestDigest);
        const soci = await findSociIndex(repo, manifestDigest, {
          explicitDigest: explicitIndexDigest,
          v2: this.modes.sociV2,
          v1: this.modes.sociV1Referrers,
          referrersTagFallback: this.modes.referrersTagFallback,
        });
        return { manifestDigest, manifest: manifest as ImageManifest, soci };
      },
      (image) => (image.soci ? undefined : this.noIndexRecheckMs),
    );
  }

  /** A zTOC by digest: kept bytes when there are (they are verified), else fetched and kept. */
  ztoc(repo: Pick<Repository, 'fetchBlobBytes'>, ztocDigest: string, size: number): Promise<Ztoc> {
    return this.memo(this.ztocs, ztocDigest, async () => {
      let bytes = await this.blobs?.blob(ztocDigest);
      if (!bytes && size > DEFAULT_ZTOC_LIMITS.maxZtocBytes) {
        // The decoder would refuse it anyway: do not download it first.
        throw new ZtocError(
          'LIMIT_EXCEEDED',
          `zTOC ${ztocDigest} is ${size} bytes, more than the ${DEFAULT_ZTOC_LIMITS.maxZtocBytes} soci-ts accepts; rebuild the index`,
        );
      }
      if (!bytes) {
        bytes = await repo.fetchBlobBytes({ mediaType: ZTOC_MEDIA_TYPE, digest: ztocDigest, size });
        await this.blobs?.putBlob(ztocDigest, bytes);
      }
      return decodeZtoc(bytes);
    });
  }

  /** The span ranges of a prefetch blob (verified against its digest, then parsed). */
  prefetch(repo: Repository, ref: PrefetchRef): Promise<PrefetchSpan[]> {
    return this.memo(this.prefetches, ref.digest, async () => {
      if (ref.size > MAX_PREFETCH_BLOB_BYTES) {
        throw new SociIndexError(
          'INVALID_SOCI_INDEX',
          `prefetch blob ${ref.digest} is ${ref.size} bytes, more than the ${MAX_PREFETCH_BLOB_BYTES} a list of span ranges needs; rebuild the index`,
        );
      }
      return parsePrefetch(
        await repo.fetchBlobBytes({
          mediaType: PREFETCH_MEDIA_TYPE,
          digest: ref.digest,
          size: ref.size,
        }),
      );
    });
  }

  /**
   * One load per key, shared by every caller. A failed load is forgotten at once; a value is
   * forgotten after `forgetAfterMs(value)` milliseconds when that says so.
   */
  private memo<T>(
    map: Map<string, Promise<T>>,
    key: string,
    load: () => Promise<T>,
    forgetAfterMs?: (value: T) => number | undefined,
  ): Promise<T> {
    let found = map.get(key);
    if (!found) {
      found = load();
      map.set(key, found);
      found.then(
        (value) => {
          const ms = forgetAfterMs?.(value);
          if (ms !== undefined) setTimeout(() => map.delete(key), ms).unref();
        },
        () => map.delete(key),
      );
    }
    return found;
  }
}
