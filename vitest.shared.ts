import { defineConfig } from 'vitest/config';

// Tests import sibling packages from their TypeScript sources (the "source" export
// condition), so a test run never needs a build first.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
