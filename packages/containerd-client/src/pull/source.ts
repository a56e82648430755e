import type { Repository } from '@soci-ts/oci-referrers';

/**
 * What pullImage reads an image through: an `@soci-ts/oci-referrers` Repository (the repository the
 * reference names), or anything with the same two methods: `fetchImageManifest` follows an index to
 * the platform's manifest and verifies digests; `fetchBlob` streams a blob and fails the stream on a
 * digest or size mismatch.
 */
export type ImageSource = Pick<Repository, 'fetchImageManifest' | 'fetchBlob'>;

const MANIFEST_TYPES = new Set([
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
]);

export function isManifestType(mediaType: string): boolean {
  return MANIFEST_TYPES.has(mediaType);
}

/** Layer media types containerd 1.6 unpacks (images.IsLayerType): OCI tar(+gzip/+zstd), nondistributable, docker. */
export function isLayerType(mediaType: string): boolean {
  if (mediaType.startsWith('application/vnd.oci.image.layer.')) return true;
  return (
    mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip' ||
    mediaType === 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'
  );
}
