/** Names and fixed values of the SOCI artifacts (shared/spec/soci-compat.md section 3). */

export const SOCI_INDEX_V1 = 'application/vnd.amazon.soci.index.v1+json';
export const SOCI_INDEX_V2 = 'application/vnd.amazon.soci.index.v2+json';
export const ZTOC_MEDIA_TYPE = 'application/octet-stream';
export const PREFETCH_MEDIA_TYPE = 'application/vnd.amazon.soci.prefetch.v1+json';

export const ANNOTATION_LAYER_DIGEST = 'com.amazon.soci.image-layer-digest';
export const ANNOTATION_LAYER_MEDIA_TYPE = 'com.amazon.soci.image-layer-mediaType';
export const ANNOTATION_SPAN_SIZE = 'com.amazon.soci.span-size';
export const ANNOTATION_BUILD_TOOL = 'com.amazon.soci.build-tool-identifier';
export const ANNOTATION_DISABLE_XATTRS = 'com.amazon.soci.disable-xattrs';
/** On a v2-converted image manifest: digest of its SOCI index. */
export const ANNOTATION_INDEX_DIGEST = 'com.amazon.soci.index-digest';
/** On a SOCI index descriptor inside an image index: the manifest it indexes. */
export const ANNOTATION_IMAGE_MANIFEST_DIGEST = 'com.amazon.soci.image-manifest-digest';

/** The config of every SOCI index is the image spec's empty JSON blob `{}` (owned by oci-referrers). */
export {
  EMPTY_JSON_BYTES as EMPTY_CONFIG_BYTES,
  EMPTY_JSON_DIGEST as EMPTY_CONFIG_DIGEST,
} from '@soci-ts/oci-referrers';

/** Defaults of the reference CLI. */
export const DEFAULT_SPAN_SIZE = 4 * 1024 * 1024;
export const DEFAULT_MIN_LAYER_SIZE = 10 * 1024 * 1024;

export const BUILD_TOOL_IDENTIFIER = 'soci-ts v0.1.0';

export type SociIndexVersion = 'v1' | 'v2';

export function artifactTypeOf(version: SociIndexVersion): string {
  return version === 'v1' ? SOCI_INDEX_V1 : SOCI_INDEX_V2;
}
