/**
 * Memory benchmark: pack a generated 1,000,000-row parquet (the-stack-v2 schema, local blobs)
 * through the real CLI and record the peak RSS, which must stay under 600 MB and must not grow
 * with the row count (measured at two sizes in the same script).
 *
 *   npx tsx bench/pack-memory.ts [--rows 1000000]
 *
 * Writes bench/results/pack-memory.json.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeResults } from './lib/stats.js';

const REPO = resolve(import.meta.dirname, '..');
const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000000' } } });
const big = Number(values.rows);
const sizes = [Math.max(10_000, Math.round(big / 10)), big];

interface Measure {
  rows: number;
  peakRssMb: number;
  seconds: number;
  rowsPerSec: number;
  /** MB/s of JSON lines produced (raw, before zstd). */
  jsonMBps: number;
  /** Compressed / raw. */
  zstdRatio: number;
  ok: boolean;
}

function measure(rows: number): Measure {
  const dir = join(REPO, 'bench/data', `mem-${rows}`);
  if (!existsSync(join(dir, 'hf/data/Big/train-00000-of-00001.parquet'))) {
    execFileSync(
      'npx',
      ['tsx', 'scripts/make-big-parquet.ts', '--rows', String(rows), '--out', dir],
      {
        cwd: REPO,
        stdio: 'inherit',
      },
    );
  }
  writeFileSync(
    join(dir, 'pipeline.yaml'),
    [
      'version: 1',
      'dataset: { repo: bigcode/the-stack-v2, revision: bench, source: "file://hf", languages: [Big] }',
      'content: { source: "file://swh/content" }',
      'tasks:',
      '  discover: { kind: discover }',
      '  fetch: { kind: fetch, needs: [discover] }',
      '  pack: { kind: pack, needs: [fetch], params: { rows_per_part: 16384, concurrency: 64 } }',
      '',
    ].join('\n'),
  );
  rmSync(join(dir, 'cache'), { recursive: true, force: true });
  const t0 = Date.now();
  const r = spawnSync(
    process.execPath,
    [join(REPO, 'bin/stackflow.js'), 'run', 'pack', '--cache-dir', 'cache'],
    {
      cwd: dir,
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    },
  );
  const seconds = (Date.now() - t0) / 1000;
  const fin = r.stdout
    .split('\n')
    .filter((l) => l.includes('"run-finished"'))
    .map((l) => JSON.parse(l) as { ok: boolean; peakRssMb: number })[0];
  const packed = r.stdout
    .split('\n')
    .filter((l) => l.includes('"task-succeeded"') && l.includes('"pack:'))
    .map((l) => JSON.parse(l) as { counts: { raw_bytes: number; zst_bytes: number } })[0];
  rmSync(join(dir, 'cache'), { recursive: true, force: true });
  if (fin === undefined || packed === undefined) {
    throw new Error(`pack did not finish; stderr: ${r.stderr}`);
  }
  return {
    rows,
    peakRssMb: fin.peakRssMb,
    seconds,
    rowsPerSec: Math.round(rows / seconds),
    jsonMBps: Math.round(packed.counts.raw_bytes / 1e6 / seconds),
    zstdRatio: Number((packed.counts.zst_bytes / packed.counts.raw_bytes).toFixed(3)),
    ok: fin.ok,
  };
}

const results = sizes.map(measure);
const out = {
  name: 'pack-memory',
  date: new Date().toISOString(),
  machine: {
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  },
  target: 'peak RSS < 600 MB at 1M rows, not growing with rows',
  results,
  growth: (results[1]?.peakRssMb ?? 0) / (results[0]?.peakRssMb ?? 1),
  pass: results.every((r) => r.ok && r.peakRssMb < 600),
};
writeResults('pack-memory', out);
console.table(results);
console.log(
  `peak RSS ${results.map((r) => `${r.rows} rows: ${r.peakRssMb} MB`).join(', ')}; pass=${out.pass}`,
);
if (results.some((r) => !r.ok)) process.exitCode = 1; // a missed target is a figure, not a failure
