// How a pull's steps fail. The pull's own decisions are PullErrors thrown where they are made; a
// failure of containerd or of the image source (the registry) during a step is wrapped with the
// step's name, the failure kept as `cause`: callers find its code with `findCode` of @soci-ts/errors.
import { isUnreachable } from '@soci-ts/errors';
import { isContainerdError, PullError } from '../errors.js';

/**
 * Runs one step of a pull (a containerd call, a registry read); its failure becomes a PullError that
 * says which step failed.
 */
export async function pullStep<T>(step: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw pullFailure(step, err);
  }
}

/**
 * A failed pull step as a PullError: a PullError passes through, containerd's errors become
 * PULL_CONTAINERD_FAILED, any other (the image source's) PULL_REGISTRY_FAILED. The message is
 * `<step>: <cause's message>`, with a hint when the registry could not be reached.
 */
export function pullFailure(step: string, err: unknown): PullError {
  if (err instanceof PullError) return err;
  const message = `${step}: ${err instanceof Error ? err.message : String(err)}`;
  if (isContainerdError(err)) return new PullError('PULL_CONTAINERD_FAILED', message, { cause: err });
  const hint = registryUnreachable(err) ? ' (is the registry up and the address right?)' : '';
  return new PullError('PULL_REGISTRY_FAILED', `${message}${hint}`, { cause: err });
}

/** Whether the chain says the registry could not be reached (not that it refused or lacked something). */
function registryUnreachable(err: unknown): boolean {
  return isUnreachable(err, 'REGISTRY_NETWORK', 'REGISTRY_TIMEOUT');
}
