/**
 * Prefetch blobs of a SOCI index: which spans of a layer to fetch first
 * (`{"version":"1.0","prefetch_spans":[{"start_span":N,"end_span":M,"priority":P?}]}`,
 * inclusive ranges).
 */
import { SociIndexError } from './errors.js';
import { parseJsonObject } from './json-object.js';
import { checkLimit, limitsOf, type ParseOptions } from './limits.js';

export interface PrefetchSpan {
  startSpan: number;
  endSpan: number;
  priority?: number;
}

export function encodePrefetch(spans: PrefetchSpan[]): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      version: '1.0',
      prefetch_spans: spans.map((s) => ({
        start_span: s.startSpan,
        end_span: s.endSpan,
        ...(s.priority !== undefined ? { priority: s.priority } : {}),
      })),
    }),
  );
}

/**
 * Reads a prefetch blob. Throws INDEX_INVALID, or INDEX_LIMIT_EXCEEDED past `options.limits`
 * (maxPrefetchBytes, maxPrefetchSpans; defaults in DEFAULT_SOCI_INDEX_LIMITS).
 */
export function parsePrefetch(bytes: Uint8Array | string, options: ParseOptions = {}): PrefetchSpan[] {
  const limits = limitsOf(options);
  const json = parseJsonObject(bytes, limits, 'maxPrefetchBytes', 'the prefetch blob', bad);
  const list = json.prefetch_spans;
  if (!Array.isArray(list)) return bad('no prefetch_spans list');
  checkLimit(limits, 'maxPrefetchSpans', list.length, 'the number of prefetch span ranges');
  return list.map((raw: unknown, i: number) => {
    const s = (raw ?? {}) as { start_span?: unknown; end_span?: unknown; priority?: unknown };
    const start = s.start_span;
    const end = s.end_span;
    if (
      !Number.isSafeInteger(start) ||
      !Number.isSafeInteger(end) ||
      (start as number) < 0 ||
      (end as number) < (start as number)
    ) {
      return bad(`prefetch_spans[${i}] is not a range of span ids`);
    }
    if (s.priority !== undefined && !Number.isSafeInteger(s.priority))
      return bad(`prefetch_spans[${i}] has a bad priority`);
    return {
      startSpan: start as number,
      endSpan: end as number,
      ...(s.priority !== undefined ? { priority: s.priority as number } : {}),
    };
  });
}

function bad(why: string): never {
  throw new SociIndexError('INDEX_INVALID', `not a valid SOCI prefetch blob: ${why}; rebuild the index`);
}
