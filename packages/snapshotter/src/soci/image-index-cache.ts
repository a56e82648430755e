import { type ImageManifest, type Repository, untilAborted } from '@soci-ts/oci-referrers';
import {
  type FindOptions,
  type DiscoveryRepository as FindRepository,
  type FoundSociIndex,
  fetchPrefetch,
  fetchZtoc,
  findSociIndex,
  type PrefetchRef,
  type PrefetchSpan,
} from '@soci-ts/soci-index';
import { decodeZtoc, type Ztoc } from '@soci-ts/ztoc';

/** What the daemon knows about one image manifest: its layers and, when it has one, its SOCI index. */
export interface ImageLayers {
  manifestDigest: string;
  manifest: ImageManifest;
  soci: FoundSociIndex | undefined;
}

/** What discovery needs of a repository (a Repository of @soci-ts/oci-referrers fits). */
export type DiscoveryRepository = FindRepository & Pick<Repository, 'registry' | 'name'>;

/** The daemon config's [discovery] switches, which are findSociIndex's options of the same names. */
export type DiscoveryModes = Required<
  Pick<FindOptions, 'sociV2' | 'sociV1Referrers' | 'referrersTagFallback'>
>;

/** Blobs kept on local disk by digest (LocalArtifacts). */
export interface BlobKeeper {
  blob(digest: string): Promise<Uint8Array | undefined>;
  putBlob(digest: string, bytes: Uint8Array): Promise<void>;
}

/** How long "this image has no SOCI index" is believed before the registry is asked again. */
export const NO_INDEX_RECHECK_MS = 60_000;

/**
 * Discovery runs once per manifest (every layer of an image asks the same question), and a
 * zTOC is fetched once per layer however many snapshots use it. Failed lookups are forgotten
 * so that a registry hiccup does not pin an image to the fallback path for the daemon's life,
 * and "no index" is forgotten after a while, so an index pushed later is found without a restart.
 *
 * Cancellation: a load is shared, so one caller's signal must not stop it for the others. Loads
 * run under `lifetime` (the daemon's: aborted when it shuts down); each caller stops waiting when
 * its own `signal` aborts (containerd gave up on the Prepare), and the load goes on into the cache.
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
    /** Stops every load in flight: the daemon's shutdown. */
    private readonly lifetime: AbortSignal = new AbortController().signal,
  ) {}

  image(
    repo: DiscoveryRepository,
    manifestDigest: string,
    indexDigest?: string,
    signal?: AbortSignal,
  ): Promise<ImageLayers> {
    const key = `${repo.registry}/${repo.name}@${manifestDigest}#${indexDigest ?? ''}`;
    return this.memo(
      this.images,
      key,
      async (lifetime) => {
        const { manifest } = await repo.fetchManifest(manifestDigest, { signal: lifetime });
        const soci = await findSociIndex(repo, manifestDigest, {
          ...this.modes,
          indexDigest,
          signal: lifetime,
        });
        return { manifestDigest, manifest: manifest as ImageManifest, soci };
      },
      signal,
      (image) => (image.soci ? undefined : this.noIndexRecheckMs),
    );
  }

  /** A zTOC by digest: kept bytes when there are (they are verified), else fetched and kept. */
  ztoc(
    repo: Pick<Repository, 'fetchBlobBytes'>,
    ztocDigest: string,
    size: number,
    signal?: AbortSignal,
  ): Promise<Ztoc> {
    return this.memo(
      this.ztocs,
      ztocDigest,
      async (lifetime) => {
        const kept = await this.blobs?.blob(ztocDigest);
        if (kept) return decodeZtoc(kept);
        // Declared size checked against the limits before a byte is downloaded.
        const { bytes, ztoc } = await fetchZtoc(repo, { digest: ztocDigest, size }, { signal: lifetime });
        await this.blobs?.putBlob(ztocDigest, bytes);
        return ztoc;
      },
      signal,
    );
  }

  /** The span ranges of a prefetch blob (size checked first, verified against its digest, parsed). */
  prefetch(repo: Repository, ref: PrefetchRef, signal?: AbortSignal): Promise<PrefetchSpan[]> {
    return this.memo(
      this.prefetches,
      ref.digest,
      (lifetime) => fetchPrefetch(repo, ref, { signal: lifetime }),
      signal,
    );
  }

  /**
   * One load per key, shared by every caller. A failed load is forgotten at once; a value is
   * forgotten after `forgetAfterMs(value)` milliseconds when that says so.
   */
  private memo<T>(
    map: Map<string, Promise<T>>,
    key: string,
    load: (lifetime: AbortSignal) => Promise<T>,
    signal: AbortSignal | undefined,
    forgetAfterMs?: (value: T) => number | undefined,
  ): Promise<T> {
    let found = map.get(key);
    if (!found) {
      found = load(this.lifetime);
      map.set(key, found);
      found.then(
        (value) => {
          const ms = forgetAfterMs?.(value);
          if (ms !== undefined) setTimeout(() => map.delete(key), ms).unref();
        },
        () => map.delete(key),
      );
    }
    return signal ? untilAborted(found, signal) : found;
  }
}
