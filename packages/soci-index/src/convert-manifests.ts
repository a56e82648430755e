/**
 * v2 binding as pure functions over manifests (shared/spec/soci-compat.md section 3):
 * each indexed platform manifest is rewritten to OCI media types and annotated with its
 * SOCI index digest; the image index lists the rewritten manifests plus one SOCI index
 * descriptor per platform. Layers and configs are referenced by the same digests.
 */
import { ANNOTATION_IMAGE_MANIFEST_DIGEST, ANNOTATION_INDEX_DIGEST, SOCI_INDEX_V2 } from './constants.js';
import { type EncodedManifest, encodeManifest } from './encode.js';
import {
  type Descriptor,
  DOCKER_CONFIG,
  DOCKER_FOREIGN_LAYER_GZIP,
  DOCKER_LAYER_GZIP,
  DOCKER_LAYER_TAR,
  type ImageIndex,
  type ImageManifest,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_LAYER_GZIP,
  OCI_LAYER_NONDIST_GZIP,
  OCI_LAYER_TAR,
  OCI_MANIFEST,
  type Platform,
} from './oci.js';

const OCI_EQUIVALENT: Record<string, string> = {
  [DOCKER_CONFIG]: OCI_CONFIG,
  [DOCKER_LAYER_GZIP]: OCI_LAYER_GZIP,
  [DOCKER_LAYER_TAR]: OCI_LAYER_TAR,
  [DOCKER_FOREIGN_LAYER_GZIP]: OCI_LAYER_NONDIST_GZIP,
};

/** The OCI media type for a Docker one; OCI and unknown types are returned as they are. */
export function ociMediaType(mediaType: string): string {
  return OCI_EQUIVALENT[mediaType] ?? mediaType;
}

function withOciMediaType(d: Descriptor): Descriptor {
  return { ...d, mediaType: ociMediaType(d.mediaType) };
}

/** The platform manifest in OCI form, annotated with the digest of its SOCI index. */
export function annotateManifestForV2(
  manifest: ImageManifest,
  sociIndexDigest: string,
): EncodedManifest<ImageManifest> {
  const { mediaType: _old, ...rest } = manifest;
  const converted: ImageManifest = {
    ...rest,
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: withOciMediaType(manifest.config),
    layers: manifest.layers.map(withOciMediaType),
    annotations: { ...manifest.annotations, [ANNOTATION_INDEX_DIGEST]: sociIndexDigest },
  };
  return encodeManifest(converted, OCI_MANIFEST);
}

/** One converted platform: the manifest it replaces and what replaces it. */
export interface ConvertedPlatform {
  originalDigest: string;
  manifest: Descriptor;
  sociIndex: Descriptor;
  platform: Platform;
}

function sociIndexDescriptor(c: ConvertedPlatform): Descriptor {
  return {
    mediaType: OCI_MANIFEST,
    digest: c.sociIndex.digest,
    size: c.sociIndex.size,
    artifactType: SOCI_INDEX_V2,
    platform: c.platform,
    annotations: { [ANNOTATION_IMAGE_MANIFEST_DIGEST]: c.manifest.digest },
  };
}

/**
 * The image index of a converted multi-platform image: converted manifests replace their
 * originals in place, SOCI index descriptors of earlier conversions of those platforms are
 * dropped, and the new SOCI index descriptors are appended.
 */
export function convertImageIndex(
  index: ImageIndex,
  converted: ConvertedPlatform[],
): EncodedManifest<ImageIndex> {
  const byOriginal = new Map(converted.map((c) => [c.originalDigest, c]));
  const replacedDigests = new Set(converted.flatMap((c) => [c.originalDigest, c.manifest.digest]));
  const manifests: Descriptor[] = [];
  for (const d of index.manifests) {
    const stale =
      d.artifactType === SOCI_INDEX_V2 &&
      replacedDigests.has(d.annotations?.[ANNOTATION_IMAGE_MANIFEST_DIGEST] ?? '');
    if (stale) continue;
    const c = byOriginal.get(d.digest);
    manifests.push(
      c ? { ...d, mediaType: OCI_MANIFEST, digest: c.manifest.digest, size: c.manifest.size } : d,
    );
  }
  manifests.push(...converted.map(sociIndexDescriptor));
  const { mediaType: _old, ...rest } = index;
  return encodeManifest<ImageIndex>(
    { ...rest, schemaVersion: 2, mediaType: OCI_INDEX, manifests },
    OCI_INDEX,
  );
}

/** A single-platform image wrapped into an index holding the converted manifest and its SOCI index. */
export function wrapManifestInIndex(converted: ConvertedPlatform): EncodedManifest<ImageIndex> {
  return encodeManifest<ImageIndex>(
    {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        {
          mediaType: OCI_MANIFEST,
          digest: converted.manifest.digest,
          size: converted.manifest.size,
          platform: converted.platform,
        },
        sociIndexDescriptor(converted),
      ],
    },
    OCI_INDEX,
  );
}
