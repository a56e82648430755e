import { SociError, type SociErrorOptions } from '@soci-ts/errors';

/** Stable codes of every failure this package reports. */
export type RegistryErrorCode =
  | 'REGISTRY_INVALID_REFERENCE'
  | 'REGISTRY_INVALID_DIGEST'
  | 'REGISTRY_INVALID_MANIFEST'
  | 'REGISTRY_INVALID_PLATFORM'
  | 'REGISTRY_NAME_UNKNOWN'
  | 'REGISTRY_NAME_INVALID'
  | 'REGISTRY_MANIFEST_UNKNOWN'
  | 'REGISTRY_MANIFEST_INVALID'
  | 'REGISTRY_BLOB_UNKNOWN'
  | 'REGISTRY_BLOB_UPLOAD_UNKNOWN'
  | 'REGISTRY_BLOB_UPLOAD_INVALID'
  | 'REGISTRY_UNAUTHORIZED'
  | 'REGISTRY_DENIED'
  | 'REGISTRY_UNSUPPORTED'
  | 'REGISTRY_TOOMANYREQUESTS'
  | 'REGISTRY_UNAVAILABLE'
  | 'REGISTRY_DIGEST_MISMATCH'
  | 'REGISTRY_SIZE_MISMATCH'
  | 'REGISTRY_RANGE_NOT_SATISFIABLE'
  | 'REGISTRY_RANGE_INVALID'
  | 'REGISTRY_PLATFORM_NOT_FOUND'
  | 'REGISTRY_TIMEOUT'
  | 'REGISTRY_ABORTED'
  | 'REGISTRY_NETWORK'
  | 'REGISTRY_CREDENTIALS'
  | 'REGISTRY_PROTOCOL'
  | 'REGISTRY_HTTP_ERROR';

/** What a RegistryError tells besides its code and message. */
export interface RegistryErrorOptions extends SociErrorOptions {
  /** HTTP status of the answer that failed, when there was one. */
  status?: number;
  /** First error of the registry's JSON error body (`{"errors":[{code,message}]}`). */
  registryCode?: string;
  registryMessage?: string;
  /** Method and URL (without query string, which may hold signatures) of the failed request. */
  method?: string;
  url?: string;
}

/**
 * Every failure of this package. `code` is stable; the message says what failed and what to do. Messages
 * never contain credentials, tokens or query strings.
 */
export class RegistryError<Code extends RegistryErrorCode = RegistryErrorCode> extends SociError<Code> {
  override readonly name: string = 'RegistryError';
  readonly status?: number;
  readonly registryCode?: string;
  readonly registryMessage?: string;
  readonly method?: string;
  readonly url?: string;

  constructor(code: Code, message: string, options: RegistryErrorOptions = {}) {
    super(code, message, options);
    this.status = options.status;
    this.registryCode = options.registryCode;
    this.registryMessage = options.registryMessage;
    this.method = options.method;
    this.url = options.url;
  }
}

/** Bytes received do not hash to the digest they were asked for by. Never ignore it. */
export class DigestMismatchError extends RegistryError<'REGISTRY_DIGEST_MISMATCH'> {
  override readonly name: string = 'DigestMismatchError';
  readonly expected: string;
  readonly actual: string;

  constructor(
    code: 'REGISTRY_DIGEST_MISMATCH',
    message: string,
    options: RegistryErrorOptions & { expected: string; actual: string },
  ) {
    super(code, message, options);
    this.expected = options.expected;
    this.actual = options.actual;
  }
}

/** The DigestMismatchError of `what`, with the message every caller gives. */
export function digestMismatch(what: string, expected: string, actual: string): DigestMismatchError {
  return new DigestMismatchError(
    'REGISTRY_DIGEST_MISMATCH',
    `${what}: expected digest ${expected} but the bytes received hash to ${actual}; the registry or a proxy served wrong content`,
    { expected, actual },
  );
}

/** A string that is not a valid image reference. */
export class InvalidReferenceError extends RegistryError<'REGISTRY_INVALID_REFERENCE'> {
  override readonly name: string = 'InvalidReferenceError';
  readonly reference: string;

  constructor(
    code: 'REGISTRY_INVALID_REFERENCE',
    message: string,
    options: RegistryErrorOptions & { reference: string },
  ) {
    super(code, message, options);
    this.reference = options.reference;
  }
}

/** The InvalidReferenceError for `reference`, saying why and what a reference looks like. */
export function invalidReference(reference: string, why: string): InvalidReferenceError {
  return new InvalidReferenceError(
    'REGISTRY_INVALID_REFERENCE',
    `invalid image reference ${JSON.stringify(reference)}: ${why} (expected [registry/]name[:tag][@sha256:<hex>])`,
    { reference },
  );
}

/** The registry's own error codes (distribution spec) that keep their name, prefixed, as ours. */
const SPEC_CODES = new Set<string>([
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

/**
 * Maps a registry's JSON error code (the distribution spec's wire codes), or else the HTTP status, to one
 * of ours.
 */
export function codeForResponse(status: number, registryCode: string | undefined): RegistryErrorCode {
  if (registryCode && SPEC_CODES.has(registryCode)) return `REGISTRY_${registryCode}` as RegistryErrorCode;
  if (registryCode === 'DIGEST_INVALID') return 'REGISTRY_DIGEST_MISMATCH';
  if (registryCode === 'MANIFEST_BLOB_UNKNOWN') return 'REGISTRY_BLOB_UNKNOWN';
  if (status === 401) return 'REGISTRY_UNAUTHORIZED';
  if (status === 403) return 'REGISTRY_DENIED';
  if (status === 416) return 'REGISTRY_RANGE_NOT_SATISFIABLE';
  if (status === 429) return 'REGISTRY_TOOMANYREQUESTS';
  if (status >= 500) return 'REGISTRY_UNAVAILABLE';
  return 'REGISTRY_HTTP_ERROR';
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
