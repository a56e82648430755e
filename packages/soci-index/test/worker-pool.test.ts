import { hasCode } from '@soci-ts/errors';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createWorkerPool } from '../src/index.js';

const pool = createWorkerPool(new URL('./fixtures/concat-worker.mjs', import.meta.url), 2);
afterAll(() => pool.close());

async function* stream(chunks: Uint8Array[]) {
  for (const c of chunks) yield c;
}

describe('worker pool', () => {
  it('delivers every chunk in order, for many jobs at once on fewer workers', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.uint8Array({ maxLength: 5000 }), { maxLength: 20 }), {
          minLength: 1,
          maxLength: 6,
        }),
        async (jobs) => {
          const results = await Promise.all(
            jobs.map((chunks) => pool.build(stream(chunks), { compression: 'gzip', spanSize: 2 })),
          );
          for (const [i, r] of results.entries())
            expect(Buffer.from(r.bytes).equals(Buffer.concat(jobs[i]!))).toBe(true);
        },
      ),
      { numRuns: 15 },
    );
  });

  it('does not move the memory of a chunk that shares a pooled buffer', async () => {
    const pooled = Buffer.from('hello world, a small pooled buffer');
    const chunk = pooled.subarray(6, 11);
    const r = await pool.build(stream([chunk]), { compression: 'gzip', spanSize: 2 });
    expect(Buffer.from(r.bytes).toString()).toBe('world');
    expect(pooled.toString()).toBe('hello world, a small pooled buffer');
  });

  it('reports a worker failure with its code, and the pool keeps working', async () => {
    const failed = await pool
      .build(stream([new Uint8Array(3)]), { compression: 'gzip', spanSize: 0 })
      .catch((e: unknown) => e);
    expect(failed).toMatchObject({ message: 'bad layer', code: 'ZTOC_TRUNCATED_TAR' });
    // Found by code as the worker's own ZtocError would be, though its class stayed in the worker.
    expect(hasCode(new Error('wrapped', { cause: failed }), 'ZTOC_TRUNCATED_TAR')).toBe(true);
    await expect(
      pool.build(
        (async function* () {
          yield new Uint8Array(1);
          throw new Error('network went away');
        })(),
        { compression: 'gzip', spanSize: 2 },
      ),
    ).rejects.toThrow('network went away');
    const ok = await pool.build(stream([new Uint8Array([7])]), { compression: 'gzip', spanSize: 2 });
    expect([...ok.bytes]).toEqual([7]);
  });
});
