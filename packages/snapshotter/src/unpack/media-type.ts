import { UnpackError } from './errors.js';

export type LayerCompression = 'gzip' | 'zstd' | 'none';

const COMPRESSION = new Map<string, LayerCompression>([
  ['application/vnd.oci.image.layer.v1.tar+gzip', 'gzip'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'gzip'],
  ['application/vnd.docker.image.rootfs.diff.tar.gzip', 'gzip'],
  ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'gzip'],
  ['application/vnd.oci.image.layer.v1.tar+zstd', 'zstd'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar+zstd', 'zstd'],
  ['application/vnd.oci.image.layer.v1.tar', 'none'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar', 'none'],
]);

/** How a layer blob of this media type is compressed; throws UNSUPPORTED_MEDIA_TYPE for unknown types. */
export function layerCompression(mediaType: string): LayerCompression {
  const compression = COMPRESSION.get(mediaType);
  if (compression) return compression;
  throw new UnpackError(
    'UNSUPPORTED_MEDIA_TYPE',
    `layer media type "${mediaType}" cannot be unpacked: expected a tar, tar+gzip or tar+zstd layer media type`,
  );
}
