// Layer media types: the one place that says which descriptor types are image layers and how
// their blobs are compressed (the unpacker, the index builder and the pull all ask here).
import { MediaType } from './types.js';

/** How a layer blob is compressed. */
export type LayerCompression = 'gzip' | 'zstd' | 'none';

/** Every tar layer type of the OCI image spec and Docker's image manifest v2 schema 2. */
const LAYER_COMPRESSION: ReadonlyMap<string, LayerCompression> = new Map([
  [MediaType.OciLayer, 'none'],
  [MediaType.OciLayerGzip, 'gzip'],
  [MediaType.OciLayerZstd, 'zstd'],
  // Deprecated by the image spec, still found in the wild.
  [MediaType.OciLayerNondistributable, 'none'],
  [MediaType.OciLayerNondistributableGzip, 'gzip'],
  [MediaType.OciLayerNondistributableZstd, 'zstd'],
  [MediaType.DockerLayer, 'none'],
  [MediaType.DockerLayerGzip, 'gzip'],
  [MediaType.DockerForeignLayerGzip, 'gzip'],
  [MediaType.DockerLayerZstd, 'zstd'],
]);

/** The compression of a tar layer of this media type; undefined when it is not one of them. */
export function layerCompressionOf(mediaType: string): LayerCompression | undefined {
  return LAYER_COMPRESSION.get(mediaType);
}

/**
 * Whether containerd treats a descriptor of this type as a layer (its images.IsLayerType): every
 * tar layer type above and any other `application/vnd.oci.image.layer.` type (encrypted layers,
 * for instance), which containerd hands to its unpacker as it does the others.
 */
export function isLayerMediaType(mediaType: string): boolean {
  return LAYER_COMPRESSION.has(mediaType) || mediaType.startsWith('application/vnd.oci.image.layer.');
}
