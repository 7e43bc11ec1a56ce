/**
 * A full-size rehearsal of pack (issue 10 §2–§4): a generated shard with the real 26-column schema
 * (scripts/make-big-parquet.ts --swh, HF-like row groups), packed through the real CLI with state
 * and bucket on the loopback S3 test server and contents from the synthetic Software Heritage
 * (test/servers/swh: latency, size distribution, rate limit). Sections:
 *
 *   capacity  GETs/s the synthetic SWH serves on this machine (plain http and SDK clients)
 *   sweep     latency × window: pack's GET rate against a bare SDK GET loop (scale-bare.ts) at
 *             the same latency and window, alternating bare, pack per cell. Target ≥ 0.8×.
 *   memory    peak RSS and scratch at two shard sizes. Targets: RSS growth ≤ 1.1×; scratch ≤ 2 parts.
 *   cores     the same pack pinned (taskset) to 1 core and to 2 cores; target ≥ 1.7×.
 *   adaptive  the server's rate limit at R: the adaptive window against fixed windows; R raised
 *             mid-run. Targets: ≥ 0.9 R with < 5% SlowDown, and the raised limit used.
 *
 *   npx tsx bench/scale.ts [--quick] [--only sweep,memory,...] [--sweep-rows 100000]
 *       [--memory-rows 300000,3000000] [--cores-rows 100000] [--latency 5,20,60]
 *       [--window 64,256,1024] [--bare-seconds 15] [--data-dir DIR]
 *
 * Writes bench/results/scale.json (sections not run keep their last figures, each with its own
 * date). Every figure lists its inputs; `machine` says where it was measured. A missed target is
 * a figure (`pass: false`), not a failure; a pack that fails is.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startS3Server } from '../test/servers/s3/harness.js';
import type { S3TestServer } from '../test/servers/s3/harness.js';
import { measureCapacity } from '../test/servers/swh/capacity.js';
import { startSwhServer } from '../test/servers/swh/harness.js';
import type { SwhConfigPatch, SwhTestServer } from '../test/servers/swh/harness.js';
import { DEFAULT_CONFIG } from '../test/servers/swh/model.js';
import { machineInfo } from './lib/machine.js';
import type { BareResult } from './lib/scale-bare.js';
import type { PackRun, PackRunOptions } from './lib/scale-run.js';
import { runPack } from './lib/scale-run.js';
import { round, writeResults } from './lib/stats.js';

const REPO = resolve(import.meta.dirname, '..');
const SECTIONS = ['capacity', 'sweep', 'memory', 'cores'] as const;
type Section = (typeof SECTIONS)[number];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    'sweep-rows': { type: 'string' },
    'memory-rows': { type: 'string' },
    'cores-rows': { type: 'string' },
    'adaptive-rows': { type: 'string' },
    latency: { type: 'string' },
    window: { type: 'string' },
    'bare-seconds': { type: 'string' },
    'rows-per-part': { type: 'string', default: '16384' },
    'row-group-size': { type: 'string', default: '100000' },
    'data-dir': { type: 'string' },
  },
});
const quick = values.quick;
const list = (v: string | undefined, d: string) => (v ?? d).split(',').map(Number);
const only = (values.only?.split(',') ?? [...SECTIONS]) as Section[];
for (const s of only) {
  if (!(SECTIONS as readonly string[]).includes(s)) {
    console.error(`unknown section ${s}; known: ${SECTIONS.join(', ')}`);
    process.exit(2);
  }
}
const inputs = {
  quick,
  sweepRows: Number(values['sweep-rows'] ?? (quick ? 20_000 : 100_000)),
  memoryRows: list(values['memory-rows'], quick ? '20000,60000' : '300000,3000000'),
  coresRows: Number(values['cores-rows'] ?? (quick ? 20_000 : 100_000)),
  adaptiveRows: Number(values['adaptive-rows'] ?? (quick ? 20_000 : 60_000)),
  latenciesMs: list(values.latency, '5,20,60'),
  windows: list(values.window, quick ? '64,256' : '64,256,1024'),
  bareSeconds: Number(values['bare-seconds'] ?? (quick ? 5 : 15)),
  rowsPerPart: Number(values['rows-per-part']),
  rowGroupSize: Number(values['row-group-size']),
  /** The synthetic SWH's models (test/servers/swh/model.ts); p99 latency is 7.5× the median. */
  swh: { size: DEFAULT_CONFIG.size, latency: DEFAULT_CONFIG.latency },
};

/** /dev/shm when it has room for the largest parquet and the work copies, else the temp dir. */
function dataBase(): string {
  if (values['data-dir'] !== undefined) return resolve(values['data-dir']);
  try {
    const s = statfsSync('/dev/shm');
    if (s.bavail * s.bsize > 6 * 2 ** 30) return '/dev/shm/stackflow-scale';
  } catch {
    // no /dev/shm
  }
  return join(tmpdir(), 'stackflow-scale');
}
const BASE = dataBase();

/** The generated shard of `rows` rows (made once, kept between runs: never in git). */
function shard(rows: number): string {
  const dir = join(BASE, `rows-${String(rows)}-rg${String(inputs.rowGroupSize)}`);
  if (!existsSync(join(dir, 'manifest.json'))) {
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO, 'scripts/make-big-parquet.ts'),
        '--swh',
        '--rows',
        String(rows),
        '--row-group-size',
        String(inputs.rowGroupSize),
        '--out',
        dir,
      ],
      { cwd: REPO, stdio: 'inherit' },
    );
    if (r.status !== 0) throw new Error(`make-big-parquet failed (${String(r.status)})`);
  }
  return dir;
}

function bare(swh: SwhTestServer, window: number, offset: number): BareResult {
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      join(REPO, 'bench/lib/scale-bare.ts'),
      '--endpoint',
      swh.endpoint,
      '--bucket',
      swh.bucket,
      '--window',
      String(window),
      '--seconds',
      String(inputs.bareSeconds),
      '--offset',
      String(offset),
    ],
    { cwd: REPO, encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  if (r.status !== 0) throw new Error(`bare loop failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as BareResult;
}

const latencyPatch = (ms: number): SwhConfigPatch => ({
  latency: { ...DEFAULT_CONFIG.latency, medianMs: ms, p99Ms: ms * 7.5 },
  rateLimit: { perSecond: null },
});

let runSeq = 0;
interface Env {
  s3: S3TestServer;
  s3Dir: string;
  swh: SwhTestServer;
}
function pack(
  env: Env,
  rows: number,
  window: number,
  extra: Partial<PackRunOptions> = {},
  params = '',
) {
  const label = `${String(++runSeq)}-${String(rows)}-w${String(window)}${extra.cpus ? `-c${extra.cpus.replace(',', '')}` : ''}`;
  console.error(`  pack ${label} …`);
  return runPack(
    {
      dataDir: shard(rows),
      rows,
      window,
      rowsPerPart: inputs.rowsPerPart,
      ...env,
      label,
      ...extra,
    },
    params,
  );
}

/** A pack run without its timeline (kept only where it is the point). */
const brief = (p: PackRun) => ({ ...p, timeline: undefined });

async function sweep(env: Env) {
  const cells = [];
  for (const latencyMs of inputs.latenciesMs) {
    await env.swh.setConfig(latencyPatch(latencyMs));
    for (const window of inputs.windows) {
      const b = bare(env.swh, window, 10_000_000 * (cells.length + 1));
      const p = await pack(env, inputs.sweepRows, window);
      const ratio = round(p.getsPerSecond / Math.max(1, b.getsPerSecond), 3);
      console.error(
        `  ${String(latencyMs)} ms × ${String(window)}: pack ${String(p.getsPerSecond)} GETs/s, bare ${String(b.getsPerSecond)}: ${String(ratio)}×`,
      );
      cells.push({
        latencyMs,
        window,
        rows: inputs.sweepRows,
        pack: { ...brief(p), timeline: p.timeline },
        bare: b,
        /** pack GETs/s over the bare loop's, same latency and window. */
        ratio,
        /** The SDK's share of pack's CPU, estimated: the bare loop's CPU per GET × pack's GETs. */
        sdkCpuSecondsPer1MRows: round(
          ((b.cpuMsPerGet / 1000) * p.server.requests * 1e6) / Math.max(1, p.rows),
          2,
        ),
        pass: ratio >= 0.8,
      });
    }
  }
  return {
    date: new Date().toISOString(),
    target: 'pack GETs/s ≥ 0.8× the bare SDK loop at equal latency and window',
    cells,
    pass: cells.every((c) => c.pass),
  };
}

async function memory(env: Env) {
  await env.swh.setConfig(latencyPatch(20));
  const runs = [];
  for (const rows of inputs.memoryRows) runs.push(await pack(env, rows, 256));
  const first = runs[0];
  const last = runs[runs.length - 1];
  const growth = first && last ? round(last.peakRssMb / first.peakRssMb, 3) : null;
  const peakParts = Math.max(...runs.map((r) => r.peakScratchParts));
  return {
    date: new Date().toISOString(),
    latencyMs: 20,
    window: 256,
    runs: runs.map(brief),
    rssGrowth: growth,
    rssPass: growth !== null && growth <= 1.1,
    peakScratchParts: peakParts,
    scratchPass: peakParts <= 2,
    targets:
      'peak RSS ≤ 1.1× from the smaller to the larger shard; scratch ≤ 2 parts per running pack',
  };
}

async function cores(env: Env) {
  await env.swh.setConfig(latencyPatch(20));
  const one = await pack(env, inputs.coresRows, 256, { cpus: '0' });
  const two = await pack(env, inputs.coresRows, 256, { cpus: '0,1' });
  const ratio = round(two.rowsPerSecond / Math.max(1, one.rowsPerSecond), 3);
  return {
    date: new Date().toISOString(),
    latencyMs: 20,
    window: 256,
    note: 'the CLI pinned with taskset; the two loopback servers unpinned (they share the cores)',
    one: brief(one),
    two: brief(two),
    ratio,
    pass: ratio >= 1.7,
    target: '2 cores ≥ 1.7× 1 core (rows/s)',
  };
}

const resultsFile = join(REPO, 'bench/results/scale.json');
const previous = existsSync(resultsFile)
  ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as Record<string, unknown>)
  : {};

mkdirSync(BASE, { recursive: true });
// The S3 test server's data (the packed parts) goes to disk: a full-size shard's parts take GBs.
const s3Dir = mkdtempSync(join(tmpdir(), 'stackflow-scale-s3-'));
const s3 = await startS3Server({ dir: s3Dir });
const swh = await startSwhServer();
const out: Record<string, unknown> = { ...previous };
try {
  const pool = await swh.warm();
  const env = { s3, s3Dir, swh };
  const load0 = loadavg()[0];
  if (only.includes('capacity')) {
    out.capacity = {
      date: new Date().toISOString(),
      ...(await measureCapacity(quick ? 3 : 5, 128)),
    };
  }
  if (only.includes('sweep')) out.sweep = await sweep(env);
  if (only.includes('memory')) out.memory = await memory(env);
  if (only.includes('cores')) out.cores = await cores(env);
  out.name = 'scale';
  out.date = new Date().toISOString();
  out.machine = { ...machineInfo(), loadavgAtStart: load0, loadavgAtEnd: loadavg()[0] };
  out.inputs = { ...inputs, sections: only, swhPool: pool };
  out.calibration = calibration(out);
  writeResults('scale', out);
  console.log(JSON.stringify(out.calibration, null, 2));
} finally {
  await swh.stop();
  await s3.stop();
  rmSync(s3Dir, { recursive: true, force: true });
}

/**
 * Per-core figures for capacity planning (stackflow estimate): from the sweep cell at 20 ms and
 * the largest window measured (else any cell), CPU per row and bytes per row.
 */
function calibration(r: Record<string, unknown>) {
  const cells =
    (r.sweep as { cells?: { latencyMs: number; window: number; pack: PackRun }[] } | undefined)
      ?.cells ?? [];
  const at20 = cells.filter((c) => c.latencyMs === 20).sort((a, b) => b.window - a.window);
  const cell = at20[0] ?? cells[0];
  if (cell === undefined) return null;
  const p = cell.pack;
  const rows = Math.max(1, p.rows);
  return {
    from: `sweep: ${String(cell.latencyMs)} ms × window ${String(cell.window)}, ${String(p.rows)} rows`,
    cpuSecondsPerMillionRows: p.cpuSecondsPer1MRows.total,
    rowsPerCoreSecond: Math.round(1e6 / Math.max(0.001, p.cpuSecondsPer1MRows.total)),
    getsPerRow: round(p.server.requests / rows, 4),
    jsonBytesPerRow: Math.round((p.counts.raw_bytes ?? 0) / rows),
    outputBytesPerRow: Math.round((p.counts.zst_bytes ?? 0) / rows),
    gzBytesPerGet: Math.round(p.server.bytes / Math.max(1, p.server.requests)),
    rowsPerSecondThisMachine: p.rowsPerSecond,
    coresBusy: p.coresBusy,
  };
}
