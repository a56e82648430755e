/**
 * Runs `fn` over `items` with at most `limit` calls in flight; results keep item order.
 * `startOrder` (a permutation of the item indices) says which items start first; by default
 * they start in item order.
 */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
  startOrder?: readonly number[],
): Promise<R[]> {
  const order = startOrder ?? items.map((_, i) => i);
  if (
    order.length !== items.length ||
    new Set(order).size !== items.length ||
    order.some((i) => !(i in items))
  ) {
    throw new RangeError('startOrder must list every item index exactly once');
  }
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < order.length) {
      const i = order[next++]!;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/**
 * Indices of `sizes` from largest to smallest (ties keep their order). Starting the longest
 * jobs first keeps the workers evenly loaded at the end: with layers of 80, 120 and 182 MB on
 * two workers, item order leaves one worker 262 MB and the other 120 MB; largest first gives
 * 182 and 200.
 */
export function largestFirst(sizes: readonly number[]): number[] {
  return sizes
    .map((size, i) => ({ size, i }))
    .sort((a, b) => b.size - a.size || a.i - b.i)
    .map((x) => x.i);
}
