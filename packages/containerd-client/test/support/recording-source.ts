import type { Repository } from '@soci-ts/oci-referrers';
import type { PullSource } from '../../src/index.js';

/** An PullSource over a repository that records the digest of every blob the pull downloads. */
export function recordingSource(repo: Repository): PullSource & { blobs: string[] } {
  const blobs: string[] = [];
  return {
    blobs,
    fetchImageManifest: (reference, platform, options) =>
      repo.fetchImageManifest(reference, platform, options),
    fetchBlob: (blob, options) => {
      blobs.push(typeof blob === 'string' ? blob : blob.digest);
      return repo.fetchBlob(blob, options);
    },
  };
}
