/** Stable codes of every failure this package reports. */
export type RegistryErrorCode =
  | 'INVALID_REFERENCE'
  | 'INVALID_DIGEST'
  | 'INVALID_MANIFEST'
  | 'NAME_UNKNOWN'
  | 'NAME_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS'
  | 'UNAVAILABLE'
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'RANGE_NOT_SATISFIABLE'
  | 'RANGE_INVALID'
  | 'PLATFORM_NOT_FOUND'
  | 'TIMEOUT'
  | 'ABORTED'
  | 'NETWORK'
  | 'CREDENTIALS'
  | 'PROTOCOL'
  | 'HTTP_ERROR';

export interface RegistryErrorDetails {
  /** HTTP status of the answer that failed, when there was one. */
  status?: number;
  /** First error of the registry's JSON error body (`{"errors":[{code,message}]}`). */
  registryCode?: string;
  registryMessage?: string;
  /** Method and URL (without query string, which may hold signatures) of the failed request. */
  method?: string;
  url?: string;
  cause?: unknown;
}

/**
 * Every failure of this package. `code` is stable; the message says what failed and what to do. Messages
 * never contain credentials, tokens or query strings.
 */
export class RegistryError extends Error {
  readonly code: RegistryErrorCode;
  readonly status?: number;
  readonly registryCode?: string;
  readonly registryMessage?: string;
  readonly method?: string;
  readonly url?: string;

  constructor(code: RegistryErrorCode, message: string, details: RegistryErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'RegistryError';
    this.code = code;
    this.status = details.status;
    this.registryCode = details.registryCode;
    this.registryMessage = details.registryMessage;
    this.method = details.method;
    this.url = details.url;
  }
}

/** Bytes received do not hash to the digest they were asked for by. Never ignore it. */
export class DigestMismatchError extends RegistryError {
  readonly expected: string;
  readonly actual: string;
  constructor(what: string, expected: string, actual: string) {
    super(
      'DIGEST_MISMATCH',
      `${what}: expected digest ${expected} but the bytes received hash to ${actual}; the registry or a proxy served wrong content`,
    );
    this.name = 'DigestMismatchError';
    this.expected = expected;
    this.actual = actual;
  }
}

/** A string that is not a valid image reference. */
export class InvalidReferenceError extends RegistryError {
  readonly reference: string;
  constructor(reference: string, why: string) {
    super(
      'INVALID_REFERENCE',
      `invalid image reference ${JSON.stringify(reference)}: ${why} (expected [registry/]name[:tag][@sha256:<hex>])`,
    );
    this.name = 'InvalidReferenceError';
    this.reference = reference;
  }
}

const REGISTRY_CODES = new Set<string>([
  'NAME_UNKNOWN',
  'NAME_INVALID',
  'MANIFEST_UNKNOWN',
  'MANIFEST_INVALID',
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
  'TOOMANYREQUESTS',
]);

/** Maps a registry's JSON error code, or else the HTTP status, to one of ours. */
export function codeForResponse(status: number, registryCode: string | undefined): RegistryErrorCode {
  if (registryCode && REGISTRY_CODES.has(registryCode)) return registryCode as RegistryErrorCode;
  if (registryCode === 'DIGEST_INVALID') return 'DIGEST_MISMATCH';
  if (registryCode === 'MANIFEST_BLOB_UNKNOWN') return 'BLOB_UNKNOWN';
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'DENIED';
  if (status === 416) return 'RANGE_NOT_SATISFIABLE';
  if (status === 429) return 'TOOMANYREQUESTS';
  if (status >= 500) return 'UNAVAILABLE';
  return 'HTTP_ERROR';
}

/** Parses `{"errors":[{"code":..,"message":..}]}`; anything else gives nothing. */
export function parseErrorBody(body: string): { code?: string; message?: string } {
  try {
    const parsed = JSON.parse(body) as { errors?: { code?: unknown; message?: unknown }[] };
    const first = parsed.errors?.[0];
    if (!first) return {};
    return {
      code: typeof first.code === 'string' ? first.code : undefined,
      message: typeof first.message === 'string' ? first.message.slice(0, 300) : undefined,
    };
  } catch {
    return {};
  }
}
