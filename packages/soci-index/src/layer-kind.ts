import { layerCompressionOf } from '@soci-ts/oci-referrers';
import { SociIndexError } from './errors.js';
import type { Descriptor } from './oci.js';

/** How a layer blob is compressed, as far as building a zTOC is concerned. */
export type LayerCompression = 'gzip' | 'uncompressed';

/**
 * The compression of a layer from its media type. zstd and unknown types cannot be
 * indexed (the zTOC format has no checkpoints for them) and get an UNSUPPORTED_LAYER error.
 */
export function layerCompression(layer: Descriptor): LayerCompression {
  const type = layer.mediaType;
  const compression = layerCompressionOf(type);
  if (compression === 'gzip') return 'gzip';
  if (compression === 'none') return 'uncompressed';
  if (compression === 'zstd') {
    throw new SociIndexError(
      'UNSUPPORTED_LAYER',
      `layer ${layer.digest} is zstd-compressed (${type}); SOCI indexes only gzip and uncompressed tar layers: ` +
        'rebuild the image with gzip layers, or raise --min-layer-size above its size to skip it',
    );
  }
  throw new SociIndexError(
    'UNSUPPORTED_LAYER',
    `layer ${layer.digest} has media type ${type}, which is not a tar layer SOCI can index; ` +
      'raise --min-layer-size above its size to skip it',
  );
}
