/**
 * v2 conversion of a whole image: one SOCI index per chosen platform, manifests rewritten
 * and annotated, the image index extended (convert-manifests.ts), then pushed to a target
 * repository in dependency order: blobs, SOCI indexes, manifests, and the index last.
 */
import type { Repository } from '@soci-ts/oci-referrers';
import { type AbortOptions, abortable, checkAborted } from './abort.js';
import { type BuildOptions, type BuiltSociIndex, buildSociIndex } from './build.js';
import {
  annotateManifestForV2,
  type ConvertedPlatform,
  convertImageIndex,
  wrapManifestInIndex,
} from './convert-manifests.js';
import type { EncodedManifest } from './encode.js';
import type { ImageRoot, PlatformImage } from './image.js';
import type { Descriptor, ImageIndex, ImageManifest } from './oci.js';
import { copyBlob, pushSociIndex } from './push.js';
import type { ImageSource } from './source.js';

export interface ConvertedPlatformImage {
  image: PlatformImage;
  built: BuiltSociIndex;
  manifest: EncodedManifest<ImageManifest>;
}

export interface ConvertedImage {
  /** The new image index (what the target tag will name). */
  index: EncodedManifest<ImageIndex>;
  platforms: ConvertedPlatformImage[];
}

/** Builds the v2 indexes for `images` (platforms of `root`) and the rewritten manifests and index. */
export async function convertImage(
  source: ImageSource,
  root: ImageRoot,
  images: PlatformImage[],
  options: Omit<BuildOptions, 'version'> = {},
): Promise<ConvertedImage> {
  const platforms: ConvertedPlatformImage[] = [];
  for (const image of images) {
    const built = await buildSociIndex(source, image, { ...options, version: 'v2' });
    platforms.push({
      image,
      built,
      manifest: annotateManifestForV2(image.manifest, built.manifest.descriptor.digest),
    });
  }
  const converted: ConvertedPlatform[] = platforms.map((p) => ({
    originalDigest: p.image.descriptor.digest,
    manifest: p.manifest.descriptor,
    sociIndex: p.built.manifest.descriptor,
    platform: p.image.platform,
  }));
  const index =
    root.kind === 'index' ? convertImageIndex(root.index, converted) : wrapManifestInIndex(converted[0]!);
  return { index, platforms };
}

export interface PushStep {
  what: 'blob' | 'manifest' | 'index';
  digest: string;
  result?: 'present' | 'mounted' | 'uploaded' | 'pushed';
}

export interface PushConvertedOptions extends AbortOptions {
  /** Called as each step starts (blobs copied, manifests pushed). */
  onStep?: (step: PushStep) => void;
}

/**
 * Pushes a converted image to `target` under `tag`. Manifests the conversion did not touch
 * (other platforms, attestations) are copied with their blobs.
 */
export function pushConvertedImage(
  source: ImageSource,
  target: Repository,
  converted: ConvertedImage,
  tag: string,
  options: PushConvertedOptions = {},
): Promise<Descriptor> {
  const onStep = options.onStep ?? (() => {});
  const what = `pushing the converted image to ${target.name}:${tag}`;
  return abortable(options.signal, what, () =>
    pushConverted(source, target, converted, tag, onStep, { signal: options.signal, what }),
  );
}

async function pushConverted(
  source: ImageSource,
  target: Repository,
  converted: ConvertedImage,
  tag: string,
  onStep: (step: PushStep) => void,
  { signal, what }: { signal: AbortSignal | undefined; what: string },
): Promise<Descriptor> {
  const copy = (blob: Descriptor) => copyBlob(source, target, blob, { signal });
  const pushManifest = (bytes: Uint8Array, o: { mediaType: string; tag?: string }) => {
    checkAborted(signal, what);
    return target.pushManifest(bytes, { ...o, signal });
  };
  const produced = new Set<string>();
  for (const p of converted.platforms) {
    for (const blob of [p.manifest.manifest.config, ...p.manifest.manifest.layers]) {
      onStep({ what: 'blob', digest: blob.digest, result: await copy(blob) });
    }
    await pushSociIndex(target, { manifestBytes: p.built.manifest.bytes, blobs: p.built.blobs }, { signal });
    onStep({ what: 'manifest', digest: p.built.manifest.descriptor.digest, result: 'pushed' });
    await pushManifest(p.manifest.bytes, { mediaType: p.manifest.descriptor.mediaType });
    onStep({ what: 'manifest', digest: p.manifest.descriptor.digest, result: 'pushed' });
    produced.add(p.manifest.descriptor.digest).add(p.built.manifest.descriptor.digest);
  }
  for (const d of converted.index.manifest.manifests) {
    if (produced.has(d.digest)) continue;
    checkAborted(signal, what);
    const bytes = await source.fetchManifest(d, { signal });
    const manifest = JSON.parse(new TextDecoder().decode(bytes)) as Partial<ImageManifest>;
    for (const blob of [...(manifest.config ? [manifest.config] : []), ...(manifest.layers ?? [])]) {
      onStep({ what: 'blob', digest: blob.digest, result: await copy(blob) });
    }
    await pushManifest(bytes, { mediaType: d.mediaType });
    onStep({ what: 'manifest', digest: d.digest, result: 'pushed' });
  }
  const pushed = await pushManifest(converted.index.bytes, {
    tag,
    mediaType: converted.index.descriptor.mediaType,
  });
  onStep({ what: 'index', digest: pushed.digest, result: 'pushed' });
  return pushed;
}
