import { layerCompressionOf } from '@soci-ts/oci-referrers';
import type { CompressionAlgorithm } from '@soci-ts/ztoc';
import { SociIndexError } from './errors.js';
import type { Descriptor } from './oci.js';

/**
 * The compression of a layer from its media type. zstd and unknown types cannot be
 * indexed (the zTOC format has no checkpoints for them) and get an INDEX_UNSUPPORTED_LAYER error.
 */
export function layerCompression(layer: Descriptor): CompressionAlgorithm {
  const type = layer.mediaType;
  const compression = layerCompressionOf(type);
  if (compression === 'gzip') return 'gzip';
  if (compression === 'none') return 'uncompressed';
  if (compression === 'zstd') {
    throw new SociIndexError(
      'INDEX_UNSUPPORTED_LAYER',
      `layer ${layer.digest} is zstd-compressed (${type}); SOCI indexes only gzip and uncompressed tar layers: ` +
        'rebuild the image with gzip layers, or raise --min-layer-size above its size to skip it',
    );
  }
  throw new SociIndexError(
    'INDEX_UNSUPPORTED_LAYER',
    `layer ${layer.digest} has media type ${type}, which is not a tar layer SOCI can index; ` +
      'raise --min-layer-size above its size to skip it',
  );
}
