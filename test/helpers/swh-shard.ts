/**
 * A generated shard for pack tests against the synthetic Software Heritage: `rows` rows with the
 * real schema and one blob id each (scripts/make-big-parquet.ts --swh), in a fresh temp dir laid
 * out as a local Hub mirror (`<dir>/hf`), and the pipeline that packs it from the synthetic SWH.
 * The caller removes the dir.
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

/**
 * pipeline.yaml for a shard made by {@link makeSwhShard}: its language `Big` from the local
 * mirror, contents from the synthetic SWH (`swh`: its content URL, bucket and endpoint), then
 * discover, fetch and the given pack stages (lines under `tasks:`).
 */
export function swhPipeline(
  dir: string,
  swh: { contentUrl: string; bucket: string; endpoint: string },
  packStages: readonly string[],
): string {
  return [
    'version: 1',
    `dataset: { repo: bigcode/the-stack-v2, revision: t, source: "file://${dir}/hf", languages: [Big] }`,
    `content: { source: "${swh.contentUrl}" }`,
    's3:',
    `  ${swh.bucket}: { endpoint: "${swh.endpoint}" }`,
    'tasks:',
    '  discover: { kind: discover }',
    '  fetch: { kind: fetch, needs: [discover] }',
    ...packStages,
    '',
  ].join('\n');
}
