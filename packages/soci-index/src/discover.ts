/**
 * Finding the SOCI index of an image manifest in a registry, in the reference snapshotter's
 * order: an explicit index digest; the v2 annotation on the manifest; v1 referrers (first).
 * An index that names another image manifest as its subject (or a v1 index naming none) is
 * refused with WRONG_SUBJECT, whichever way it was found.
 */
import type { Repository } from '@soci-ts/oci-referrers';
import { checkIndexSubject } from './binding.js';
import { ANNOTATION_INDEX_DIGEST, SOCI_INDEX_V1 } from './constants.js';
import { parseIndexManifest, type SociIndex } from './index-manifest.js';
import type { ParseOptions } from './limits.js';
import type { Descriptor, ImageManifest } from './oci.js';

export interface FindOptions extends ParseOptions {
  /** An index digest given by the user (e.g. a snapshot label); tried first. */
  explicitDigest?: string;
  /** Look at the v2 annotation on the manifest (default true). */
  v2?: boolean;
  /** Look for v1 referrers (default true). */
  v1?: boolean;
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

export async function findSociIndex(
  repo: DiscoveryRepository,
  manifestDigest: string,
  options: FindOptions = {},
): Promise<FoundSociIndex | undefined> {
  const load = async (digest: string, via: FoundSociIndex['via']): Promise<FoundSociIndex> => {
    const fetched = await repo.fetchManifest(digest);
    const found: FoundSociIndex = {
      descriptor: fetched.descriptor,
      bytes: fetched.bytes,
      index: parseIndexManifest(fetched.bytes, options),
      via,
    };
    checkIndexSubject(found.index, manifestDigest, digest);
    return found;
  };
  if (options.explicitDigest) return load(options.explicitDigest, 'explicit');
  if (options.v2 ?? true) {
    const { manifest } = await repo.fetchManifest(manifestDigest);
    const digest = (manifest as ImageManifest).annotations?.[ANNOTATION_INDEX_DIGEST];
    if (digest) return load(digest, 'v2-annotation');
  }
  if (options.v1 ?? true) {
    const [first] = await repo.referrers(manifestDigest, {
      artifactType: SOCI_INDEX_V1,
      tagFallback: options.referrersTagFallback ?? true,
    });
    if (first) return load(first.digest, 'v1-referrers');
  }
  return undefined;
}
