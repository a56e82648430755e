/**
 * Putting SOCI artifacts into a registry: v1 indexes as referrers of their image manifest,
 * v2-converted images as an image index. Image layers are never uploaded again: a blob
 * the target has is skipped, one in another repository of the same registry is mounted.
 */
import type { Repository } from '@soci-ts/oci-referrers';
import { EMPTY_CONFIG_BYTES, SOCI_INDEX_V1 } from './constants.js';
import type { Descriptor } from './oci.js';
import { RegistrySource } from './registry-source.js';
import type { ImageSource } from './source.js';

/** A SOCI index ready to push: manifest bytes and the blobs it points at. */
export interface SociIndexArtifact {
  manifestBytes: Uint8Array;
  /** zTOC and prefetch blobs. */
  blobs: Uint8Array[];
}

/** Pushes the blobs, then the manifest (by digest) of a SOCI index. */
export async function pushSociIndex(repo: Repository, artifact: SociIndexArtifact): Promise<Descriptor> {
  for (const blob of artifact.blobs) await repo.pushBlob(blob);
  await repo.pushBlob(EMPTY_CONFIG_BYTES);
  // A manifest with a subject lands in the referrers tag index on registries without the API.
  return repo.pushManifest(artifact.manifestBytes);
}

/** v1 indexes already in the registry for a manifest. */
export function existingV1Indexes(repo: Repository, manifestDigest: string): Promise<Descriptor[]> {
  return repo.referrers(manifestDigest, { artifactType: SOCI_INDEX_V1 });
}

/**
 * Makes a blob of `source` present in `target`: skipped when there, mounted when the source
 * is another repository of the same registry, streamed otherwise (first upload from a local
 * layout, or between registries).
 */
export async function copyBlob(
  source: ImageSource,
  target: Repository,
  blob: Descriptor,
): Promise<'present' | 'mounted' | 'uploaded'> {
  if (await target.blobExists(blob.digest)) return 'present';
  if (source instanceof RegistrySource && source.repository.registry === target.registry) {
    if (await target.mountBlob(blob, source.repository.name)) return 'mounted';
  }
  await target.pushBlob(
    { stream: source.fetchBlob(blob), digest: blob.digest, size: blob.size },
    { mediaType: blob.mediaType },
  );
  return 'uploaded';
}
