import { UnpackError } from './errors.js';

export type LayerCompression = 'gzip' | 'none';

const COMPRESSION = new Map<string, LayerCompression>([
  ['application/vnd.oci.image.layer.v1.tar+gzip', 'gzip'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'gzip'],
  ['application/vnd.docker.image.rootfs.diff.tar.gzip', 'gzip'],
  ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'gzip'],
  ['application/vnd.oci.image.layer.v1.tar', 'none'],
  ['application/vnd.oci.image.layer.nondistributable.v1.tar', 'none'],
]);

/** How a layer blob of this media type is compressed; throws UNSUPPORTED_MEDIA_TYPE for zstd and unknown types. */
export function layerCompression(mediaType: string): LayerCompression {
  const compression = COMPRESSION.get(mediaType);
  if (compression) return compression;
  const hint = mediaType.endsWith('zstd')
    ? 'zstd layers are not supported by the local unpacker'
    : 'expected a tar or tar+gzip layer media type';
  throw new UnpackError(
    'UNSUPPORTED_MEDIA_TYPE',
    `layer media type "${mediaType}" cannot be unpacked: ${hint}`,
  );
}
