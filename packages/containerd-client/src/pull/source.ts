import { isIndexMediaType, isManifestMediaType, type Repository } from '@soci-ts/oci-referrers';

/**
 * What pullImage reads an image through: an `@soci-ts/oci-referrers` Repository (the repository the
 * reference names), or anything with the same two methods: `fetchImageManifest` follows an index to
 * the platform's manifest and verifies digests; `fetchBlob` streams a blob and fails the stream on a
 * digest or size mismatch.
 */
export type PullSource = Pick<Repository, 'fetchImageManifest' | 'fetchBlob'>;

/** An image manifest (OCI or Docker schema 2), not an index of them. */
export function isManifestType(mediaType: string): boolean {
  return isManifestMediaType(mediaType) && !isIndexMediaType(mediaType);
}
