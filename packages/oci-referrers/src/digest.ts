import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { digestMismatch, RegistryError } from './errors.js';
import { isDigest } from './reference.js';

/** Throws REGISTRY_INVALID_DIGEST unless `digest` is `sha256:<64 hex>` or `sha512:<128 hex>`. */
export function assertDigest(digest: string): void {
  if (!isDigest(digest)) {
    throw new RegistryError(
      'REGISTRY_INVALID_DIGEST',
      `"${digest}" is not a digest (expected sha256:<64 lowercase hex>)`,
    );
  }
}

function algorithmOf(digest: string): 'sha256' | 'sha512' {
  return digest.startsWith('sha512:') ? 'sha512' : 'sha256';
}

/** `sha256:<hex>` of the bytes (or the algorithm of `like`, when given). */
export function digestOf(bytes: Uint8Array, like?: string): string {
  const algorithm = like ? algorithmOf(like) : 'sha256';
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** Throws a DigestMismatchError unless the bytes hash to `expected`. */
export function verifyBytes(what: string, bytes: Uint8Array, expected: string): void {
  const actual = digestOf(bytes, expected);
  if (actual !== expected) throw digestMismatch(what, expected, actual);
}

/**
 * A pass-through stream that hashes what flows through and, at the end, fails with DigestMismatchError
 * (or REGISTRY_SIZE_MISMATCH) instead of ending cleanly when the bytes are not the expected ones.
 */
export function createVerifyingStream(what: string, expected: string, expectedSize?: number): Transform {
  const hash = createHash(algorithmOf(expected));
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      seen += chunk.length;
      if (expectedSize !== undefined && seen > expectedSize) {
        callback(sizeMismatch(what, expectedSize, seen));
        return;
      }
      hash.update(chunk);
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      if (expectedSize !== undefined && seen !== expectedSize) {
        callback(sizeMismatch(what, expectedSize, seen));
        return;
      }
      const actual = `${algorithmOf(expected)}:${hash.digest('hex')}`;
      callback(actual === expected ? null : digestMismatch(what, expected, actual));
    },
  });
}

function sizeMismatch(what: string, expected: number, seen: number): RegistryError {
  return new RegistryError(
    'REGISTRY_SIZE_MISMATCH',
    `${what}: expected ${expected} bytes but received ${seen > expected ? 'more than that' : seen}; the descriptor or the registry is wrong`,
  );
}
