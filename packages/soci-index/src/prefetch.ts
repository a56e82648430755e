/**
 * Prefetch blobs of a SOCI index: which spans of a layer to fetch first
 * (`{"version":"1.0","prefetch_spans":[{"start_span":N,"end_span":M,"priority":P?}]}`,
 * inclusive ranges).
 */
import { SociIndexError } from './errors.js';

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

export function parsePrefetch(bytes: Uint8Array | string): PrefetchSpan[] {
  const bad = (why: string): never => {
    throw new SociIndexError(
      'INVALID_SOCI_INDEX',
      `not a valid SOCI prefetch blob: ${why}; rebuild the index`,
    );
  };
  let json: { version?: unknown; prefetch_spans?: unknown };
  try {
    json = JSON.parse(typeof bytes === 'string' ? bytes : new TextDecoder().decode(bytes));
  } catch {
    return bad('not JSON');
  }
  if (!json || typeof json !== 'object' || !Array.isArray(json.prefetch_spans))
    return bad('no prefetch_spans list');
  return json.prefetch_spans.map((raw: unknown, i: number) => {
    const s = raw as { start_span?: unknown; end_span?: unknown; priority?: unknown };
    const start = s?.start_span;
    const end = s?.end_span;
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
