import { type LayerSpans, layerSpans, type Ztoc } from '@soci-ts/ztoc';
import { LazyFsError, messageOf } from './errors.js';
import type { LayerDescriptor } from './types.js';

/**
 * The spans of a layer as its zTOC describes them, once the zTOC is known to be this layer's: a
 * zTOC of another blob would have every range read the wrong bytes (and fail every digest).
 */
export function layerSpansOf(ztoc: Ztoc, layer: LayerDescriptor): LayerSpans {
  if (ztoc.compressedArchiveSize !== layer.size) {
    throw new LazyFsError(
      'LAZYFS_BAD_ZTOC',
      `the zTOC describes a ${ztoc.compressedArchiveSize}-byte blob but layer ${layer.digest} has ${layer.size} bytes; use the zTOC built for this layer`,
    );
  }
  try {
    return layerSpans(ztoc);
  } catch (cause) {
    throw new LazyFsError(
      'LAZYFS_BAD_ZTOC',
      `the zTOC of layer ${layer.digest} is unusable: ${messageOf(cause)}; rebuild it from the layer`,
      { cause },
    );
  }
}
