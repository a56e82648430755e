import { digestOf } from '@soci-ts/oci-referrers';
import { canonicalJsonBytes } from './digest.js';
import type { Descriptor, ImageIndex, ImageManifest } from './oci.js';

/** Manifest bytes plus the descriptor that names them. */
export interface EncodedManifest<T> {
  manifest: T;
  bytes: Uint8Array;
  descriptor: Descriptor;
}

/** Encodes a manifest or index the way it will be stored and pushed, and describes it. */
export function encodeManifest<T extends ImageManifest | ImageIndex>(
  manifest: T,
  mediaType: string,
): EncodedManifest<T> {
  const bytes = canonicalJsonBytes(manifest);
  return { manifest, bytes, descriptor: { mediaType, digest: digestOf(bytes), size: bytes.length } };
}
