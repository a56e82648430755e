import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { largestFirst, mapConcurrent } from '../src/concurrency.js';

describe('largestFirst', () => {
  it('is a permutation ordered by size, ties in item order', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 20 }), { maxLength: 30 }), (sizes) => {
        const order = largestFirst(sizes);
        expect([...order].sort((a, b) => a - b)).toEqual(sizes.map((_, i) => i));
        for (let k = 1; k < order.length; k++) {
          const [a, b] = [order[k - 1]!, order[k]!];
          expect(sizes[a]! > sizes[b]! || (sizes[a] === sizes[b] && a < b)).toBe(true);
        }
      }),
    );
  });
});

describe('mapConcurrent', () => {
  it('starts items in the given order, keeps results in item order, never exceeds the limit', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.nat({ max: 5 }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 4 }),
        async (delays, limit) => {
          const order = largestFirst(delays);
          const started: number[] = [];
          let inFlight = 0;
          let maxInFlight = 0;
          const results = await mapConcurrent(
            delays,
            limit,
            async (delay, i) => {
              started.push(i);
              maxInFlight = Math.max(maxInFlight, ++inFlight);
              await new Promise((r) => setTimeout(r, delay));
              inFlight--;
              return i * 10;
            },
            order,
          );
          expect(started).toEqual(order);
          expect(results).toEqual(delays.map((_, i) => i * 10));
          expect(maxInFlight).toBeLessThanOrEqual(limit);
        },
      ),
      { numRuns: 30 },
    );
  });

  it('refuses a start order that is not a permutation', async () => {
    await expect(mapConcurrent([1, 2], 1, async (x) => x, [0, 0])).rejects.toThrow(RangeError);
    await expect(mapConcurrent([1, 2], 1, async (x) => x, [0])).rejects.toThrow(RangeError);
  });
});
