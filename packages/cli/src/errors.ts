/**
 * Turning any failure into one line a user can act on. Library errors carry a `code`
 * and a message that already says what to do; everything else gets a generic hint.
 */
import {
  causeChain,
  isSociError,
  isUnreachable,
  SociError,
  type SociErrorOptions,
  systemCodeOf,
} from '@soci-ts/errors';

export type CliErrorCode =
  | 'CLI_USAGE'
  | 'CLI_NOT_FOUND'
  | 'CLI_ABORTED'
  | 'CLI_IMAGE_NOT_FOUND'
  | 'CLI_PLATFORM_NOT_FOUND'
  | 'CLI_CONTAINERD_PERMISSION'
  | 'CLI_CONTAINERD_UNREACHABLE'
  | 'CLI_SNAPSHOTTER_UNKNOWN'
  | 'CLI_SNAPSHOTTER_UNREACHABLE';

export class CliError extends SociError<CliErrorCode> {
  override readonly name = 'CliError';
  // biome-ignore lint/complexity/noUselessConstructor: narrows the code to the CLI's own
  constructor(code: CliErrorCode, message: string, options?: SociErrorOptions) {
    super(code, message, options);
  }
}

/** A flag or argument the user must change (exit code 2). */
export function usageError(message: string): CliError {
  return new CliError('CLI_USAGE', message);
}

/** The one-line message for a failure (no trailing newline). */
export function describeError(err: unknown): string {
  const message = err instanceof Error && err.message ? err.message : String(err);
  if (isUnreachable(err) && !/registry|connect/i.test(message)) {
    return `cannot reach the registry (${systemCodeOf(err)}): ${message}; check that it is running and the address is right`;
  }
  return message.replace(/\s*\n\s*/g, ' ');
}

/** The code of a failure for --json: the outermost soci-ts code, else the system's, else ERROR. */
export function errorCodeOf(err: unknown): string {
  const outer = causeChain(err).find(isSociError);
  return outer?.code ?? systemCodeOf(err) ?? 'ERROR';
}

/** Whether the failure is already the CLI's report of an interrupt. */
export function isAborted(err: unknown): boolean {
  return err instanceof CliError && err.code === 'CLI_ABORTED';
}

/** 2 for a usage error, 130 for an interrupt (as a shell reports SIGINT), 1 for any other failure. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CliError && err.code === 'CLI_USAGE') return 2;
  if (isAborted(err)) return 130;
  return 1;
}

/** Stack and cause chain, for --debug. */
export function debugDetail(err: unknown): string {
  return causeChain(err)
    .map((e, depth) => {
      const code = (e as { code?: unknown }).code;
      const text = e instanceof Error ? (e.stack ?? String(e)) : String(e);
      return `${depth ? 'caused by: ' : ''}${text}${typeof code === 'string' ? ` [${code}]` : ''}`;
    })
    .join('\n');
}
