import { checkLimit, type SociIndexLimits } from './limits.js';

/**
 * Parses JSON text or bytes that must hold one object. Its size is checked against
 * `limits[sizeLimit]` before parsing; `fail` makes the caller's typed error from a reason.
 */
export function parseJsonObject(
  input: Uint8Array | string,
  limits: SociIndexLimits,
  sizeLimit: 'maxManifestBytes' | 'maxPrefetchBytes',
  what: string,
  fail: (why: string) => never,
): Record<string, unknown> {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  checkLimit(limits, sizeLimit, size, `the size of ${what}`);
  let value: unknown;
  try {
    value = JSON.parse(typeof input === 'string' ? input : new TextDecoder().decode(input));
  } catch {
    fail('not JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('not a JSON object');
  return value as Record<string, unknown>;
}

/**
 * A JSON value from an artifact, for an error message: strings quoted and cut to 100 characters,
 * anything else by its kind. Never String(value): an object without a primitive form throws, and
 * a deeply nested array overflows the stack.
 */
export function describeJsonValue(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null || value === undefined) return String(value);
  return Array.isArray(value) ? 'a list' : `a ${typeof value}`;
}
