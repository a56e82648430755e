import { ZtocError } from './errors.js';

/**
 * Bounds on what a zTOC may describe. A zTOC comes from a registry and is decoded before any of
 * its spans can be checked, so a hostile one must not be able to make the reader (or whatever
 * walks the file table afterwards) spend unbounded memory or event-loop time. Every default is far
 * above what a real layer needs; raise one only for a layer you trust.
 */
export interface ZtocLimits {
  /** Largest serialized zTOC, in bytes. */
  maxZtocBytes: number;
  /** Most tar entries in the file table. */
  maxEntries: number;
  /** Longest entry name or link target, in UTF-8 bytes (Linux's PATH_MAX). */
  maxNameBytes: number;
  /** Most path components in an entry name. */
  maxPathDepth: number;
  /** Most spans. */
  maxSpans: number;
  /** Largest span (declared span size, and each span's compressed and uncompressed length), in bytes. */
  maxSpanBytes: number;
}

export const DEFAULT_ZTOC_LIMITS: Readonly<ZtocLimits> = Object.freeze({
  // A 10 GiB layer with 4 MiB spans has ~80 MiB of checkpoints; a file table of 10^6 entries ~200 MiB.
  maxZtocBytes: 256 * 1024 * 1024,
  // The largest real layers hold a few 10^5 entries (node_modules trees).
  maxEntries: 1_000_000,
  maxNameBytes: 4096,
  // A 4096-byte name has at most 2048 components; 1024 keeps tree walks shallow.
  maxPathDepth: 1024,
  // 4 TiB of layer at the reference's 4 MiB span size.
  maxSpans: 1 << 20,
  // A span is fetched, verified and decoded whole: 32 times the reference's 4 MiB default.
  maxSpanBytes: 128 * 1024 * 1024,
});

/** Defaults with the caller's overrides; an override that is not a positive integer is refused. */
export function resolveZtocLimits(overrides: Partial<ZtocLimits> = {}): ZtocLimits {
  const limits = { ...DEFAULT_ZTOC_LIMITS };
  for (const [key, value] of Object.entries(overrides) as [keyof ZtocLimits, unknown][]) {
    if (value === undefined) continue;
    if (!(key in DEFAULT_ZTOC_LIMITS)) {
      throw new ZtocError('ZTOC_INVALID_ARGUMENT', `unknown zTOC limit "${key}"`);
    }
    if (!Number.isSafeInteger(value) || (value as number) <= 0) {
      throw new ZtocError(
        'ZTOC_INVALID_ARGUMENT',
        `zTOC limit ${key} must be a positive integer, got ${String(value)}`,
      );
    }
    limits[key] = value as number;
  }
  return limits;
}

/** Throws ZTOC_LIMIT_EXCEEDED when `value` is above `limits[key]`. `what` names the offending thing. */
export function checkLimit(limits: ZtocLimits, key: keyof ZtocLimits, value: number, what: string): void {
  if (value > limits[key]) {
    throw new ZtocError(
      'ZTOC_LIMIT_EXCEEDED',
      `${what} is ${value}, above the limit ${key} = ${limits[key]}: the zTOC is hostile or ` +
        `describes an unusual layer; if you trust it, raise ${key}`,
    );
  }
}

/**
 * Checks an entry's name (as UTF-8 bytes, before it is decoded, or as text) against
 * maxNameBytes and maxPathDepth. `what` names the entry.
 */
export function checkEntryName(limits: ZtocLimits, name: Uint8Array | string, what: string): void {
  const bytes = typeof name === 'string' ? utf8Length(name) : name.length;
  checkLimit(limits, 'maxNameBytes', bytes, `${what}'s name length`);
  checkLimit(limits, 'maxPathDepth', pathDepth(name), `${what}'s path depth`);
}

/** Checks a link target's length (UTF-8 bytes, or text) against maxNameBytes. */
export function checkLinkTarget(limits: ZtocLimits, link: Uint8Array | string, what: string): void {
  const bytes = typeof link === 'string' ? utf8Length(link) : link.length;
  checkLimit(limits, 'maxNameBytes', bytes, `${what}'s link target length`);
}

/** Number of path components in a name (runs of characters between `/`). */
function pathDepth(name: Uint8Array | string): number {
  const text = typeof name === 'string';
  let depth = 0;
  let inComponent = false;
  for (let i = 0; i < name.length; i++) {
    const slash = (text ? name.charCodeAt(i) : name[i]) === 0x2f;
    if (!slash && !inComponent) depth++;
    inComponent = !slash;
  }
  return depth;
}

/** UTF-8 length of a string, without encoding it (lone surrogates count as U+FFFD, 3 bytes). */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (
      c >= 0xd800 &&
      c < 0xdc00 &&
      i + 1 < text.length &&
      (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00
    ) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}
