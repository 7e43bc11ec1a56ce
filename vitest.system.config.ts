import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * `npm run test:system`: the tests that need packages from the machine (Debian's Slurm and
 * munge, run as root; Debian's chromium). Each skips loudly where they are missing, unless
 * STACKFLOW_REQUIRE_SYSTEM=1 (test/system/skip.ts). `.ci/run` installs them and sets it.
 */
export default defineConfig({
  test: {
    ...base.test,
    include: ['test/system/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
  },
});
