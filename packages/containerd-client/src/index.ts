export { ContainerdClient, type ContainerdClientOptions } from './client.js';
export {
  ContainerdError,
  type ContainerdErrorCode,
  type ContainerdErrorOptions,
  isAlreadyExists,
  isNotFound,
  PullError,
  type PullErrorCode,
} from './errors.js';
export {
  CONTAINERD_LOADER_OPTIONS,
  CONTAINERD_PROTO_DIR,
  CONTAINERD_PROTO_FILES,
  type ContainerdService,
  loadContainerdPackageDefinition,
  loadContainerdProtos,
} from './protos.js';
export { chainIds } from './pull/chain-id.js';
export {
  configSnapshotGcLabel,
  distributionSourceLabel,
  imageLayersLabel,
  isInheritedSnapshotLabel,
  LABEL,
  MAX_LABEL_BYTES,
  manifestGcLabels,
  snapshotLabels,
} from './pull/labels.js';
export type { LayerReport } from './pull/layer-pull.js';
export { type PullImageOptions, type PullReport, pullImage } from './pull/pull.js';
export type { PullSource } from './pull/source.js';
export {
  type BlobData,
  ContentService,
  type WriteBlobOptions,
  type WriteBlobResult,
} from './services/content.js';
export { DiffService } from './services/diff.js';
export { type ImageInput, ImagesService } from './services/images.js';
export { LEASE_EXPIRE_LABEL, LeasesService } from './services/leases.js';
export { NamespacesService } from './services/namespaces.js';
export { SnapshotsService } from './services/snapshots.js';
export { LEASE_HEADER, NAMESPACE_HEADER } from './transport.js';
export type {
  ContentInfo,
  ImageRecord,
  Labels,
  Lease,
  Mount,
  SnapshotInfo,
  SnapshotKind,
  SnapshotUsage,
} from './types.js';
