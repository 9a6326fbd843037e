import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against the TypeScript sources, never a stale dist/.
    alias: {
      '@herald/protocol': src('./packages/protocol/src/index.ts'),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // A noisy 2-core machine: keep parallelism modest so timing-sensitive integration tests keep their margins.
    maxWorkers: 2,
    // The suite must never pass by running nothing.
    passWithNoTests: false,
    reporters: ['default'],
  },
});
