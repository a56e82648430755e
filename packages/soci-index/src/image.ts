/** Reads an image's root, its platform manifests and their platforms from an ImageSource. */
import { SociIndexError } from './errors.js';
import { parseImageManifest } from './image-manifest.js';
import { parseJsonObject } from './json-object.js';
import { limitsOf } from './limits.js';
import {
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  isIndexMediaType,
  OCI_MANIFEST,
  type Platform,
} from './oci.js';
import { formatPlatform, platformMatches } from './platform.js';
import type { ImageSource } from './source.js';

/** One platform's image manifest. */
export interface PlatformImage {
  descriptor: Descriptor;
  manifest: ImageManifest;
  platform: Platform;
}

export type ImageRoot =
  | { kind: 'manifest'; descriptor: Descriptor; image: PlatformImage }
  | { kind: 'index'; descriptor: Descriptor; index: ImageIndex };

function parseJson<T>(bytes: Uint8Array, what: string): T {
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as T;
  } catch {
    throw new SociIndexError('INVALID_IMAGE', `${what} is not JSON`);
  }
}

function mediaTypeOf(json: { mediaType?: string; manifests?: unknown }, descriptor: Descriptor): string {
  return (
    json.mediaType ??
    (Array.isArray(json.manifests) ? 'application/vnd.oci.image.index.v1+json' : descriptor.mediaType)
  );
}

/** Reads an image manifest and the platform recorded in its config. */
export async function loadPlatformImage(
  source: ImageSource,
  descriptor: Descriptor,
  platform?: Platform,
): Promise<PlatformImage> {
  const manifest = parseImageManifest(
    await source.fetchManifest(descriptor),
    {},
    `${descriptor.digest} in ${source.reference}`,
  );
  let found = platform;
  if (!found) {
    const config = parseJson<{ os?: string; architecture?: string; variant?: string }>(
      await collect(source.fetchBlob(manifest.config)),
      `config ${manifest.config.digest}`,
    );
    found = {
      os: config.os ?? 'linux',
      architecture: config.architecture ?? 'amd64',
      ...(config.variant ? { variant: config.variant } : {}),
    };
  }
  return {
    descriptor: {
      mediaType: manifest.mediaType ?? OCI_MANIFEST,
      digest: descriptor.digest,
      size: descriptor.size,
    },
    manifest,
    platform: found,
  };
}

export async function loadImageRoot(source: ImageSource): Promise<ImageRoot> {
  const descriptor = await source.resolve();
  const bytes = await source.fetchManifest(descriptor);
  const json = parseJsonObject(bytes, limitsOf(), 'maxManifestBytes', source.reference, (why) => {
    throw new SociIndexError('INVALID_IMAGE', `${source.reference}: ${why}`);
  }) as unknown as ImageIndex & ImageManifest;
  const mediaType = mediaTypeOf(json, descriptor);
  const described = { ...descriptor, mediaType };
  if (isIndexMediaType(mediaType)) return { kind: 'index', descriptor: described, index: json };
  return { kind: 'manifest', descriptor: described, image: await loadPlatformImage(source, described) };
}

/** Image manifests of an index (SOCI indexes and other artifacts left out). */
export function platformEntries(index: ImageIndex): Descriptor[] {
  return index.manifests.filter((d) => !d.artifactType && d.platform && d.platform.os !== 'unknown');
}

/** The platform image a build or lookup is about. */
export async function selectPlatformImage(
  source: ImageSource,
  root: ImageRoot,
  want: Platform,
): Promise<PlatformImage> {
  if (root.kind === 'manifest') return root.image;
  const entry = platformEntries(root.index).find((d) => platformMatches(d.platform, want));
  if (!entry) {
    const have = platformEntries(root.index).map((d) => formatPlatform(d.platform!));
    throw new SociIndexError(
      'PLATFORM_NOT_FOUND',
      `${source.reference} has no image for ${formatPlatform(want)} (it has: ${have.join(', ') || 'none'}); pass --platform`,
    );
  }
  return loadPlatformImage(source, entry, entry.platform);
}

export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}
