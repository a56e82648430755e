// @soci-ts/soci-index: SOCI indexes (v1, v2) for OCI images: build, store, bind, discover.
// OCI shapes, digests, platforms and the registry client are @soci-ts/oci-referrers'; import them from there.

export type { AbortOptions } from './abort.js';
export { ArchiveSource } from './archive-source.js';
export {
  type BuildOptions,
  type BuildProgress,
  type BuiltSociIndex,
  buildSociIndex,
  type LayerResult,
} from './build.js';
export {
  ANNOTATION_BUILD_TOOL,
  ANNOTATION_DISABLE_XATTRS,
  ANNOTATION_IMAGE_MANIFEST_DIGEST,
  ANNOTATION_INDEX_DIGEST,
  ANNOTATION_LAYER_DIGEST,
  ANNOTATION_LAYER_MEDIA_TYPE,
  ANNOTATION_SPAN_SIZE,
  artifactTypeOf,
  BUILD_TOOL_IDENTIFIER,
  DEFAULT_MIN_LAYER_SIZE,
  DEFAULT_SPAN_SIZE,
  PREFETCH_MEDIA_TYPE,
  SOCI_INDEX_V1,
  SOCI_INDEX_V2,
  type SociIndexVersion,
  ZTOC_MEDIA_TYPE,
} from './constants.js';
export {
  type ConvertedImage,
  type ConvertedPlatformImage,
  convertImage,
  type PushConvertedOptions,
  type PushStep,
  pushConvertedImage,
} from './convert.js';
export {
  annotateManifestForV2,
  type ConvertedPlatform,
  convertImageIndex,
  wrapManifestInIndex,
} from './convert-manifests.js';
export {
  type DiscoveryRepository,
  type FindOptions,
  type FoundSociIndex,
  findSociIndex,
} from './discover.js';
export type { EncodedManifest } from './encode.js';
export { SociIndexError, type SociIndexErrorCode } from './errors.js';
export {
  type ImageRoot,
  loadImageRoot,
  loadPlatformImage,
  type PlatformImage,
  platformEntries,
  selectPlatformImage,
} from './image.js';
export { ImageFiles } from './image-files.js';
export { parseImageManifest } from './image-manifest.js';
export {
  type BlobRepository,
  type FetchZtocOptions,
  fetchPrefetch,
  fetchZtoc,
  type IndexBlobRef,
} from './index-blobs.js';
export {
  buildIndexManifest,
  type PrefetchRef,
  parseIndexManifest,
  type SociIndex,
  sociVersionOf,
  type ZtocRef,
  ztocForLayer,
} from './index-manifest.js';
export { LayoutSource } from './layout-source.js';
export { DEFAULT_SOCI_INDEX_LIMITS, type ParseOptions, type SociIndexLimits } from './limits.js';
export { type MergedEntry, MergedView } from './merged-view.js';
export { encodePrefetch, type PrefetchSpan, parsePrefetch } from './prefetch.js';
export {
  formatPrefetchEntry,
  type PrefetchEntry,
  type PrefetchPlan,
  parsePrefetchList,
  planPrefetch,
} from './prefetch-plan.js';
export { copyBlob, existingV1Indexes, pushSociIndex, type SociIndexArtifact } from './push.js';
export { RegistrySource } from './registry-source.js';
export type { ImageSource } from './source.js';
export { ANNOTATION_CREATED, ANNOTATION_IMAGE_REF, LocalStore, type StoredIndex } from './store.js';
export { createWorkerPool, type WorkerPool } from './worker-pool.js';
export { type BuiltZtoc, inThreadZtocBuilder, type ZtocBuilder } from './ztoc-builder.js';
export { runZtocWorker } from './ztoc-worker.js';
