import { defineConfig } from 'vitest/config';

/**
 * `npm test`: everything that needs nothing beyond npm packages. The system tests (a real Slurm,
 * a real browser: packages from the machine) are in test/system and run with `npm run
 * test:system` (vitest.system.config.ts).
 */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/system/**', '**/node_modules/**'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    // End-to-end tests spawn the CLI and DuckDB; two cores, so keep file parallelism modest.
    maxWorkers: 2,
    minWorkers: 1,
    // The pinned AWS SDK warns about Node 20's end of support on every import (see README).
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
