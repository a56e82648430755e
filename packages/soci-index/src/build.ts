/**
 * Builds a SOCI index for one platform image: every layer at or above the minimum size is
 * streamed once through the zTOC builder; layers run in parallel. Nothing is written
 * anywhere: the caller stores or pushes the result.
 */

import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { digestOf } from '@soci-ts/oci-referrers';

import { decodeZtoc, type Ztoc } from '@soci-ts/ztoc';

import { type AbortOptions, abortable, abortableChunks } from './abort.js';
import { largestFirst, mapConcurrent } from './concurrency.js';

import {
  BUILD_TOOL_IDENTIFIER,
  DEFAULT_MIN_LAYER_SIZE,
  DEFAULT_SPAN_SIZE,
  type SociIndexVersion,
} from './constants.js';

import type { EncodedManifest } from './encode.js';
import { SociIndexError } from './errors.js';

import type { PlatformImage } from './image.js';
import { buildIndexManifest, type PrefetchRef, type SociIndex, type ZtocRef } from './index-manifest.js';

import { layerCompression } from './layer-kind.js';

import type { Descriptor, ImageManifest } from './oci.js';
import { encodePrefetch } from './prefetch.js';

import { type PrefetchEntry, planPrefetch } from './prefetch-plan.js';

import type { ImageSource } from './source.js';
import { inThreadZtocBuilder, type ZtocBuilder } from './ztoc-builder.js';

export interface BuildProgress {
  /** Digest of the image manifest being indexed. */
  imageDigest: string;
  layer: Descriptor;
  /** Position of the layer in the image manifest. */
  layerIndex: number;
  state: 'reading' | 'done' | 'skipped';
  /** Compressed bytes read so far. */
  bytesRead: number;
  /** Why the layer gets no zTOC (state 'skipped'). */
  reason?: string;
}

export interface BuildOptions extends AbortOptions {
  /** Uncompressed bytes per span (default 4 MiB). */
  spanSize?: number;
  /** Layers with fewer compressed bytes get no zTOC (default 10 MiB). */
  minLayerSize?: number;
  /** v2 (default) has no subject; v1 points at the image manifest. */
  version?: SociIndexVersion;
  /** Layers built at once (default: the number of cores). */
  concurrency?: number;
  buildToolIdentifier?: string;
  onProgress?: (progress: BuildProgress) => void;
  /** How a layer stream becomes a zTOC (default: in this thread; see createWorkerPool). */
  ztocBuilder?: ZtocBuilder;
  /**
   * Paths in the image (files, parts of files, directories) whose data a container reads
   * first: their spans go into prefetch blobs, in this order (see parsePrefetchList).
   */
  prefetch?: readonly (string | PrefetchEntry)[];
}

export interface LayerResult {
  layer: Descriptor;
  /** The zTOC and its encoding, when the layer was indexed. */
  ztoc?: { ztoc: Ztoc; bytes: Uint8Array; ref: ZtocRef };
  skipped?: string;
}

export interface BuiltSociIndex {
  index: SociIndex;
  manifest: EncodedManifest<ImageManifest>;
  /** What the manifest's layers point at: encoded zTOCs in layer order, then prefetch blobs. */
  blobs: Uint8Array[];
  layers: LayerResult[];
  /** Listed prefetch entries the image does not have, as list lines. */
  prefetchMissing: string[];
  image: PlatformImage;
}

/** Whether a zTOC needs xattr support: any PAX record, or an opaque-directory marker. */
export function ztocNeedsXattrs(ztoc: Ztoc): boolean {
  return ztoc.toc.some((f) => Object.keys(f.xattrs).length > 0 || /(^|\/)\.wh\.\.wh\.\.opq$/.test(f.name));
}

/**
 * Builds the SOCI index of one platform image of `source`. With `signal`, an abort stops every
 * layer stream and ends the build with INDEX_ABORTED.
 */
export function buildSociIndex(
  source: ImageSource,
  image: PlatformImage,
  options: BuildOptions = {},
): Promise<BuiltSociIndex> {
  const what = `indexing ${image.descriptor.digest} of ${source.reference}`;
  return abortable(options.signal, what, () => build(source, image, options, what));
}

async function build(
  source: ImageSource,
  image: PlatformImage,
  options: BuildOptions,
  what: string,
): Promise<BuiltSociIndex> {
  const { signal } = options;
  const spanSize = options.spanSize ?? DEFAULT_SPAN_SIZE;
  const minLayerSize = options.minLayerSize ?? DEFAULT_MIN_LAYER_SIZE;
  const version = options.version ?? 'v2';
  const buildToolIdentifier = options.buildToolIdentifier ?? BUILD_TOOL_IDENTIFIER;
  const report = options.onProgress ?? (() => {});
  if (!Number.isSafeInteger(spanSize) || spanSize <= 0) {
    throw new SociIndexError(
      'INDEX_INVALID_ARGUMENT',
      `span size must be a positive integer, got ${spanSize}`,
    );
  }
  const layers = image.manifest.layers;
  // Classify every layer before reading any, so an unsupported one fails fast.
  const plan = layers.map((layer) => (layer.size < minLayerSize ? undefined : layerCompression(layer)));

  const results = await mapConcurrent(
    layers,
    options.concurrency ?? availableParallelism(),
    async (layer, layerIndex) => {
      const compression = plan[layerIndex];
      if (!compression) {
        const reason = `smaller than the minimum layer size (${layer.size} < ${minLayerSize} bytes)`;
        report({
          imageDigest: image.descriptor.digest,
          layer,
          layerIndex,
          state: 'skipped',
          bytesRead: 0,
          reason,
        });
        return { layer, skipped: reason } satisfies LayerResult;
      }
      let bytesRead = 0;
      const hash = createHash('sha256');
      async function* counted(): AsyncIterable<Uint8Array> {
        report({ imageDigest: image.descriptor.digest, layer, layerIndex, state: 'reading', bytesRead });
        const chunks = abortableChunks(source.fetchBlob(layer, { signal }), signal, what);
        for await (const chunk of chunks) {
          hash.update(chunk);
          bytesRead += chunk.length;
          report({ imageDigest: image.descriptor.digest, layer, layerIndex, state: 'reading', bytesRead });
          yield chunk;
        }
      }
      let ztoc: Ztoc;
      let bytes: Uint8Array;
      try {
        const builder = options.ztocBuilder ?? inThreadZtocBuilder;
        const built = await builder(counted(), { spanSize, compression, buildToolIdentifier });
        bytes = built.bytes;
        ztoc = built.ztoc ?? decodeZtoc(bytes);
      } catch (err) {
        if (err instanceof SociIndexError) throw err;
        throw new SociIndexError(
          'INDEX_LAYER_BUILD_FAILED',
          `cannot index layer ${layer.digest} of ${source.reference}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      const actual = `sha256:${hash.digest('hex')}`;
      if (layer.digest.startsWith('sha256:') && actual !== layer.digest) {
        throw new SociIndexError(
          'INDEX_DIGEST_MISMATCH',
          `layer ${layer.digest} of ${source.reference} has different content (${actual}); the image source is corrupt`,
        );
      }
      const ref: ZtocRef = {
        digest: digestOf(bytes),
        size: bytes.length,
        layerDigest: layer.digest,
        layerMediaType: layer.mediaType,
        spanSize,
      };
      report({ imageDigest: image.descriptor.digest, layer, layerIndex, state: 'done', bytesRead });
      return { layer, ztoc: { ztoc, bytes, ref } } satisfies LayerResult;
    },
    largestFirst(layers.map((l) => l.size)),
  );

  const indexed = results.flatMap((r) => (r.ztoc ? [r.ztoc] : []));
  if (indexed.length === 0) {
    throw new SociIndexError(
      'INDEX_NO_LAYERS_INDEXED',
      `no layer of ${source.reference} is ${minLayerSize} bytes or larger, so there is nothing to index; lower --min-layer-size`,
    );
  }
  const prefetch = options.prefetch
    ? prefetchBlobs(results, options.prefetch)
    : { refs: [], blobs: [], missing: [] };
  const index: SociIndex = {
    version,
    buildToolIdentifier,
    disableXattrs: !indexed.some((z) => ztocNeedsXattrs(z.ztoc)),
    ztocs: indexed.map((z) => z.ref),
    prefetches: prefetch.refs,
    ...(version === 'v1' ? { subject: subjectOf(image) } : {}),
  };
  return {
    index,
    manifest: buildIndexManifest(index),
    blobs: [...indexed.map((z) => z.bytes), ...prefetch.blobs],
    layers: results,
    image,
    prefetchMissing: prefetch.missing,
  };
}

/** One prefetch blob per layer that holds data of the listed paths. */
function prefetchBlobs(results: LayerResult[], entries: readonly (string | PrefetchEntry)[]) {
  const plan = planPrefetch(
    results.map((r) => r.ztoc?.ztoc),
    entries,
  );
  const blobs: Uint8Array[] = [];
  const refs: PrefetchRef[] = [];
  for (const [layerIndex, spans] of [...plan.layers].sort((a, b) => a[0] - b[0])) {
    const bytes = encodePrefetch(spans);
    blobs.push(bytes);
    refs.push({
      digest: digestOf(bytes),
      size: bytes.length,
      layerDigest: results[layerIndex]!.layer.digest,
    });
  }
  return { refs, blobs, missing: plan.missing };
}

function subjectOf(image: PlatformImage): Descriptor {
  return {
    mediaType: image.descriptor.mediaType,
    digest: image.descriptor.digest,
    size: image.descriptor.size,
  };
}
