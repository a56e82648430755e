import { decodeSpan } from '@soci-ts/seekable-gzip';
import { spanLayout, type Ztoc } from '@soci-ts/ztoc';
import { LazyFsError } from './errors.js';
import type { ByteRange, LayerSpans } from './layer-spans.js';
import type { LayerDescriptor } from './types.js';

/**
 * The spans of a layer as its zTOC describes them. Gzip spans decode from their checkpoint
 * (seekable-gzip, native zlib off the event loop); plain-tar spans are their own bytes.
 */
export function layerSpansOf(ztoc: Ztoc, layer: LayerDescriptor): LayerSpans {
  if (ztoc.compressedArchiveSize !== layer.size) {
    throw new LazyFsError(
      'BAD_ZTOC',
      `the zTOC describes a ${ztoc.compressedArchiveSize}-byte blob but layer ${layer.digest} has ${layer.size} bytes; use the zTOC built for this layer`,
    );
  }
  let layout: ReturnType<typeof spanLayout>;
  try {
    layout = spanLayout(ztoc);
  } catch (cause) {
    throw new LazyFsError('BAD_ZTOC', `the zTOC of layer ${layer.digest} is unusable: ${String(cause)}`, {
      cause,
    });
  }
  const digests = ztoc.compressionInfo.spanDigests;
  if (digests.length !== layout.spanCount) {
    throw new LazyFsError(
      'BAD_ZTOC',
      `the zTOC of layer ${layer.digest} has ${digests.length} span digests for ${layout.spanCount} spans`,
    );
  }
  // Ranges are looked up on every read: compute them once.
  const n = layout.spanCount;
  const compressed = new Float64Array(2 * n);
  const uncompressed = new Float64Array(2 * n);
  for (let id = 0; id < n; id++) {
    const r = layout.range(id);
    compressed[2 * id] = r.compressedStart;
    compressed[2 * id + 1] = r.compressedEnd;
    uncompressed[2 * id] = r.uncompressedStart;
    uncompressed[2 * id + 1] = r.uncompressedEnd;
  }
  const gzipIndex = layout.gzipIndex;
  return {
    spanCount: n,
    uncompressedSize: ztoc.uncompressedArchiveSize,
    compressedRange: (id): ByteRange => ({ start: compressed[2 * id]!, end: compressed[2 * id + 1]! }),
    uncompressedRange: (id): ByteRange => ({ start: uncompressed[2 * id]!, end: uncompressed[2 * id + 1]! }),
    spanForOffset: (offset) => layout.spanAt(offset),
    digest: (id) => digests[id]!,
    decode: gzipIndex ? (id, bytes) => decodeSpan(gzipIndex, id, bytes) : async (_id, bytes) => bytes.slice(), // the fetch buffer may hold several spans: keep only this one
  };
}
