import { DiskSpanCache, type DiskSpanCacheOptions } from './disk-cache.js';
import { abortedError } from './errors.js';
import type { FuseBackend, FuseMount, FuseMountOptions, FuseNodeOps } from './fuse/backend.js';
import { FuseNativeBackend } from './fuse/fuse-native-backend.js';
import { type LayerOpsOptions, layerOps } from './fuse/layer-ops.js';
import { RemoteLayer, type RemoteLayerOptions, type RemoteLayerStats } from './remote-layer.js';

export interface MountRemoteLayerOptions extends Omit<RemoteLayerOptions, 'cache'> {
  /** Directory to mount on (created when missing). */
  mountpoint: string;
  /**
   * The disk cache of decoded spans: an open one (shared with other layers), or where to open
   * one (`{ root, budgetBytes? }`). Without it, spans are cached in memory only.
   */
  cache?: DiskSpanCache | DiskSpanCacheOptions;
  fuse?: FuseMountOptions;
  /** FUSE binding; fuse-native unless replaced. */
  backend?: FuseBackend;
  /** Called for every read through the mount (path, offset, length, file size). */
  onRead?: LayerOpsOptions['onRead'];
  /**
   * Gives up the mount while it is being made: the call rejects with LazyFsError
   * `LAZYFS_ABORTED` (cause: the abort reason) and leaves nothing mounted or open. Once the
   * mount is up the signal has no effect: `unmount()` ends it.
   */
  signal?: AbortSignal;
}

export interface MountedLayer {
  readonly mountpoint: string;
  readonly layer: RemoteLayer;
  /** Stops background fetching, unmounts and releases the layer. Safe to call twice. */
  unmount(): Promise<void>;
  /**
   * Stops background fetching and serving but leaves the mount for a successor to take over
   * (`attachRemoteLayer`); a backend that cannot keep it unmounts.
   */
  detach(): Promise<void>;
  stats(): RemoteLayerStats;
}

/**
 * Mounts one remote layer read-only at `mountpoint`: the file tree comes from the zTOC, file
 * bytes from the blob on demand; prefetch and background fetch start once the mount is up.
 */
export async function mountRemoteLayer(options: MountRemoteLayerOptions): Promise<MountedLayer> {
  const backend = options.backend ?? new FuseNativeBackend();
  const start: StartServing = (ops, fuse) => backend.mount(options.mountpoint, ops, fuse);
  return (await serveLayer(options, 'mounting', start, (mounted) => mounted.unmount()))!;
}

/**
 * Serves a mount a previous process left with the backend's keeper at `mountpoint` (a daemon
 * restart): no new mount, so containers using it keep their files. Undefined when the backend
 * holds no session there.
 */
export async function attachRemoteLayer(
  options: MountRemoteLayerOptions & { backend: FuseBackend },
): Promise<MountedLayer | undefined> {
  const { backend } = options;
  if (!backend.attach) return undefined;
  const start: StartServing = (ops, fuse) => backend.attach!(options.mountpoint, ops, fuse);
  // The kept mount is the containers': an abort gives it back to the keeper, as it was.
  return serveLayer(options, 'attaching to', start, (mounted) => mounted.detach());
}

type StartServing = (ops: FuseNodeOps, fuse: FuseMountOptions) => Promise<FuseMount | undefined>;

async function serveLayer(
  options: MountRemoteLayerOptions,
  what: string,
  start: StartServing,
  undo: (mounted: MountedLayer) => Promise<void>,
): Promise<MountedLayer | undefined> {
  const { signal } = options;
  const abort = () => abortedError(`${what} layer ${options.layer.digest} at ${options.mountpoint}`, signal!);
  if (signal?.aborted) throw abort();
  const cache = await openCache(options.cache);
  if (signal?.aborted) throw abort(); // a cache just opened holds no files open: nothing to release
  const layer = new RemoteLayer({ ...options, cache });
  let mount: FuseMount | undefined;
  try {
    // A backend step under way is let finish (each has its own time bound) and then undone:
    // giving up before it settles could leave a mount that nobody serves or removes.
    mount = await start(layerOps(layer, { onRead: options.onRead }), {
      fsName: `soci-ts:${options.layer.digest.slice(0, 19)}`,
      ...options.fuse,
    });
  } catch (err) {
    await layer.close();
    throw err;
  }
  if (!mount) {
    await layer.close();
    return undefined;
  }
  const mounted = servedLayer(layer, mount);
  if (signal?.aborted) {
    await undo(mounted);
    throw abort();
  }
  layer.startBackground();
  return mounted;
}

function openCache(cache: MountRemoteLayerOptions['cache']): Promise<DiskSpanCache | undefined> {
  if (cache === undefined || cache instanceof DiskSpanCache) return Promise.resolve(cache);
  return DiskSpanCache.open(cache);
}

/** The handle of a layer being served through `fuseMount`. */
function servedLayer(layer: RemoteLayer, fuseMount: FuseMount): MountedLayer {
  let layerClosed: Promise<void> | undefined;
  const closeLayer = () => {
    layerClosed ??= layer.close();
    return layerClosed;
  };
  let unmounted: Promise<void> | undefined;
  let detached: Promise<void> | undefined;
  const unmount = () => {
    unmounted ??= (async () => {
      await closeLayer();
      await fuseMount.unmount();
    })();
    return unmounted;
  };
  // Serving stops first: requests taken but not answered go back to the keeper for the next
  // daemon, instead of meeting a closed layer (an error the reader would see).
  const detach = () => {
    detached ??= (async () => {
      await fuseMount.detach();
      await closeLayer();
    })();
    return detached;
  };
  return {
    mountpoint: fuseMount.mountpoint,
    layer,
    stats: () => layer.stats(),
    unmount,
    detach,
  };
}
