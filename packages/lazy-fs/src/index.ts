export type { SpanRangeRequest } from './background-fetcher.js';
export {
  type CorruptEntry,
  DEFAULT_SPAN_CACHE_BYTES,
  DiskSpanCache,
  type DiskSpanCacheOptions,
  spanCacheKey,
} from './disk-cache.js';
export { errnoOf, LazyFsError, type LazyFsErrorCode } from './errors.js';
export { FileTree, type FileTreeOptions, type Inode, type InodeKind, type OpaqueXattr } from './file-tree.js';
export {
  Errno,
  type FuseBackend,
  type FuseDirEntry,
  type FuseMount,
  type FuseMountOptions,
  type FuseNodeOps,
  type FuseStat,
  type FuseStatfs,
} from './fuse/backend.js';
export { FuseNativeBackend } from './fuse/fuse-native-backend.js';
export { type FuseKeeper, type FuseKeeperOptions, startFuseKeeper } from './fuse/keeper.js';
export { KeeperFuseBackend, type KeeperFuseBackendOptions } from './fuse/keeper-backend.js';
export type { KeptSessionInfo } from './fuse/keeper-protocol.js';
export type { FileRead } from './fuse/layer-ops.js';
export { layerOps } from './fuse/layer-ops.js';
export { forceUnmount, isMounted } from './fuse/mount-table.js';
export { type LazyFsMetrics, noopMetrics } from './metrics.js';
export {
  attachRemoteLayer,
  type MountedLayer,
  type MountRemoteLayerOptions,
  mountRemoteLayer,
} from './mount.js';
export { RemoteLayer, type RemoteLayerOptions, type RemoteLayerStats } from './remote-layer.js';
export { SpanMemoryCache } from './span-manager-options.js';
export type { BlobRangeReader, FetchPriority, LayerDescriptor } from './types.js';
export { removeStaleSocket, type SocketPathState, socketPathState } from './unix-socket.js';
