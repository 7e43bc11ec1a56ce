/**
 * A generated shard for pack tests against the synthetic Software Heritage: `rows` rows with the
 * real schema and one blob id each (scripts/make-big-parquet.ts --swh), in a fresh temp dir laid
 * out as a local Hub mirror (`<dir>/hf`). The caller removes the dir.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { REPO } from './rig.js';

export function makeSwhShard(name: string, rows: number): string {
  const dir = mkdtempSync(join(tmpdir(), `stackflow-${name}-`));
  const made = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      'scripts/make-big-parquet.ts',
      '--swh',
      '--rows',
      String(rows),
      '--out',
      dir,
    ],
    { cwd: REPO, encoding: 'utf8' },
  );
  expect(made.status, made.stderr).toBe(0);
  return dir;
}
