import { isSha256Digest } from '@soci-ts/oci-referrers';
import {
  ANNOTATION_BUILD_TOOL,
  ANNOTATION_DISABLE_XATTRS,
  ANNOTATION_LAYER_DIGEST,
  ANNOTATION_LAYER_MEDIA_TYPE,
  ANNOTATION_SPAN_SIZE,
  artifactTypeOf,
  EMPTY_CONFIG_DIGEST,
  PREFETCH_MEDIA_TYPE,
  SOCI_INDEX_V1,
  SOCI_INDEX_V2,
  type SociIndexVersion,
  ZTOC_MEDIA_TYPE,
} from './constants.js';

import { checkDescriptor, isStringRecord } from './descriptor-check.js';

import { type EncodedManifest, encodeManifest } from './encode.js';

import { SociIndexError } from './errors.js';

import { describeJsonValue, parseJsonObject } from './json-object.js';

import { checkLimit, limitsOf, type ParseOptions } from './limits.js';

import { type Descriptor, type ImageManifest, OCI_MANIFEST } from './oci.js';

/** One zTOC of the index and the image layer it describes. */
export interface ZtocRef {
  /** Digest and size of the zTOC blob. */
  digest: string;
  size: number;
  layerDigest: string;
  layerMediaType: string;
  /** Absent in indexes written by older tools. */
  spanSize?: number;
}

/** A prefetch blob: which spans of a layer to fetch first. */
export interface PrefetchRef {
  digest: string;
  size: number;
  layerDigest: string;
}

/** A SOCI index in model form; `buildIndexManifest` and `parseIndexManifest` convert. */
export interface SociIndex {
  version: SociIndexVersion;
  buildToolIdentifier: string;
  disableXattrs: boolean;
  /** In image layer order. */
  ztocs: ZtocRef[];
  prefetches: PrefetchRef[];
  /** v1 only: the image manifest the index belongs to. */
  subject?: Descriptor;
  /** Annotations other than the SOCI ones, kept as they were. */
  extraAnnotations?: Record<string, string>;
}

export function buildIndexManifest(index: SociIndex): EncodedManifest<ImageManifest> {
  const artifactType = artifactTypeOf(index.version);
  const layers: Descriptor[] = index.ztocs.map((z) => ({
    mediaType: ZTOC_MEDIA_TYPE,
    digest: z.digest,
    size: z.size,
    annotations: {
      [ANNOTATION_LAYER_DIGEST]: z.layerDigest,
      [ANNOTATION_LAYER_MEDIA_TYPE]: z.layerMediaType,
      ...(z.spanSize !== undefined ? { [ANNOTATION_SPAN_SIZE]: String(z.spanSize) } : {}),
    },
  }));
  for (const p of index.prefetches) {
    layers.push({
      mediaType: PREFETCH_MEDIA_TYPE,
      digest: p.digest,
      size: p.size,
      annotations: { [ANNOTATION_LAYER_DIGEST]: p.layerDigest },
    });
  }
  const annotations: Record<string, string> = {
    ...index.extraAnnotations,
    [ANNOTATION_BUILD_TOOL]: index.buildToolIdentifier,
  };
  if (index.disableXattrs) annotations[ANNOTATION_DISABLE_XATTRS] = 'true';
  // The reference writer carries the artifact type in config.mediaType and writes no
  // top-level artifactType; doing the same keeps digests comparable across tools.
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: artifactType, digest: EMPTY_CONFIG_DIGEST, size: 2 },
    layers,
    ...(index.subject ? { subject: index.subject } : {}),
    annotations,
  };
  const encoded = encodeManifest(manifest, OCI_MANIFEST);
  return { ...encoded, descriptor: { ...encoded.descriptor, artifactType } };
}

/** The SOCI version of a manifest, or undefined when it is not a SOCI index. */
export function sociVersionOf(manifest: {
  artifactType?: string;
  config?: { mediaType?: string };
}): SociIndexVersion | undefined {
  for (const type of [manifest.artifactType, manifest.config?.mediaType]) {
    if (type === SOCI_INDEX_V1) return 'v1';
    if (type === SOCI_INDEX_V2) return 'v2';
  }
  return undefined;
}

function invalid(what: string): never {
  throw new SociIndexError(
    'INDEX_INVALID',
    `not a valid SOCI index: ${what}; rebuild the index with \`soci create\``,
  );
}

/**
 * Reads a SOCI index manifest (v1 or v2; artifact type in config.mediaType or artifactType).
 * Throws INDEX_INVALID, or INDEX_LIMIT_EXCEEDED past `options.limits` (DEFAULT_SOCI_INDEX_LIMITS).
 */
export function parseIndexManifest(
  input: Uint8Array | string | object,
  options: ParseOptions = {},
): SociIndex {
  const limits = limitsOf(options);
  const json =
    typeof input === 'object' && !(input instanceof Uint8Array)
      ? (input as Record<string, unknown>)
      : parseJsonObject(input, limits, 'maxManifestBytes', 'the SOCI index manifest', invalid);
  if (json.schemaVersion !== 2) invalid('schemaVersion is not 2');
  const config = checkDescriptor(json.config, 'config', invalid, isSha256Digest);
  const version = sociVersionOf({ artifactType: json.artifactType as string | undefined, config });
  if (!version) invalid(`artifact type is ${describeJsonValue(json.artifactType ?? config.mediaType)}`);
  if (!Array.isArray(json.layers)) invalid('layers is not a list');
  checkLimit(limits, 'maxLayers', json.layers.length, 'the number of layers of the SOCI index');
  const ztocs: ZtocRef[] = [];
  const prefetches: PrefetchRef[] = [];
  json.layers.forEach((raw, i) => {
    const layer = checkDescriptor(raw, `layers[${i}]`, invalid, isSha256Digest);
    const layerDigest = layer.annotations?.[ANNOTATION_LAYER_DIGEST];
    if (!layerDigest || !isSha256Digest(layerDigest))
      invalid(`layers[${i}] has no ${ANNOTATION_LAYER_DIGEST}`);
    if (layer.mediaType === PREFETCH_MEDIA_TYPE) {
      prefetches.push({ digest: layer.digest, size: layer.size, layerDigest });
      return;
    }
    const spanText = layer.annotations?.[ANNOTATION_SPAN_SIZE];
    const spanSize = spanText !== undefined ? Number(spanText) : undefined;
    if (spanSize !== undefined && !(Number.isSafeInteger(spanSize) && spanSize > 0)) {
      invalid(`layers[${i}] has a bad span size ${describeJsonValue(spanText)}`);
    }
    ztocs.push({
      digest: layer.digest,
      size: layer.size,
      layerDigest,
      layerMediaType: layer.annotations?.[ANNOTATION_LAYER_MEDIA_TYPE] ?? '',
      ...(spanSize !== undefined ? { spanSize } : {}),
    });
  });
  if (json.annotations !== undefined && !isStringRecord(json.annotations))
    invalid('annotations is not a map of strings');
  const annotations = { ...json.annotations };
  const buildToolIdentifier = annotations[ANNOTATION_BUILD_TOOL] ?? '';
  const disableXattrs = annotations[ANNOTATION_DISABLE_XATTRS] === 'true';
  delete annotations[ANNOTATION_BUILD_TOOL];
  delete annotations[ANNOTATION_DISABLE_XATTRS];
  const subject = json.subject !== undefined ? checkDescriptor(json.subject, 'subject', invalid) : undefined;
  return {
    version,
    buildToolIdentifier,
    disableXattrs,
    ztocs,
    prefetches,
    ...(subject ? { subject } : {}),
    ...(Object.keys(annotations).length > 0 ? { extraAnnotations: annotations } : {}),
  };
}

/** The zTOC for a layer, if the index has one. */
export function ztocForLayer(index: SociIndex, layerDigest: string): ZtocRef | undefined {
  return index.ztocs.find((z) => z.layerDigest === layerDigest);
}
