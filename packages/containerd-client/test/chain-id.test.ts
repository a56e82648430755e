import { createHash } from 'node:crypto';
import { run } from '@soci-ts/testing/process';
import fc from 'fast-check';
import { expect, test } from 'vitest';
import { chainIds } from '../src/index.js';

const diffId = fc
  .uint8Array({ minLength: 1, maxLength: 16 })
  .map((b) => `sha256:${createHash('sha256').update(b).digest('hex')}`);

/** Chain IDs computed by GNU coreutils: sha256sum of "<previous chain> <diff id>" (no newline). */
async function chainIdsBySha256sum(diffIds: string[]): Promise<string[]> {
  const script = [
    'set -e',
    'chain="$1"; echo "$chain"; shift',
    'for d in "$@"; do chain="sha256:$(printf "%s %s" "$chain" "$d" | sha256sum | cut -d" " -f1)"; echo "$chain"; done',
  ].join('\n');
  const { stdout } = await run('bash', ['-c', script, 'chain', ...diffIds]);
  return stdout.trim().split('\n');
}

test('chain IDs match sha256sum for random layer stacks', async () => {
  const stacks = fc.sample(fc.array(diffId, { minLength: 1, maxLength: 6 }), { numRuns: 12, seed: 4242 });
  for (const stack of stacks) {
    expect(chainIds(stack)).toEqual(await chainIdsBySha256sum(stack));
  }
});

test('chain IDs of a known two-layer stack', async () => {
  // diff IDs of "a\n" and "b\n" as GNU sha256sum prints them
  const a = `sha256:${(await run('bash', ['-c', 'printf "a\\n" | sha256sum | cut -d" " -f1'])).stdout.trim()}`;
  const b = `sha256:${(await run('bash', ['-c', 'printf "b\\n" | sha256sum | cut -d" " -f1'])).stdout.trim()}`;
  const second = (
    await run('bash', ['-c', `printf "%s" "${a} ${b}" | sha256sum | cut -d" " -f1`])
  ).stdout.trim();
  expect(chainIds([a, b])).toEqual([a, `sha256:${second}`]);
});

test('the chain ID of a layer depends on every layer below it and nothing above', () => {
  fc.assert(
    fc.property(fc.array(diffId, { minLength: 2, maxLength: 6 }), fc.nat(), diffId, (stack, k, other) => {
      const j = k % stack.length;
      fc.pre(other !== stack[j]);
      const changed = stack.map((d, i) => (i === j ? other : d));
      const before = chainIds(stack);
      const after = chainIds(changed);
      before.forEach((chain, i) => {
        if (i < j) expect(after[i]).toBe(chain);
        else expect(after[i]).not.toBe(chain);
      });
    }),
  );
  expect(chainIds([])).toEqual([]);
});
