import { SociIndexError } from './errors.js';
import type { SociIndex } from './index-manifest.js';

/**
 * Refuses to use a SOCI index for an image manifest it does not belong to. A v1 index names its
 * image in `subject`; the referrers listing (or the tag that stands in for it) that led to the
 * index is only the registry's word, so an index whose subject is missing or another manifest
 * would bind another image's zTOCs to this one's layers. A v2 index has no subject (the image
 * manifest names the index); when it carries one anyway, that must match too.
 */
export function checkIndexSubject(index: SociIndex, manifestDigest: string, indexDigest: string): void {
  const subject = index.subject?.digest;
  if (subject === manifestDigest || (subject === undefined && index.version === 'v2')) return;
  throw new SociIndexError(
    'INDEX_WRONG_SUBJECT',
    `SOCI index ${indexDigest} ${subject === undefined ? 'has no subject' : `is for image manifest ${subject}`}, ` +
      `not for ${manifestDigest}: it cannot be used for this image; rebuild the index for it with \`soci create\``,
  );
}
