import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    // End-to-end tests spawn the CLI and DuckDB; two cores, so keep file parallelism modest.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
