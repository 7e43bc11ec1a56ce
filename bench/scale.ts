/**
 * The full-size rehearsal of pack (issue 10 §1–§4): generated shards with the real 26-column
 * schema (scripts/make-big-parquet.ts --swh, HF-like row groups, under /dev/shm or the temp dir),
 * packed through the real CLI with state and bucket on the loopback S3 test server and contents
 * from the synthetic Software Heritage (test/servers/swh: latency, size distribution, rate limit).
 * Parts (`--part`, default all, in this order):
 *
 *   capacity  GETs/s the synthetic SWH serves here (plain http clients in 1–3 processes) against
 *             what one SDK client takes: the server must not be the limit
 *   sweep     latency × window: pack's GET rate against a bare SDK GET loop at the same latency
 *             and window (bare, then 3 × (pack, bare) per cell; median). Target ≥ 0.8× (scale-sweep.ts)
 *   adaptive  the AIMD window against the server's rate limit R, R raised mid-run (scale-adaptive.ts)
 *   scaling   the same pack, its servers with it, pinned (taskset) to 1 core and to 2 cores;
 *             target ≥ 1.7×
 *   full      300k and 3M rows: generation time, RSS (≤ 1.1×), scratch (≤ 2 parts), CPU per 1M
 *             rows by thread group, GETs in flight over time, retries by cause (scale-full.ts)
 *
 *   npm run bench -- --only scale [--part sweep,full] [--quick] [--rows 300000,3000000]
 *       [--cell-rows 20000] [--bare-seconds 8] [--latency 5,20,60] [--window 64,256,1024]
 *       [--sweep-repeats 3]
 *       [--scaling-rows 30000] [--rates R1,R2] [--adaptive-latency 60] [--data-dir DIR] [--dry-run]
 *
 * Writes bench/results/scale.json: each part its own key with its inputs, the machine, the load
 * before and after and whether other work was busy during it (`noisy`); a part not run keeps its
 * last figures. `calibration` (for `stackflow estimate --calibration`) is recomputed from the
 * parts present. `--dry-run` prints the parts, their inputs and a time estimate, and runs nothing.
 * A missed target is a figure (`pass: false`), not a failure; a pack that fails is.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startS3Server } from '../test/servers/s3/harness.js';
import { measureCapacity } from '../test/servers/swh/capacity.js';
import { startSwhServer } from '../test/servers/swh/harness.js';
import { DEFAULT_CONFIG } from '../test/servers/swh/model.js';
import { machineInfo } from './lib/machine.js';
import { adaptive } from './lib/scale-adaptive.js';
import type { Env } from './lib/scale-env.js';
import { REPO, bare, dataBase, load, measured } from './lib/scale-env.js';
import { full } from './lib/scale-full.js';
import { scaling } from './lib/scale-scaling.js';
import { calibration, estimateSeconds, printSummary } from './lib/scale-summary.js';
import { sweep } from './lib/scale-sweep.js';
import { zstdCost } from './lib/scale-zstd.js';
import { writeResults } from './lib/stats.js';

const PARTS = ['capacity', 'sweep', 'adaptive', 'scaling', 'full'] as const;
type Part = (typeof PARTS)[number];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    part: { type: 'string' },
    rows: { type: 'string' },
    'cell-rows': { type: 'string' },
    'bare-seconds': { type: 'string' },
    latency: { type: 'string' },
    window: { type: 'string' },
    'sweep-window-mode': { type: 'string', default: 'fixed' },
    'sweep-repeats': { type: 'string' },
    'scaling-rows': { type: 'string' },
    'scaling-repeats': { type: 'string' },
    rates: { type: 'string' },
    'adaptive-latency': { type: 'string' },
    'phase-seconds': { type: 'string' },
    'capacity-seconds': { type: 'string' },
    'rows-per-part': { type: 'string', default: '16384' },
    'row-group-size': { type: 'string', default: '100000' },
    'data-dir': { type: 'string' },
    'dry-run': { type: 'boolean', default: false },
  },
});
const quick = values.quick;
const fail = (why: string): never => {
  console.error(why);
  process.exit(2);
};
const list = (name: string, v: string | undefined, d: string): number[] => {
  const xs = (v ?? d).split(',').map(Number);
  if (xs.some((x) => !(Number.isFinite(x) && x > 0)))
    fail(`--${name}: positive numbers, comma-separated`);
  return xs;
};
const one = (name: string, v: string | undefined, d: number): number =>
  list(name, v, String(d))[0] ?? d;
const parts = (values.part?.split(',') ?? [...PARTS]) as Part[];
for (const p of parts) {
  if (!(PARTS as readonly string[]).includes(p))
    fail(`unknown part ${p}; known: ${PARTS.join(', ')}`);
}
const windowMode = (v: string): 'fixed' | 'adaptive' =>
  v === 'fixed' || v === 'adaptive' ? v : fail(`window mode: fixed or adaptive, not ${v}`);
const rates = values.rates === undefined ? undefined : list('rates', values.rates, '');

/** Every part's inputs; each part records its own in scale.json. */
const inputs = {
  capacity: {
    seconds: one('capacity-seconds', values['capacity-seconds'], quick ? 3 : 5),
    concurrency: 128,
    procs: [1, 2, 3],
  },
  sweep: {
    latenciesMs: list('latency', values.latency, quick ? '20' : '5,20,60'),
    windows: list('window', values.window, quick ? '64,256' : '64,256,1024'),
    // 20,000 rows: ~30 s of pack per cell on this machine; two parts, so part boundaries count.
    cellRows: one('cell-rows', values['cell-rows'], quick ? 5000 : 20_000),
    bareSeconds: one('bare-seconds', values['bare-seconds'], quick ? 3 : 8),
    windowMode: windowMode(values['sweep-window-mode']),
    repeats: one('sweep-repeats', values['sweep-repeats'], quick ? 1 : 3),
  },
  adaptive: {
    // 60 ms: R1 (~0.5× what pack takes here, a few hundred GETs/s) is then a window of ~15 or
    // more; at 20 ms it would be a handful, and no window controller expresses a rate between
    // windows of 2 and 3 (a real store's 5,500 GETs/s at 20 ms is a window of ~110).
    latencyMs: one('adaptive-latency', values['adaptive-latency'], 60),
    window: 1024,
    ...(rates === undefined ? {} : { rates: [rates[0] ?? 0, rates[1] ?? 0] as [number, number] }),
    shares: [0.5, 0.8] as [number, number],
    phaseSeconds: one('phase-seconds', values['phase-seconds'], quick ? 15 : 40),
    warmupSeconds: quick ? 5 : 10,
    calibrationRows: quick ? 3000 : 10_000,
  },
  scaling: {
    // 60,000 rows: four parts, ~1 min per run on 1 core; start-up and the last upload weigh less.
    rows: one('scaling-rows', values['scaling-rows'], quick ? 5000 : 60_000),
    latencyMs: 20,
    window: 256,
    windowMode: 'fixed' as const,
    repeats: one('scaling-repeats', values['scaling-repeats'], quick ? 1 : 3),
    cpus: ['0', '0,1'] as [string, string],
  },
  full: {
    rows: list('rows', values.rows, quick ? '10000,30000' : '300000,3000000'),
    latencyMs: 20,
    window: 1024,
    windowMode: 'adaptive' as const,
    bareSeconds: quick ? 3 : 8,
  },
};
const common = {
  quick,
  rowsPerPart: one('rows-per-part', values['rows-per-part'], 16384),
  rowGroupSize: one('row-group-size', values['row-group-size'], 100_000),
  /** The synthetic SWH's models (test/servers/swh/model.ts); p99 latency is 7.5× the median. */
  swh: { size: DEFAULT_CONFIG.size, latency: DEFAULT_CONFIG.latency },
};

const resultsFile = join(REPO, 'bench/results/scale.json');
const previous = existsSync(resultsFile)
  ? (JSON.parse(readFileSync(resultsFile, 'utf8')) as Record<string, unknown>)
  : {};

const plan = parts.map((p) => ({
  part: p,
  inputs: inputs[p],
  seconds: estimateSeconds(p, inputs, previous),
}));
console.error(`bench/scale.ts: ${parts.join(', ')}`);
for (const p of plan) {
  console.error(
    `  ${p.part.padEnd(9)} ~${p.seconds === null ? '?' : String(Math.round(p.seconds / 60))} min  ${JSON.stringify(p.inputs)}`,
  );
}
if (values['dry-run']) process.exit(0);

const base = dataBase(values['data-dir']);
mkdirSync(base, { recursive: true });
// The S3 test server's data (the packed parts) goes to disk: a full-size shard's parts take GBs.
const s3Dir = mkdtempSync(join(tmpdir(), 'stackflow-scale-s3-'));
const s3 = await startS3Server({ dir: s3Dir });
const swh = await startSwhServer();
const out: Record<string, unknown> = { ...previous };
// Earlier names of two parts (memory → full, cores → scaling): their figures are superseded.
delete out.memory;
delete out.cores;
delete out.inputs;
const save = () => {
  out.name = 'scale';
  out.date = new Date().toISOString();
  out.machine = machineInfo();
  out.common = common;
  out.calibration = calibration(out);
  writeResults('scale', out);
};
try {
  const pool = await swh.warm();
  out.swhPool = pool;
  const env: Env = {
    s3,
    s3Dir,
    swh,
    base,
    rowsPerPart: common.rowsPerPart,
    rowGroupSize: common.rowGroupSize,
    zstd: await zstdCost(),
  };
  out.zstdReference = env.zstd;
  for (const part of parts) {
    console.error(`\n--- ${part}`);
    if (part === 'capacity') {
      const i = inputs.capacity;
      const loadBefore = load();
      const cap = await measureCapacity(i.seconds, i.concurrency, i.procs);
      // What the client takes at its best: the bare SDK loop with no latency, window 256.
      await swh.setConfig({ latency: { medianMs: 0 } });
      const client = bare(env, 256, i.seconds, 800_000_000);
      await swh.setConfig({ latency: DEFAULT_CONFIG.latency });
      const headroom = Number(
        (cap.httpGetsPerSecond / Math.max(1, client.getsPerSecond)).toFixed(2),
      );
      out.capacity = {
        inputs: i,
        ...cap,
        clientSdkGetsPerSecond: client.getsPerSecond,
        /** The server's GETs/s over the most the SDK client takes (no latency, window 256). */
        headroom,
        pass: headroom >= 2,
        target: 'the server serves ≥ 2× what the bare SDK client takes on this machine',
        date: new Date().toISOString(),
        machine: machineInfo(),
        loadBefore,
        loadAfter: load(),
      };
    } else if (part === 'sweep') out.sweep = await measured(() => sweep(env, inputs.sweep));
    else if (part === 'adaptive')
      out.adaptive = await measured(() => adaptive(env, inputs.adaptive));
    else if (part === 'scaling') out.scaling = await measured(() => scaling(env, inputs.scaling));
    else {
      out.full = await measured(() =>
        full(env, inputs.full, (partial) => {
          out.full = { ...partial, date: new Date().toISOString(), machine: machineInfo() };
          save();
        }),
      );
    }
    // Saved after every part: a part that fails later does not lose the ones before.
    save();
  }
  printSummary(out);
} finally {
  await swh.stop();
  await s3.stop();
  rmSync(s3Dir, { recursive: true, force: true });
}
