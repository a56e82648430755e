import type { Ztoc } from '@soci-ts/ztoc';
import { DiskSpanCache } from './disk-cache.js';
import type { FuseBackend, FuseMountOptions } from './fuse/backend.js';
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
  /** Byte budget of a cache opened from `cacheDir`. Default 8 GiB. */
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
  stats(): RemoteLayerStats;
}

/**
 * Mounts one remote layer read-only at `mountpoint`: the file tree comes from the zTOC, file
 * bytes from the blob on demand; prefetch and background fetch start once the mount is up.
 */
export async function mountRemoteLayer(options: MountRemoteLayerOptions): Promise<MountedLayer> {
  const cache =
    options.cache ??
    (options.cacheDir
      ? await DiskSpanCache.open({
          root: options.cacheDir,
          budgetBytes: options.cacheBudgetBytes ?? 8 * 1024 ** 3,
        })
      : undefined);
  const layer = new RemoteLayer({
    ...options,
    layer: { digest: options.layerDigest, size: options.layerSize ?? options.ztoc.compressedArchiveSize },
    cache,
  });
  const backend = options.backend ?? new FuseNativeBackend();
  let mount: Awaited<ReturnType<FuseBackend['mount']>>;
  try {
    mount = await backend.mount(options.mountpoint, layerOps(layer, { onRead: options.onRead }), {
      fsName: `soci-ts:${options.layerDigest.slice(0, 19)}`,
      ...options.fuse,
    });
  } catch (err) {
    await layer.close();
    throw err;
  }
  layer.startBackground();
  let unmounted: Promise<void> | undefined;
  return {
    mountpoint: mount.mountpoint,
    layer,
    stats: () => layer.stats(),
    unmount: () => {
      unmounted ??= (async () => {
        await layer.close();
        await mount.unmount();
      })();
      return unmounted;
    },
  };
}
