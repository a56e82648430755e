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

/** Generous bounds: a capped parse takes milliseconds and no memory; an uncapped one, far more. */
export const WALL_MS_BOUND = 1000;
export const RSS_GROWTH_BOUND = 64 * 1024 * 1024;
