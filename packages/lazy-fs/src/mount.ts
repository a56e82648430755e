import type { Ztoc } from '@soci-ts/ztoc';
import { DEFAULT_SPAN_CACHE_BYTES, DiskSpanCache } from './disk-cache.js';
import type { FuseBackend, FuseMount, FuseMountOptions, FuseNodeOps } from './fuse/backend.js';
import { FuseNativeBackend } from './fuse/fuse-native-backend.js';
import { type LayerOpsOptions, layerOps } from './fuse/layer-ops.js';
import { RemoteLayer, type RemoteLayerOptions, type RemoteLayerStats } from './remote-layer.js';
import type { BlobRangeReader } from './types.js';

export interface MountRemoteLayerOptions
  extends Omit<RemoteLayerOptions, 'layer' | 'cache' | 'ztoc' | 'blob'> {
  ztoc: Ztoc;
  blob: BlobRangeReader;
  /** `sha256:<hex>` of the layer blob. */
  layerDigest: string;
  /** Layer blob size; defaults to the zTOC's compressed archive size. */
  layerSize?: number;
  /** Directory to mount on (created when missing). */
  mountpoint: string;
  /** Span cache directory; ignored when `cache` is given. */
  cacheDir?: string;
  /** Byte budget of a cache opened from `cacheDir`. Default DEFAULT_SPAN_CACHE_BYTES (10 GiB). */
  cacheBudgetBytes?: number;
  /** A disk cache shared with other layers. */
  cache?: DiskSpanCache;
  fuse?: FuseMountOptions;
  /** FUSE binding; fuse-native unless replaced. */
  backend?: FuseBackend;
  /** Called for every read through the mount (path, offset, length, file size). */
  onRead?: LayerOpsOptions['onRead'];
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
  return (await serveLayer(options, (ops, fuse) => backend.mount(options.mountpoint, ops, fuse)))!;
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
  return serveLayer(options, (ops, fuse) => backend.attach!(options.mountpoint, ops, fuse));
}

async function serveLayer(
  options: MountRemoteLayerOptions,
  start: (ops: FuseNodeOps, fuse: FuseMountOptions) => Promise<FuseMount | undefined>,
): Promise<MountedLayer | undefined> {
  const cache =
    options.cache ??
    (options.cacheDir
      ? await DiskSpanCache.open({
          root: options.cacheDir,
          budgetBytes: options.cacheBudgetBytes ?? DEFAULT_SPAN_CACHE_BYTES,
        })
      : undefined);
  const layer = new RemoteLayer({
    ...options,
    layer: { digest: options.layerDigest, size: options.layerSize ?? options.ztoc.compressedArchiveSize },
    cache,
  });
  let mount: FuseMount | undefined;
  try {
    mount = await start(layerOps(layer, { onRead: options.onRead }), {
      fsName: `soci-ts:${options.layerDigest.slice(0, 19)}`,
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
  const fuseMount = mount;
  layer.startBackground();
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
