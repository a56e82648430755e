import { type LayerCompression, layerCompressionOf } from '@soci-ts/oci-referrers';
import { UnpackError } from './errors.js';

export type { LayerCompression };

/** How a layer blob of this media type is compressed; throws UNSUPPORTED_MEDIA_TYPE for unknown types. */
export function layerCompression(mediaType: string): LayerCompression {
  const compression = layerCompressionOf(mediaType);
  if (compression) return compression;
  throw new UnpackError(
    'SNAPSHOTTER_UNSUPPORTED_MEDIA_TYPE',
    `layer media type "${mediaType}" cannot be unpacked: expected a tar, tar+gzip or tar+zstd layer media type`,
  );
}
