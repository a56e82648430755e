export { ArchiveSource } from './archive-source.js';
export {
  type BuildOptions,
  type BuildProgress,
  type BuiltSociIndex,
  buildSociIndex,
  type LayerResult,
  ztocNeedsXattrs,
} from './build.js';
export * from './constants.js';
export {
  type ConvertedImage,
  type ConvertedPlatformImage,
  convertImage,
  type PushStep,
  pushConvertedImage,
} from './convert.js';
export {
  annotateManifestForV2,
  type ConvertedPlatform,
  convertImageIndex,
  ociMediaType,
  wrapManifestInIndex,
} from './convert-manifests.js';
export {
  type DiscoveryRepository,
  type FindOptions,
  type FoundSociIndex,
  findSociIndex,
} from './discover.js';
export { type EncodedManifest, encodeManifest } from './encode.js';
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
  buildIndexManifest,
  type PrefetchRef,
  parseIndexManifest,
  type SociIndex,
  sociVersionOf,
  type ZtocRef,
  ztocForLayer,
} from './index-manifest.js';
export { type LayerCompression, layerCompression } from './layer-kind.js';
export { LayoutSource } from './layout-source.js';
export { DEFAULT_SOCI_INDEX_LIMITS, type ParseOptions, type SociIndexLimits } from './limits.js';
export { type MergedEntry, MergedView } from './merged-view.js';
export * from './oci.js';
export { formatPlatform, hostPlatform, parsePlatform, platformMatches } from './platform.js';
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
