/** An npm package's version, from its package.json (for a kind's `tools`). */
import { createRequire } from 'node:module';

const requireHere = createRequire(import.meta.url);

/** The installed version of `pkg`: a library that shapes a kind's output bytes. */
export const packageVersion = (pkg: string): string =>
  (requireHere(`${pkg}/package.json`) as { version: string }).version;
