/**
 * Finding the SOCI index of an image manifest in a registry, in the reference snapshotter's
 * order: an explicit index digest; the v2 annotation on the manifest; v1 referrers (first).
 * An index that names another image manifest as its subject (or a v1 index naming none) is
 * refused with INDEX_WRONG_SUBJECT, whichever way it was found.
 */
import type { Repository } from '@soci-ts/oci-referrers';
import { type AbortOptions, abortable, checkAborted } from './abort.js';
import { checkIndexSubject } from './binding.js';
import { ANNOTATION_INDEX_DIGEST, SOCI_INDEX_V1 } from './constants.js';
import { parseIndexManifest, type SociIndex } from './index-manifest.js';
import type { ParseOptions } from './limits.js';
import type { Descriptor, ImageManifest } from './oci.js';

export interface FindOptions extends ParseOptions, AbortOptions {
  // The names are the daemon config's [discovery] keys (soci_v2, soci_v1_referrers ...).
  /** An index digest given by the user (e.g. a snapshot label); tried first. */
  indexDigest?: string;
  /** Look at the v2 annotation on the manifest (default true). */
  sociV2?: boolean;
  /** Look for v1 indexes among the manifest's referrers (default true). */
  sociV1Referrers?: boolean;
  /** For v1, read the referrers tag schema on registries without the referrers API (default true). */
  referrersTagFallback?: boolean;
}

export interface FoundSociIndex {
  descriptor: Descriptor;
  bytes: Uint8Array;
  index: SociIndex;
  via: 'explicit' | 'v2-annotation' | 'v1-referrers';
}

/** Registry reads discovery needs (a Repository of @soci-ts/oci-referrers fits). */
export type DiscoveryRepository = Pick<Repository, 'fetchManifest' | 'referrers'>;

/**
 * The SOCI index of an image manifest, or undefined when it has none. With `signal`, an abort
 * cancels the registry reads in flight and ends the call with INDEX_ABORTED.
 */
export function findSociIndex(
  repo: DiscoveryRepository,
  manifestDigest: string,
  options: FindOptions = {},
): Promise<FoundSociIndex | undefined> {
  return abortable(options.signal, `finding the SOCI index of ${manifestDigest}`, () =>
    discover(repo, manifestDigest, options),
  );
}

async function discover(
  repo: DiscoveryRepository,
  manifestDigest: string,
  options: FindOptions,
): Promise<FoundSociIndex | undefined> {
  const { signal } = options;
  const what = `finding the SOCI index of ${manifestDigest}`;
  const load = async (digest: string, via: FoundSociIndex['via']): Promise<FoundSociIndex> => {
    checkAborted(signal, what);
    const fetched = await repo.fetchManifest(digest, { signal });
    const found: FoundSociIndex = {
      descriptor: fetched.descriptor,
      bytes: fetched.bytes,
      index: parseIndexManifest(fetched.bytes, options),
      via,
    };
    checkIndexSubject(found.index, manifestDigest, digest);
    return found;
  };
  if (options.indexDigest) return load(options.indexDigest, 'explicit');
  if (options.sociV2 ?? true) {
    checkAborted(signal, what);
    const { manifest } = await repo.fetchManifest(manifestDigest, { signal });
    const digest = (manifest as ImageManifest).annotations?.[ANNOTATION_INDEX_DIGEST];
    if (digest) return load(digest, 'v2-annotation');
  }
  if (options.sociV1Referrers ?? true) {
    checkAborted(signal, what);
    const [first] = await repo.referrers(manifestDigest, {
      artifactType: SOCI_INDEX_V1,
      tagFallback: options.referrersTagFallback ?? true,
      signal,
    });
    if (first) return load(first.digest, 'v1-referrers');
  }
  return undefined;
}
