/** Reads an image's root, its platform manifests and their platforms from an ImageSource. */

import { formatPlatform, platformMatches } from '@soci-ts/oci-referrers';
import { type AbortOptions, abortable, checkAborted } from './abort.js';
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
    throw new SociIndexError('INDEX_INVALID_IMAGE', `${what} is not JSON`);
  }
}

function mediaTypeOf(json: { mediaType?: string; manifests?: unknown }, descriptor: Descriptor): string {
  return (
    json.mediaType ??
    (Array.isArray(json.manifests) ? 'application/vnd.oci.image.index.v1+json' : descriptor.mediaType)
  );
}

/** Reads an image manifest and the platform recorded in its config. */
export function loadPlatformImage(
  source: ImageSource,
  descriptor: Descriptor,
  platform?: Platform,
  options: AbortOptions = {},
): Promise<PlatformImage> {
  const what = `reading image ${descriptor.digest} of ${source.reference}`;
  return abortable(options.signal, what, () => readPlatformImage(source, descriptor, platform, options));
}

async function readPlatformImage(
  source: ImageSource,
  descriptor: Descriptor,
  platform: Platform | undefined,
  { signal }: AbortOptions,
): Promise<PlatformImage> {
  const manifest = parseImageManifest(
    await source.fetchManifest(descriptor, { signal }),
    {},
    `${descriptor.digest} in ${source.reference}`,
  );
  let found = platform;
  if (!found) {
    checkAborted(signal, `reading the config of ${source.reference}`);
    const config = parseJson<{ os?: string; architecture?: string; variant?: string }>(
      await collect(source.fetchBlob(manifest.config, { signal })),
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

/** What `source`'s reference names: one image manifest, or an image index of several platforms. */
export function loadImageRoot(source: ImageSource, options: AbortOptions = {}): Promise<ImageRoot> {
  return abortable(options.signal, `reading ${source.reference}`, () => readImageRoot(source, options));
}

async function readImageRoot(source: ImageSource, { signal }: AbortOptions): Promise<ImageRoot> {
  const what = `reading ${source.reference}`;
  const descriptor = await source.resolve({ signal });
  checkAborted(signal, what);
  const bytes = await source.fetchManifest(descriptor, { signal });
  const json = parseJsonObject(bytes, limitsOf(), 'maxManifestBytes', source.reference, (why) => {
    throw new SociIndexError('INDEX_INVALID_IMAGE', `${source.reference}: ${why}`);
  }) as unknown as ImageIndex & ImageManifest;
  const mediaType = mediaTypeOf(json, descriptor);
  const described = { ...descriptor, mediaType };
  if (isIndexMediaType(mediaType)) return { kind: 'index', descriptor: described, index: json };
  checkAborted(signal, what);
  const image = await readPlatformImage(source, described, undefined, { signal });
  return { kind: 'manifest', descriptor: described, image };
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
  options: AbortOptions = {},
): Promise<PlatformImage> {
  if (root.kind === 'manifest') return root.image;
  const entry = platformEntries(root.index).find((d) => platformMatches(d.platform, want));
  if (!entry) {
    const have = platformEntries(root.index).map((d) => formatPlatform(d.platform!));
    throw new SociIndexError(
      'INDEX_PLATFORM_NOT_FOUND',
      `${source.reference} has no image for ${formatPlatform(want)} (it has: ${have.join(', ') || 'none'}); pass --platform`,
    );
  }
  return loadPlatformImage(source, entry, entry.platform, options);
}

export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}
