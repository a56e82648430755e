/**
 * Runs a synchronous parse of a hostile input and reports what it cost. Parses here are
 * synchronous, so the event loop is blocked exactly for the wall time measured.
 */
export function measureSync(parse: () => unknown): { error: unknown; ms: number; rssGrowth: number } {
  const rss = process.memoryUsage().rss;
  const start = performance.now();
  let error: unknown;
  try {
    parse();
  } catch (e) {
    error = e;
  }
  return { error, ms: performance.now() - start, rssGrowth: process.memoryUsage().rss - rss };
}

/**
 * Generous bounds, met many times over on a busy machine: a capped parse takes a few
 * milliseconds and no memory; the same inputs uncapped take seconds (a million zTOC entries:
 * 2.7 s and 290 MiB). A synchronous parse blocks the event loop for its wall time, so the time
 * bound is also the event-loop lag bound.
 */
export const WALL_MS_BOUND = 250;
export const RSS_GROWTH_BOUND = 64 * 1024 * 1024;
