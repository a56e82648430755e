export {
  DEFAULT_ROOT,
  defaultConfig,
  formatConfig,
  loadConfigFile,
  parseConfig,
  type SnapshotterConfig,
} from './config.js';
export { ConfigError } from './config-error.js';
export {
  type RemoteSourceContext,
  type RunningSnapshotter,
  type StartOptions,
  startSnapshotter,
} from './daemon.js';
export { SnapshotError, type SnapshotErrorCode } from './errors.js';
export {
  NoRemoteLayers,
  REMOTE_LABEL_VALUE,
  type RemoteLayerSource,
  type RemotePrepareRequest,
  type RemotePrepareResult,
  type RemoteRestoreRequest,
  type UnmountReason,
} from './remote.js';
export { type SnapshotInfo, Snapshotter, type SnapshotterOptions } from './snapshotter.js';
export { SociRemoteSource, type SociRemoteSourceOptions } from './soci/soci-source.js';
export { UnpackError, type UnpackErrorCode } from './unpack/errors.js';
export { type UnpackLayerOptions, unpackLayer } from './unpack/unpack-layer.js';
