import { isDigest as isOciDigest } from '@soci-ts/oci-referrers';
import type { Descriptor } from './oci.js';

/**
 * Checks that a parsed JSON value is an OCI descriptor (mediaType, digest, size); `fail` makes the
 * caller's typed error. `digestOk` narrows the digests accepted (default: sha256 and sha512).
 */
export function checkDescriptor(
  value: unknown,
  where: string,
  fail: (why: string) => never,
  digestOk: (digest: string) => boolean = isOciDigest,
): Descriptor {
  const d = value as Partial<Descriptor> | null;
  if (!d || typeof d !== 'object' || Array.isArray(d)) fail(`${where} is not a descriptor`);
  if (typeof d.mediaType !== 'string') fail(`${where} has no mediaType`);
  if (typeof d.digest !== 'string' || !digestOk(d.digest)) fail(`${where} has a bad digest`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    fail(`${where} has a bad size`);
  }
  if (d.annotations !== undefined && !isStringRecord(d.annotations)) fail(`${where} has bad annotations`);
  return d as Descriptor;
}

/** An object of string values (annotations), not an array and not null. */
export function isStringRecord(value: unknown): value is Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  return Object.values(value).every((v) => typeof v === 'string');
}
