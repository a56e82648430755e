import { isSociError, type SociError } from './soci-error.js';

/** How deep the chain is followed: a cycle or a runaway wrapper must not hang a caller. */
const MAX_DEPTH = 16;

/**
 * The error and every error under it, outermost first: each `cause`, and the members of an
 * AggregateError (undici and `Promise.any` put the real network failure there). Cycles are cut.
 */
export function causeChain(err: unknown): unknown[] {
  const chain: unknown[] = [];
  const seen = new Set<unknown>();
  const visit = (e: unknown, depth: number): void => {
    if (e === undefined || e === null || seen.has(e) || depth > MAX_DEPTH) return;
    seen.add(e);
    chain.push(e);
    if (typeof e !== 'object') return;
    const errors = (e as { errors?: unknown }).errors;
    if (Array.isArray(errors)) for (const inner of errors) visit(inner, depth + 1);
    visit((e as { cause?: unknown }).cause, depth + 1);
  };
  visit(err, 0);
  return chain;
}

/** The first error along the chain that `test` accepts. */
export function findCause<T>(err: unknown, test: (e: unknown) => e is T): T | undefined;
export function findCause(err: unknown, test: (e: unknown) => boolean): unknown;
export function findCause(err: unknown, test: (e: unknown) => boolean): unknown {
  return causeChain(err).find(test);
}

/** The codes of the chain's soci-ts errors, outermost first. */
export function codesOf(err: unknown): string[] {
  return causeChain(err)
    .filter(isSociError)
    .map((e) => e.code);
}

/** The first soci-ts error along the chain whose code is one of `codes`. */
export function findCode<Code extends string>(err: unknown, ...codes: Code[]): SociError<Code> | undefined {
  return causeChain(err).find(
    (e): e is SociError<Code> => isSociError(e) && (codes as string[]).includes(e.code),
  );
}

/** Whether any soci-ts error along the chain has one of `codes`. */
export function hasCode(err: unknown, ...codes: string[]): boolean {
  return findCode(err, ...codes) !== undefined;
}

/**
 * The first system-level code along the chain (`ECONNREFUSED`, `UND_ERR_SOCKET`, `ENOENT` ...):
 * Node's and undici's own errors, which are not SociErrors.
 */
export function systemCodeOf(err: unknown): string | undefined {
  for (const e of causeChain(err)) {
    if (isSociError(e)) continue;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** Node's and undici's codes for a host that cannot be reached, or that went away mid-request. */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Whether the chain says a host could not be reached at all (as opposed to answering with a
 * refusal): a system code of Node or undici along the chain, or one of `codes` (a package's own
 * "network" codes, e.g. `REGISTRY_NETWORK`).
 */
export function isUnreachable(err: unknown, ...codes: string[]): boolean {
  if (codes.length > 0 && hasCode(err, ...codes)) return true;
  const system = systemCodeOf(err);
  return system !== undefined && UNREACHABLE_CODES.has(system);
}
