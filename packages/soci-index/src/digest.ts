// Digests (digestOf, isSha256Digest) are @soci-ts/oci-referrers'.

/** JSON as written into registries: compact, so digests are stable for the same object. */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}
