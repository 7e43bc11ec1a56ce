/**
 * stackflow's version, read from its package.json (one home: `npm version` changes it). Found by
 * walking up from this module, which sits at lib/ in a checkout and dist/lib/ when built.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function readVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === 'stackflow' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not here: one level up
    }
    dir = dirname(dir);
  }
  throw new Error('Internal error: stackflow package.json not found above ' + import.meta.url);
}

export const STACKFLOW_VERSION: string = readVersion();
