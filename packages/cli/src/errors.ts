/**
 * Turning any failure into one line a user can act on. Library errors carry a `code`
 * and a message that already says what to do; everything else gets a generic hint.
 */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

interface CodedError {
  code?: unknown;
  message?: unknown;
  cause?: unknown;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
]);

function networkCode(err: unknown): string | undefined {
  for (let e = err as CodedError | undefined, depth = 0; e && depth < 5; e = e.cause as CodedError, depth++) {
    if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return e.code;
    const errors = (e as { errors?: unknown[] }).errors;
    if (Array.isArray(errors)) {
      const inner = errors.map(networkCode).find(Boolean);
      if (inner) return inner;
    }
  }
  return undefined;
}

/** The one-line message for a failure (no trailing newline). */
export function describeError(err: unknown): string {
  const e = (err ?? {}) as CodedError;
  const net = networkCode(err);
  const message = typeof e.message === 'string' && e.message ? e.message : String(err);
  if (net && !/registry|connect/i.test(message)) {
    return `cannot reach the registry (${net}): ${message}; check that it is running and the address is right`;
  }
  return message.replace(/\s*\n\s*/g, ' ');
}

/** 2 for a usage error (a flag or argument the user must change), 1 for any other failure. */
export function exitCodeOf(err: unknown): number {
  return err instanceof CliError && err.code === 'USAGE' ? 2 : 1;
}

/** Stack and cause chain, for --debug. */
export function debugDetail(err: unknown): string {
  const lines: string[] = [];
  let e = err as (Error & CodedError) | undefined;
  for (let depth = 0; e && depth < 5; depth++, e = e.cause as Error & CodedError) {
    lines.push(
      `${depth ? 'caused by: ' : ''}${e.stack ?? String(e)}${typeof e.code === 'string' ? ` [${e.code}]` : ''}`,
    );
  }
  return lines.join('\n');
}
