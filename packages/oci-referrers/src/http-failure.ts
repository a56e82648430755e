import { systemCodeOf } from '@soci-ts/errors';
import { RegistryError, type RegistryErrorOptions } from './errors.js';
import { redactUrl } from './redact.js';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Turns a low-level failure (undici, socket, abort) into a RegistryError; RegistryErrors pass through. */
export function mapFailure(error: unknown, method: string, url: URL | string): RegistryError {
  if (error instanceof RegistryError) return error;
  const shownUrl = redactUrl(url);
  const where = `${method} ${shownUrl}`;
  const code = systemCodeOf(error);
  if (code && TIMEOUT_CODES.has(code)) {
    const phase =
      code === 'UND_ERR_CONNECT_TIMEOUT'
        ? 'connect'
        : code === 'UND_ERR_HEADERS_TIMEOUT'
          ? 'headers'
          : 'body';
    return new RegistryError(
      'REGISTRY_TIMEOUT',
      `${where}: timed out waiting for ${phase}; the registry is slow or unreachable`,
      { method, url: shownUrl, cause: error },
    );
  }
  // Deadline and the write scope abort with a RegistryError (passed through above); a bare AbortError is
  // an abort all the same, not a network failure.
  if ((error as Error).name === 'AbortError') {
    return new RegistryError('REGISTRY_ABORTED', `${where}: aborted`, {
      method,
      url: shownUrl,
      cause: error,
    });
  }
  return new RegistryError(
    'REGISTRY_NETWORK',
    `${where}: connection failed (${code ?? (error as Error).message}); check that the registry is reachable`,
    { method, url: shownUrl, cause: error },
  );
}

/**
 * A body that broke after the headers (reset, stall): `Transport.read` redoes the whole request, and gives
 * the caller `failure` (its cause) once the retries are spent. It never reaches a caller itself.
 */
export class TransientBodyError extends RegistryError {
  override readonly name: string = 'TransientBodyError';
  readonly failure: RegistryError;

  constructor(
    code: RegistryError['code'],
    message: string,
    options: RegistryErrorOptions & { cause: RegistryError },
  ) {
    super(code, message, options);
    this.failure = options.cause;
  }
}

/** Maps a failure while reading a body: transient ones are wrapped so that `Transport.read` can redo them. */
export function bodyFailure(error: unknown, method: string, url: URL): Error {
  const mapped = mapFailure(error, method, url);
  return isRetryableFailure(error)
    ? new TransientBodyError(mapped.code, mapped.message, { cause: mapped })
    : mapped;
}

export function isRetryableFailure(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code !== undefined && (NETWORK_CODES.has(code) || TIMEOUT_CODES.has(code));
}
