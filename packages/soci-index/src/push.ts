/**
 * Putting SOCI artifacts into a registry: v1 indexes as referrers of their image manifest,
 * v2-converted images as an image index. Image layers are never uploaded again: a blob
 * the target has is skipped, one in another repository of the same registry is mounted.
 */
import type { Repository } from '@soci-ts/oci-referrers';
import { type AbortOptions, abortable, checkAborted } from './abort.js';
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
export function pushSociIndex(
  repo: Repository,
  artifact: SociIndexArtifact,
  options: AbortOptions = {},
): Promise<Descriptor> {
  const { signal } = options;
  const what = `pushing a SOCI index to ${repo.name}`;
  return abortable(signal, what, async () => {
    for (const blob of [...artifact.blobs, EMPTY_CONFIG_BYTES]) {
      checkAborted(signal, what);
      await repo.pushBlob(blob, { signal });
    }
    checkAborted(signal, what);
    // A manifest with a subject lands in the referrers tag index on registries without the API.
    return repo.pushManifest(artifact.manifestBytes, { signal });
  });
}

/** v1 indexes already in the registry for a manifest. */
export function existingV1Indexes(
  repo: Repository,
  manifestDigest: string,
  options: AbortOptions = {},
): Promise<Descriptor[]> {
  return abortable(options.signal, `listing the v1 SOCI indexes of ${manifestDigest}`, () =>
    repo.referrers(manifestDigest, { artifactType: SOCI_INDEX_V1, signal: options.signal }),
  );
}

/**
 * Makes a blob of `source` present in `target`: skipped when there, mounted when the source
 * is another repository of the same registry, streamed otherwise (first upload from a local
 * layout, or between registries).
 */
export function copyBlob(
  source: ImageSource,
  target: Repository,
  blob: Descriptor,
  options: AbortOptions = {},
): Promise<'present' | 'mounted' | 'uploaded'> {
  const { signal } = options;
  const what = `copying blob ${blob.digest} to ${target.name}`;
  return abortable(signal, what, async () => {
    if (await target.blobExists(blob.digest, { signal })) return 'present';
    checkAborted(signal, what);
    if (source instanceof RegistrySource && source.repository.registry === target.registry) {
      if (await target.mountBlob(blob, source.repository.name, { signal })) return 'mounted';
      checkAborted(signal, what);
    }
    await target.pushBlob(
      { stream: source.fetchBlob(blob, { signal }), digest: blob.digest, size: blob.size },
      { mediaType: blob.mediaType, signal },
    );
    return 'uploaded';
  });
}
