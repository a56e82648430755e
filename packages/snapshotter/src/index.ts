export {
  ConfigError,
  DEFAULT_ROOT,
  defaultConfig,
  formatConfig,
  LOG_LEVELS,
  type LogLevel,
  loadConfigFile,
  parseConfig,
  type RegistryHostConfig,
  redactConfig,
  type SnapshotterConfig,
} from './config.js';
export {
  ContainerdContactError,
  type ContainerdContactErrorCode,
  type ContainerdVersion,
  MIN_CONTAINERD,
  TESTED_CONTAINERD_LINES,
} from './containerd-contact.js';
export {
  createLogger,
  type RemoteSourceContext,
  type RunningSnapshotter,
  type StartOptions,
  startSnapshotter,
} from './daemon.js';
export { isSnapshotError, SnapshotError, type SnapshotErrorCode } from './errors.js';
export { type FieldAdaptor, type Filter, FilterSyntaxError, parseFilter, parseFilters } from './filters.js';
export {
  MetadataStore,
  MetadataStoreError,
  type SnapshotKind,
  type SnapshotRecord,
  type SnapshotUsage,
} from './metadata-store.js';
export { SnapshotterMetrics } from './metrics.js';
export { type Mount, type MountOptions, type MountPlan, mountsFor } from './mounts.js';
export { loadSnapshotsProto, PROTO_DIR } from './proto.js';
export {
  NoRemoteLayers,
  REMOTE_LABEL_VALUE,
  type RemoteLayerSource,
  type RemotePrepareRequest,
  type RemotePrepareResult,
  type RemoteRestoreRequest,
  type UnmountReason,
} from './remote.js';
export type { RemoteOutcome } from './remote-snapshots.js';
export { type SnapshotInfo, Snapshotter, type SnapshotterOptions } from './snapshotter.js';
export { registryFromConfig } from './soci/registry-from-config.js';
export {
  SociRemoteSource,
  type SociRemoteSourceOptions,
} from './soci/soci-source.js';
export { UnpackError, type UnpackErrorCode } from './unpack/errors.js';
export { type UnpackLayerOptions, unpackLayer } from './unpack/unpack-layer.js';
