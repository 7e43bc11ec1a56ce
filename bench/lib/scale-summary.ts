/**
 * What bench/scale.ts's results say, read back from bench/results/scale.json: the calibration
 * `stackflow estimate --calibration` uses, a time estimate per part (from the last results, for
 * `--dry-run`), and the README's tables for "The whole dataset on a fleet", printed or written
 * into README.md between its `scale:begin` / `scale:end` markers:
 *
 *   npx tsx bench/lib/scale-summary.ts            # prints the tables
 *   npx tsx bench/lib/scale-summary.ts --readme   # refreshes them in README.md
 *
 * The tables: the rehearsal's figures with their targets, the sweep's latency × window matrix,
 * and `stackflow estimate` of the whole dataset on 10, 20 and 40 hosts of 32 cores at three store
 * rates with the rehearsal's calibration (needs `npm run build`).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stackV2Listing } from '../../test/helpers/stack-v2.js';
import { round } from './stats.js';

type Json = Record<string, unknown>;
const obj = (v: unknown): Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {};
const arr = (v: unknown): Json[] => (Array.isArray(v) ? v.map(obj) : []);
const num = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;
const fmt = (v: number | undefined, digits = 2): string =>
  v === undefined
    ? '–'
    : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
const yes = (pass: unknown): string => (pass === true ? 'yes' : pass === false ? '**no**' : '–');
const when = (part: Json): string => {
  const d = typeof part.date === 'string' ? part.date.slice(0, 16).replace('T', ' ') : '?';
  const noisy = part.noisy === true ? ', **noisy**: other work took cores' : '';
  const l = num(obj(part.loadBefore).loadavg1);
  return `${d} UTC${l === undefined ? '' : `, load ${fmt(l, 1)} before`}${noisy}`;
};

/**
 * Per-row costs for `stackflow estimate`: from the largest full-size run when there is one, else
 * the sweep's 20 ms cell with the largest window (else any cell).
 */
export function calibration(r: Json): Json | null {
  const runs = arr(obj(r.full).runs);
  const cells = arr(obj(r.sweep).cells);
  const at20 = cells
    .filter((c) => c.latencyMs === 20)
    .sort((a, b) => (num(b.window) ?? 0) - (num(a.window) ?? 0));
  const largest = [...runs].sort((a, b) => (num(b.rows) ?? 0) - (num(a.rows) ?? 0))[0];
  const cell = at20[0] ?? cells[0];
  const p = largest ?? (cell === undefined ? undefined : obj(cell.pack));
  if (p === undefined) return null;
  const rows = Math.max(1, num(p.rows) ?? 1);
  const counts = obj(p.counts);
  const server = obj(p.server);
  const requests = num(server.requests) ?? 0;
  const cpu = num(obj(p.cpuSecondsPer1MRows).total) ?? 0;
  return {
    from:
      largest !== undefined
        ? `full: ${String(p.rows)} rows, window ${String(p.window)} ${String(p.windowMode)}`
        : `sweep: ${String(cell?.latencyMs)} ms × window ${String(cell?.window)}, ${String(p.rows)} rows`,
    cpuSecondsPerMillionRows: cpu,
    rowsPerCoreSecond: Math.round(1e6 / Math.max(0.001, cpu)),
    getsPerRow: round(requests / rows, 4),
    jsonBytesPerRow: Math.round((num(counts.raw_bytes) ?? 0) / rows),
    outputBytesPerRow: Math.round((num(counts.zst_bytes) ?? 0) / rows),
    gzBytesPerGet: Math.round((num(server.bytes) ?? 0) / Math.max(1, requests)),
    rowsPerSecondThisMachine: p.rowsPerSecond,
    coresBusy: p.coresBusy,
  };
}

/** Rough seconds a part takes, from the last results' pack rate on a quiet machine. */
export function estimateSeconds(
  part: string,
  inputs: Record<string, Json>,
  previous: Json,
): number | null {
  // The fastest pack of a part measured on a quiet machine; else ~600 rows/s, what a quiet
  // 2-core machine packs at 20 ms.
  const quiet = (part: Json) => (part.noisy === true ? [] : [part]);
  const rates = [
    ...quiet(obj(previous.sweep)).flatMap((p) => arr(p.cells).map((c) => obj(c.pack))),
    ...quiet(obj(previous.full)).flatMap((p) => arr(p.runs)),
    ...quiet(obj(previous.scaling)).flatMap((p) => arr(p.two)),
  ]
    .map((p) => num(p.rowsPerSecond))
    .filter((x): x is number => x !== undefined);
  const rate = rates.length > 0 ? Math.max(...rates) : 600;
  const packS = (rows: number) => rows / rate + 12;
  const i = obj(inputs[part]);
  if (part === 'capacity') {
    const s = num(i.seconds) ?? 5;
    return 3 * (s + 5) + (s + 1) + (s + 4) + 10;
  }
  if (part === 'sweep') {
    const len = (v: unknown) => (Array.isArray(v) ? v.length : 0);
    const n = len(i.latenciesMs) * len(i.windows);
    const repeats = num(i.repeats) ?? 1;
    return (
      n *
      ((repeats + 1) * ((num(i.bareSeconds) ?? 8) + 4) + repeats * packS(num(i.cellRows) ?? 20_000))
    );
  }
  if (part === 'adaptive') {
    return packS(num(i.calibrationRows) ?? 10_000) + 2.3 * (num(i.phaseSeconds) ?? 40) + 15;
  }
  if (part === 'scaling') {
    const rows = num(i.rows) ?? 30_000;
    // `repeats` pinned pairs, then one pair with the servers unpinned.
    return ((num(i.repeats) ?? 1) + 1) * (packS(rows) + rows / (rate * 0.55) + 12);
  }
  if (part === 'full') {
    const rows = Array.isArray(i.rows)
      ? i.rows.filter((x): x is number => typeof x === 'number')
      : [];
    return rows.reduce((a, r) => a + packS(r) + r / 100_000, 0) + (num(i.bareSeconds) ?? 8) + 4;
  }
  return null;
}

function capacityLines(c: Json): string[] {
  if (num(c.httpGetsPerSecond) === undefined) return [];
  const by = arr(c.byProcs)
    .map((b) => `${fmt(num(b.procs), 0)}: ${fmt(num(b.getsPerSecond), 0)}`)
    .join(', ');
  return [
    `| synthetic SWH capacity (${when(c)}) | ${fmt(num(c.httpGetsPerSecond), 0)} GETs/s to plain http clients (by client processes ${by}); ${fmt(num(c.serverCpuMsPerGet), 3)} ms server CPU per GET (~${fmt(num(c.serverGetsPerCoreSecond), 0)} per core-second) | the bare SDK loop takes ${fmt(num(c.clientSdkGetsPerSecond), 0)}: headroom ${fmt(num(c.headroom))}× | ≥ 2× | ${yes(c.pass)} |`,
  ];
}

/** How a cell was measured: one bare-pack-bare, or the median of several repeats. */
function sweepMethod(repeats: number | undefined): string {
  return repeats === undefined || repeats <= 1
    ? 'each cell bare, pack, bare'
    : `each cell bare, then ${String(repeats)} × (pack, bare), the median repeat shown; all repeats in the results`;
}

function sweepTable(s: Json): string[] {
  const cells = arr(s.cells);
  if (cells.length === 0) return [];
  const lat = [...new Set(cells.map((c) => num(c.latencyMs) ?? 0))];
  const win = [...new Set(cells.map((c) => num(c.window) ?? 0))];
  const i = obj(s.inputs);
  const out = [
    `**Sweep** (${when(s)}; ${fmt(num(i.cellRows), 0)} rows a cell, window \`${String(i.windowMode)}\`; ${sweepMethod(num(i.repeats))}): pack GETs/s / bare SDK loop GETs/s = ratio (target ≥ 0.8×)`,
    '',
    `| latency | ${win.map((w) => `window ${String(w)}`).join(' | ')} |`,
    `| ------- | ${win.map(() => '---').join(' | ')} |`,
  ];
  for (const l of lat) {
    const row = win.map((w) => {
      const c = cells.find((x) => x.latencyMs === l && x.window === w);
      if (c === undefined) return '–';
      const ratio = num(c.ratio);
      const mark = c.pass === true ? '' : ' ✗';
      return `${fmt(num(obj(c.pack).getsPerSecond), 0)} / ${fmt(num(c.bareGetsPerSecond), 0)} = ${fmt(ratio)}×${mark}${c.noisy === true ? ' (noisy)' : ''}`;
    });
    out.push(`| ${String(l)} ms | ${row.join(' | ')} |`);
  }
  return out;
}

function fullLines(f: Json): string[] {
  const runs = arr(f.runs);
  if (runs.length === 0) return [];
  const gen = arr(f.generation)
    .map(
      (g) =>
        `${fmt(num(g.rows), 0)} rows in ${fmt(num(g.seconds), 1)} s (${fmt((num(g.parquetBytes) ?? 0) / 1e6, 0)} MB)`,
    )
    .join(', ');
  const first = runs[0] ?? {};
  const last = runs[runs.length - 1] ?? {};
  const lines = [
    `| shard generation (DuckDB) | ${gen} | – | – | – |`,
    runs.length < 2
      ? // One size only: no growth measured, so no verdict on the target.
        `| peak RSS, ${fmt(num(first.rows), 0)} rows only (${when(f)}) | ${fmt(num(first.peakRssMb), 0)} MB | a second size: not run | ≤ 1.1× | – |`
      : `| peak RSS, ${fmt(num(first.rows), 0)} → ${fmt(num(last.rows), 0)} rows (${when(f)}) | ${fmt(num(first.peakRssMb), 0)} → ${fmt(num(last.peakRssMb), 0)} MB | the smaller shard | ${fmt(num(f.rssGrowth))}× ≤ 1.1× | ${yes(f.rssPass)} |`,
    `| peak scratch per running pack | ${fmt(num(f.peakScratchParts))} parts | – | ≤ 2 parts | ${yes(f.scratchPass)} |`,
  ];
  for (const r of runs) {
    const c = obj(r.cpuSplit);
    const t = obj(c.byThread);
    const rt = obj(r.retries);
    lines.push(
      `| pack of ${fmt(num(r.rows), 0)} rows, 20 ms, window ≤ ${fmt(num(r.window), 0)} ${String(r.windowMode)} | ${fmt(num(r.rowsPerSecond), 0)} rows/s, ${fmt(num(r.getsPerSecond), 0)} GETs/s, ${fmt(num(r.outputMBps))} MB/s out, ${fmt(num(r.coresBusy))} cores busy; CPU-s per 1M rows ${fmt(num(c.total), 0)} = SDK ~${fmt(num(c.sdkEstimated), 0)} + line workers ${fmt(num(c.lineWorkers), 0)} + zstd ~${fmt(num(c.zstdEstimated), 0)} + the rest ${fmt(num(c.rest), 0)} (by thread: main ${fmt(num(t.main), 0)}, workers ${fmt(num(t.workers), 0)}, others ${fmt((num(t.native) ?? 0) + (num(t.exited) ?? 0), 0)}); most GETs in flight ${fmt(num(obj(r.server).maxInFlight), 0)}; retried: ${fmt(num(rt.slowDown), 0)} SlowDown, ${fmt(num(rt.internalError), 0)} 500, ${fmt(num(rt.unavailable), 0)} 503 | – | – | – |`,
    );
  }
  return lines;
}

function adaptiveLines(a: Json): string[] {
  if (num(a.limit) === undefined) return [];
  const shares = obj(a.inputs).shares;
  const share1 = Array.isArray(shares) ? num(shares[0]) : undefined;
  const ref =
    a.calibration === null
      ? 'R1 as given (`--rates`)'
      : `R1 (${fmt(share1)}× pack's unthrottled ${fmt(num(obj(a.calibration).getsPerSecond), 0)} GETs/s)`;
  const rec = num(a.recoverySeconds);
  return [
    `| adaptive window at R1 = ${fmt(num(a.limit), 0)} GETs/s (${when(a)}) | ${fmt(num(a.rate1), 0)} GETs/s admitted = ${fmt(num(a.shareOfLimit))}× R1; ${fmt((num(a.slowDownShare) ?? 0) * 100, 2)}% SlowDown over the run | ${ref} | ≥ 0.9 R1, < 5% | ${yes(a.pass)} |`,
    `| limit raised to R2 = ${fmt(num(a.raisedLimit), 0)} | ${rec === undefined ? 'not reached' : `0.9 R2 reached ${fmt(rec, 0)} s after the raise; then ${fmt(num(a.rate2), 0)} GETs/s (${fmt(num(a.shareOfLimit2))}× R2)`} | R2 | recovers | ${yes(rec !== undefined)} |`,
  ];
}

function scalingLines(s: Json): string[] {
  if (num(s.ratio) === undefined) return [];
  const u = obj(s.unpinnedServers);
  const free =
    num(u.ratio) === undefined
      ? ''
      : `; servers left free on both cores: ${fmt(num(u.twoRowsPerSecond), 0)} vs ${fmt(num(u.oneRowsPerSecond), 0)}, ${fmt(num(u.ratio))}×`;
  return [
    `| pack and its servers pinned to 2 cores vs 1 (taskset; ${when(s)}) | ${fmt(num(s.twoRowsPerSecond), 0)} vs ${fmt(num(s.oneRowsPerSecond), 0)} rows/s (medians)${free} | 1 core | ${fmt(num(s.ratio))}× ≥ 1.7× | ${yes(s.pass)} |`,
  ];
}

function calibrationLines(c: Json): string[] {
  if (num(c.cpuSecondsPerMillionRows) === undefined) return [];
  const perCore = num(c.rowsPerCoreSecond) ?? 0;
  return [
    `| per core (\`calibration\`, from ${String(c.from)}) | ${fmt(num(c.cpuSecondsPerMillionRows), 0)} CPU-s per 1M rows = ${fmt(perCore, 0)} rows per core-second; GETs per row ${fmt(num(c.getsPerRow), 3)}, ${fmt((num(c.gzBytesPerGet) ?? 0) / 1000, 1)} KB gzip per GET, ${fmt((num(c.jsonBytesPerRow) ?? 0) / 1000, 1)} KB JSON and ${fmt((num(c.outputBytesPerRow) ?? 0) / 1000, 1)} KB packed per row | – | – | – |`,
    `| per host of 32 cores (model: per core × 32, CPU-bound) | ~${fmt(perCore * 32, 0)} rows/s, ~${fmt(perCore * 32 * (num(c.getsPerRow) ?? 1), 0)} GETs/s | – | – | – |`,
  ];
}

/** The README block: one table of figures, then the sweep's matrix. */
export function summaryMarkdown(r: Json): string {
  const head = [
    '| figure | measured | reference | target | met |',
    '| ------ | -------- | --------- | ------ | --- |',
  ];
  const rows = [
    ...calibrationLines(obj(r.calibration)),
    ...capacityLines(obj(r.capacity)),
    ...fullLines(obj(r.full)),
    ...adaptiveLines(obj(r.adaptive)),
    ...scalingLines(obj(r.scaling)),
  ];
  const m = obj(r.machine);
  const lines = [
    `_Measured by \`npm run bench -- --only scale\` on ${fmt(num(m.cores), 0)} cores, ${fmt(num(m.memoryGiB), 0)} GiB, Node ${String(m.node)}; refreshed from bench/results/scale.json by \`npx tsx bench/lib/scale-summary.ts --readme\`._`,
    '',
    ...(rows.length > 0 ? [...head, ...rows] : ['_No figures yet._']),
  ];
  const sweep = sweepTable(obj(r.sweep));
  if (sweep.length > 0) lines.push('', ...sweep);
  return lines.join('\n');
}

const dur = (s: number): string => {
  if (s >= 2 * 86_400) return `${fmt(s / 86_400, 1)} days`;
  if (s >= 3600)
    return `${String(Math.floor(s / 3600))} h ${String(Math.round((s % 3600) / 60))} min`;
  return `${String(Math.round(s / 60))} min`;
};

/**
 * `stackflow estimate` for the whole dataset (the real 917-parquet list with synthetic sizes,
 * test/helpers/stack-v2.ts) on 10, 20 and 40 hosts of 32 cores, at three store rates, with
 * scale.json's calibration: a markdown table. Needs the CLI built (dist/).
 */
export function estimateTable(repo: string, scaleJson: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'stackflow-scale-estimate-'));
  try {
    const listing = join(dir, 'listing.txt');
    writeFileSync(listing, stackV2Listing());
    const out = [
      `**\`stackflow estimate\`** of the full dataset (917 parquets, synthetic sizes; hosts of 32 cores, 256 GiB; \`--calibration bench/results/scale.json\`):`,
      '',
      '| store rate (GETs/s) | hosts | makespan | limited by | packs alone | host-hours | CPU | S3 requests (cost) | coordination |',
      '| ------------------- | ----- | -------- | ---------- | ----------- | ---------- | --- | ------------------ | ------------ |',
    ];
    for (const rate of [5500, 100_000, 10_000_000]) {
      for (const hosts of [10, 20, 40]) {
        const r = spawnSync(
          process.execPath,
          [
            join(repo, 'bin/stackflow.js'),
            'estimate',
            '--listing',
            listing,
            '--calibration',
            scaleJson,
            '--hosts',
            String(hosts),
            '--cores',
            '32',
            '--store-rate',
            String(rate),
            '--json',
          ],
          { cwd: dir, encoding: 'utf8' },
        );
        if (r.status !== 0) throw new Error(`stackflow estimate failed: ${r.stderr}`);
        const e = JSON.parse(r.stdout) as Json;
        const t = obj(e.totals);
        const m = obj(e.makespan);
        const lines = arr(obj(e.requests).lines);
        const all = lines.reduce(
          (a, l) => a + (num(l.gets) ?? 0) + (num(l.putsLists) ?? 0) + (num(l.deletes) ?? 0),
          0,
        );
        const coord = lines
          .filter((l) => String(l.purpose).startsWith('coordination'))
          .reduce(
            (a, l) => a + (num(l.gets) ?? 0) + (num(l.putsLists) ?? 0) + (num(l.deletes) ?? 0),
            0,
          );
        const usd = lines.reduce((a, l) => a + (num(l.usd) ?? 0), 0);
        out.push(
          `| ${fmt(rate, 0)} | ${String(hosts)} | ${dur(num(m.seconds) ?? 0)} | ${String(m.limitedBy)} | ${dur(num(obj(m.bounds).packs) ?? 0)} | ${fmt(num(m.hostHours), 0)} | ${fmt(num(t.cpuHours), 0)} c-h | ${fmt(all / 1e9, 2)}B ($${fmt(usd, 0)}) | ${fmt((coord / Math.max(1, all)) * 100, 3)}% |`,
        );
      }
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printSummary(r: Json): void {
  console.log(`\n${summaryMarkdown(r)}`);
}

const BEGIN = '<!-- scale:begin -->';
const END = '<!-- scale:end -->';

/** README.md with the block between the markers replaced. */
export function withBlock(readme: string, block: string): string {
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md has no ${BEGIN} … ${END} block`);
  return `${readme.slice(0, a + BEGIN.length)}\n\n${block}\n\n${readme.slice(b)}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const repo = resolve(import.meta.dirname, '../..');
  const scaleJson = join(repo, 'bench/results/scale.json');
  const r = JSON.parse(readFileSync(scaleJson, 'utf8')) as Json;
  const block = [summaryMarkdown(r), '', ...estimateTable(repo, scaleJson)].join('\n');
  if (process.argv.includes('--readme')) {
    const file = join(repo, 'README.md');
    writeFileSync(file, withBlock(readFileSync(file, 'utf8'), block));
    console.error('README.md: the scale block refreshed (run prettier --write README.md)');
  } else console.log(block);
}
