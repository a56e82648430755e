import { RegistryError } from './errors.js';
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
  const code = (error as { code?: string }).code ?? (error as { cause?: { code?: string } }).cause?.code;
  if (code && TIMEOUT_CODES.has(code)) {
    const phase =
      code === 'UND_ERR_CONNECT_TIMEOUT'
        ? 'connect'
        : code === 'UND_ERR_HEADERS_TIMEOUT'
          ? 'headers'
          : 'body';
    return new RegistryError(
      'TIMEOUT',
      `${where}: timed out waiting for ${phase}; the registry is slow or unreachable`,
      { method, url: shownUrl, cause: error },
    );
  }
  if ((error as Error).name === 'AbortError') {
    return new RegistryError('NETWORK', `${where}: aborted`, { method, url: shownUrl, cause: error });
  }
  return new RegistryError(
    'NETWORK',
    `${where}: connection failed (${code ?? (error as Error).message}); check that the registry is reachable`,
    { method, url: shownUrl, cause: error },
  );
}

/** A body that broke after the headers (reset, stall): the caller may redo the whole request. */
export class TransientBodyError extends Error {
  constructor(readonly error: RegistryError) {
    super(error.message);
  }
}

/** Maps a failure while reading a body: transient ones are wrapped so that `Transport.read` can redo them. */
export function bodyFailure(error: unknown, method: string, url: URL): Error {
  const mapped = mapFailure(error, method, url);
  return isRetryableFailure(error) ? new TransientBodyError(mapped) : mapped;
}

export function isRetryableFailure(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code !== undefined && (NETWORK_CODES.has(code) || TIMEOUT_CODES.has(code));
}
