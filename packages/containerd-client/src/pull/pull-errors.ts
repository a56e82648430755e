// How a pull's failures become PullErrors: containerd's errors keep their message under
// CONTAINERD_ERROR, an image source's (registry) failures map to the pull code that says what to fix.
import { ContainerdError, PullError, type PullErrorCode } from '../errors.js';

/** Runs a containerd call; its failure becomes a PullError that says which step failed. */
export async function containerdCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw pullFailure(what, err);
  }
}

/** A failed pull step as a PullError: containerd's errors as CONTAINERD_ERROR, others as the image source's. */
export function pullFailure(what: string, err: unknown): PullError {
  if (err instanceof PullError) return err;
  if (err instanceof ContainerdError)
    return new PullError('CONTAINERD_ERROR', `${what}: ${err.message}`, { cause: err });
  return registryFailure(what, err);
}

/** Runs a call to the image source; its failure becomes the PullError that says what to fix. */
export async function registryCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw registryFailure(what, err);
  }
}

/** RegistryError codes of @soci-ts/oci-referrers (and plain Node network codes) -> pull codes. */
const REGISTRY_CODES: Record<string, PullErrorCode> = {
  NAME_UNKNOWN: 'IMAGE_NOT_FOUND',
  MANIFEST_UNKNOWN: 'IMAGE_NOT_FOUND',
  BLOB_UNKNOWN: 'IMAGE_NOT_FOUND',
  NETWORK: 'REGISTRY_UNREACHABLE',
  TIMEOUT: 'REGISTRY_UNREACHABLE',
  ECONNREFUSED: 'REGISTRY_UNREACHABLE',
  ECONNRESET: 'REGISTRY_UNREACHABLE',
  ENOTFOUND: 'REGISTRY_UNREACHABLE',
  DIGEST_MISMATCH: 'DIGEST_MISMATCH',
  SIZE_MISMATCH: 'DIGEST_MISMATCH',
  PLATFORM_NOT_FOUND: 'PLATFORM_NOT_FOUND',
  INVALID_REFERENCE: 'INVALID_REFERENCE',
  INVALID_MANIFEST: 'INVALID_MANIFEST',
  UNAUTHORIZED: 'REGISTRY_AUTH',
  DENIED: 'REGISTRY_AUTH',
  CREDENTIALS: 'REGISTRY_AUTH',
};

/** Maps an image source's failure (an oci-referrers RegistryError, a fetch error ...) to a PullError. */
function registryFailure(what: string, err: unknown): PullError {
  if (err instanceof PullError) return err;
  const code = errorCode(err);
  const message = `${what}: ${err instanceof Error ? err.message : String(err)}`;
  const pullCode = (code && REGISTRY_CODES[code]) || 'REGISTRY_ERROR';
  const hint = pullCode === 'REGISTRY_UNREACHABLE' ? ' (is the registry up and the address right?)' : '';
  return new PullError(pullCode, `${message}${hint}`, { cause: err });
}

/** The first `code` string along the error's cause chain (undici puts ECONNREFUSED on `cause`). */
function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}
