import type { Descriptor } from '../types.js';

/**
 * Where pullImage reads an image from: one repository of a registry. Structural, so an
 * `@soci-ts/oci-referrers` repository (through {@link fromRepository} when its shape differs), an
 * OCI layout, or a test double all fit.
 */
export interface ImageSource {
  /** The manifest or index a tag or digest names, as the registry served it (bytes are hashed here). */
  fetchManifest(reference: string): Promise<{ mediaType: string; bytes: Uint8Array }>;
  /** A blob's bytes as a stream (verified here against the descriptor while being written). */
  fetchBlob(descriptor: Descriptor): Promise<AsyncIterable<Uint8Array>>;
}

export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
} as const;

export function isManifestType(mediaType: string): boolean {
  return mediaType === MediaTypes.ociManifest || mediaType === MediaTypes.dockerManifest;
}

export function isIndexType(mediaType: string): boolean {
  return mediaType === MediaTypes.ociIndex || mediaType === MediaTypes.dockerManifestList;
}

/** Layer media types containerd 1.6 unpacks (images.IsLayerType): OCI tar(+gzip/+zstd), nondistributable, docker. */
export function isLayerType(mediaType: string): boolean {
  if (mediaType.startsWith('application/vnd.oci.image.layer.')) return true;
  return (
    mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip' ||
    mediaType === 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'
  );
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** The platform of this process, in OCI terms (Node's `x64` is OCI's `amd64`). */
export function hostPlatform(): Platform {
  const arch: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ia32: '386',
    ppc64: 'ppc64le',
    s390x: 's390x',
  };
  return {
    os: process.platform === 'win32' ? 'windows' : process.platform,
    architecture: arch[process.arch] ?? process.arch,
  };
}

/** `os/arch[/variant]` -> Platform. */
export function parsePlatform(text: string): Platform {
  const [os, architecture, variant] = text.split('/');
  if (!os || !architecture)
    throw new TypeError(`platform "${text}" is not os/arch[/variant] (e.g. linux/amd64)`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function platformMatches(candidate: Partial<Platform> | undefined, wanted: Platform): boolean {
  if (!candidate) return false;
  if (candidate.os !== wanted.os || candidate.architecture !== wanted.architecture) return false;
  return (
    wanted.variant === undefined || candidate.variant === undefined || candidate.variant === wanted.variant
  );
}
