/**
 * Pack throughput benchmark: the real CLI packing a the-stack-v2-shaped parquet with realistic
 * content (bench/lib/pack-data.ts: median ~4 KB, long tail, local blobs), compared with the zstd
 * CLI compressing the identical JSONL.
 *
 *   npx tsx bench/pack.ts [--rows 50000] [--runs 5] [--quick]
 *
 * What is timed, each as a whole child process, in alternation (A B C A B C ...), median of
 * `--runs` after one warm-up round:
 *   A  `node bin/stackflow.js run pack --force pack` (discover and fetch are fresh from a first
 *      run, so this is pack end to end: DuckDB scan, blob reads, gunzip, decode, JSON, zstd,
 *      publish into the local bucket);
 *   B  `zstd -3 -T1 -c <jsonl> > /dev/null`;
 *   C  `zstd -3 -T2 -c <jsonl> > /dev/null`;
 * where <jsonl> is the concatenation of the parts stackflow produced, decompressed with
 * `zstd -dc`: the same bytes. Throughput is MB/s of that JSONL (1 MB = 10^6 bytes).
 *
 * Threads: stackflow runs its JavaScript on one main thread, compresses frames in the libuv pool
 * (4 threads by default, at most 2 frames in flight), and DuckDB scans with 2 threads; it has no
 * thread count to set equal to zstd's. So the script measures the CPU it really used
 * ((user + sys) / wall, from /usr/bin/time) and reports the ratio against both zstd -T1 and -T2;
 * on a 2-core machine -T2 is the like-for-like reference.
 *
 * Also: output size against `zstd -3` on the whole file, peak RSS at two row counts (rows/4 and
 * rows: it must not grow with the row count), and a `--cpu-prof` summary of one extra pack run.
 * Writes bench/results/pack.json.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ProfileSummary } from './lib/cpu-profile.js';
import { summarizeProfile } from './lib/cpu-profile.js';
import { machineInfo } from './lib/machine.js';
import type { PackDataManifest } from './lib/pack-data.js';
import { ensurePackData } from './lib/pack-data.js';
import type { TimedCommand } from './lib/stats.js';
import { median, round, timeOnce, writeResults } from './lib/stats.js';

const REPO = resolve(import.meta.dirname, '..');
const DATA = join(REPO, 'bench/data/pack');
const TARGET_RATIO = 0.6;
const TARGET_SIZE = 1.05;

const { values } = parseArgs({
  options: {
    rows: { type: 'string' },
    runs: { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});
const quick = values.quick;
const rows = Number(values.rows ?? (quick ? 12_000 : 50_000));
const runs = Number(values.runs ?? (quick ? 3 : 5));
if (!Number.isSafeInteger(rows) || rows < 100) throw new Error('--rows must be an integer >= 100');
if (!Number.isSafeInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
const small = Math.round(rows / 4);

const log = (s: string): void => {
  console.log(s);
};

/** What /usr/bin/time says about one child: CPU seconds and peak RSS. */
interface Usage {
  wallMs: number;
  cpuS: number;
  maxRssMb: number;
  stdout: string;
}

/** Times `c` under /usr/bin/time, so the CPU a child really used is known. */
function timed(c: TimedCommand): Usage {
  const usageFile = join(DATA, 'usage.txt');
  const r = timeOnce({
    ...c,
    cmd: '/usr/bin/time',
    args: ['-f', '%U %S %M', '-o', usageFile, c.cmd, ...c.args],
  });
  if (r.status !== 0) {
    throw new Error(
      `${c.cmd} ${c.args.join(' ')} exited ${String(r.status)}: ${r.stderr.slice(-2000)}`,
    );
  }
  const [user, sys, rssKb] =
    readFileSync(usageFile, 'utf8').trim().split('\n').at(-1)?.split(' ').map(Number) ?? [];
  return {
    wallMs: r.ms,
    cpuS: (user ?? 0) + (sys ?? 0),
    maxRssMb: Math.round((rssKb ?? 0) / 1024),
    stdout: r.stdout,
  };
}

/** The pack task's event and the run's peak RSS, from the CLI's JSON event lines. */
function packEvents(stdout: string): { rawBytes: number; zstBytes: number; peakRssMb: number } {
  const lines = stdout.split('\n').filter((l) => l.startsWith('{'));
  const fin = lines
    .filter((l) => l.includes('"run-finished"'))
    .map((l) => JSON.parse(l) as { ok: boolean; peakRssMb: number })[0];
  const packed = lines
    .filter((l) => l.includes('"task-succeeded"') && l.includes('"pack:'))
    .map((l) => JSON.parse(l) as { counts: { raw_bytes: number; zst_bytes: number } })[0];
  if (fin?.ok !== true || packed === undefined)
    throw new Error(`pack did not finish:\n${stdout.slice(-2000)}`);
  return {
    rawBytes: packed.counts.raw_bytes,
    zstBytes: packed.counts.zst_bytes,
    peakRssMb: fin.peakRssMb,
  };
}

function pipelineFor(m: PackDataManifest): string {
  const file = `pipeline-${m.rows}.yaml`;
  writeFileSync(
    join(DATA, file),
    [
      'version: 1',
      `dataset: { repo: bigcode/the-stack-v2, revision: bench, source: "file://${m.hfDir}", languages: [Big] }`,
      'content: { source: "file://swh/content" }',
      'tasks:',
      '  discover: { kind: discover }',
      '  fetch: { kind: fetch, needs: [discover] }',
      '  pack: { kind: pack, needs: [fetch], params: { rows_per_part: 16384, concurrency: 64 } }',
      '',
    ].join('\n'),
  );
  return file;
}

const packCommand = (m: PackDataManifest, nodeArgs: readonly string[] = []): TimedCommand => ({
  cmd: process.execPath,
  args: [
    ...nodeArgs,
    join(REPO, 'bin/stackflow.js'),
    'run',
    'pack',
    '--json',
    '-f',
    pipelineFor(m),
    '--cache-dir',
    `cache-${m.rows}`,
    '--force',
    'pack',
  ],
  cwd: DATA,
});

/** Every file under dir whose name ends with suffix, sorted (part names sort in row order). */
function filesUnder(dir: string, suffix: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith(suffix)) out.push(join(e.parentPath, e.name));
  }
  return out.sort();
}

const zstdCommand = (jsonl: string, threads: number): TimedCommand => ({
  cmd: 'sh',
  args: ['-c', `zstd -q -3 -T${threads} -c "$0" > /dev/null`, jsonl],
  cwd: DATA,
});

interface SizeResult {
  rows: number;
  jsonBytes: number;
  packSeconds: number;
  packMBps: number;
  /** (user + sys) / wall of the pack process: how many cores it kept busy. */
  packCores: number;
  peakRssMb: number;
  zstdT1MBps: number;
  zstdT2MBps: number;
  zstdT2Cores: number;
  ratioVsT1: number;
  ratioVsT2: number;
  /** stackflow's parts / `zstd -3 -T1` on the whole JSONL. */
  sizeRatio: number;
}

function measure(m: PackDataManifest, n: number): SizeResult {
  rmSync(join(DATA, `cache-${m.rows}`), { recursive: true, force: true });
  // First run: discover + fetch + pack (fetch is never timed).
  const first = packEvents(
    timed({ ...packCommand(m), args: packCommand(m).args.slice(0, -2) }).stdout,
  );
  const parts = filesUnder(join(DATA, `cache-${m.rows}`), '.jsonl.zst');
  const jsonl = join(DATA, `pack-${m.rows}.jsonl`);
  const d = spawnSync('sh', ['-c', 'zstd -q -dc "$@" > "$0"', jsonl, ...parts], {
    encoding: 'utf8',
  });
  if (d.status !== 0) throw new Error(`zstd -dc failed: ${d.stderr}`);
  const jsonBytes = statSync(jsonl).size;
  if (jsonBytes !== first.rawBytes) {
    throw new Error(
      `Internal error: parts decode to ${jsonBytes} bytes, pack reported ${first.rawBytes}`,
    );
  }
  const ref = spawnSync('sh', ['-c', 'zstd -q -3 -T1 -c "$0" | wc -c', jsonl], {
    encoding: 'utf8',
  });
  const zstdSize = Number(ref.stdout.trim());
  const commands = {
    pack: packCommand(m),
    zstdT1: zstdCommand(jsonl, 1),
    zstdT2: zstdCommand(jsonl, 2),
  };
  const got = { pack: [] as Usage[], zstdT1: [] as Usage[], zstdT2: [] as Usage[] };
  for (let round_ = -1; round_ < n; round_++) {
    for (const k of ['pack', 'zstdT1', 'zstdT2'] as const) {
      const u = timed(commands[k]);
      if (round_ >= 0) got[k].push(u);
    }
    if (round_ >= 0) {
      log(
        `  ${m.rows} rows, round ${round_ + 1}/${n}: pack ${(got.pack.at(-1)?.wallMs ?? 0).toFixed(0)} ms, ` +
          `zstd -T1 ${(got.zstdT1.at(-1)?.wallMs ?? 0).toFixed(0)} ms, -T2 ${(got.zstdT2.at(-1)?.wallMs ?? 0).toFixed(0)} ms`,
      );
    }
  }
  rmSync(jsonl, { force: true });
  const mbps = (us: Usage[]): number => jsonBytes / 1e6 / (median(us.map((u) => u.wallMs)) / 1000);
  const cores = (us: Usage[]): number => median(us.map((u) => u.cpuS / (u.wallMs / 1000)));
  const packMBps = mbps(got.pack);
  return {
    rows: m.rows,
    jsonBytes,
    packSeconds: round(median(got.pack.map((u) => u.wallMs)) / 1000, 2),
    packMBps: round(packMBps),
    packCores: round(cores(got.pack), 2),
    peakRssMb: Math.max(...got.pack.map((u) => packEvents(u.stdout).peakRssMb)),
    zstdT1MBps: round(mbps(got.zstdT1)),
    zstdT2MBps: round(mbps(got.zstdT2)),
    zstdT2Cores: round(cores(got.zstdT2), 2),
    ratioVsT1: round(packMBps / mbps(got.zstdT1), 3),
    ratioVsT2: round(packMBps / mbps(got.zstdT2), 3),
    sizeRatio: round(first.zstBytes / zstdSize, 4),
  };
}

function profile(m: PackDataManifest): ProfileSummary {
  const dir = join(DATA, 'profile');
  rmSync(dir, { recursive: true, force: true });
  timed(packCommand(m, ['--cpu-prof', `--cpu-prof-dir=${dir}`]));
  const prof = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (prof === undefined) throw new Error(`no .cpuprofile in ${dir}`);
  return summarizeProfile(join(dir, prof), REPO, { top: 15 });
}

mkdirSync(DATA, { recursive: true });
const manifests = await ensurePackData(DATA, [small, rows], log);
const [mSmall, mBig] = manifests;
if (mSmall === undefined || mBig === undefined) throw new Error('Internal error: no manifests');
const results = [measure(mSmall, Math.max(1, Math.ceil(runs / 2))), measure(mBig, runs)];
const big = results[1];
if (big === undefined) throw new Error('Internal error: no result');
const cpu = profile(mBig);
const out = {
  name: 'pack',
  date: new Date().toISOString(),
  machine: machineInfo({ zstd: ['zstd', '--version'] }),
  quick,
  runs,
  inputs: manifests,
  method:
    'wall time of whole processes, alternated pack / zstd -3 -T1 / zstd -3 -T2 on the identical JSONL (the parts decompressed), median of runs after one warm-up; MB = 1e6 bytes of JSONL',
  threads:
    'stackflow: 1 JS main thread + libuv pool (zstd frames, at most 2 in flight; fs) + 2 DuckDB threads; packCores is its measured (user+sys)/wall',
  target: `pack >= ${TARGET_RATIO}x zstd -3 at the same thread count; size <= ${TARGET_SIZE}x`,
  results,
  rssGrowth: round((results[1]?.peakRssMb ?? 0) / (results[0]?.peakRssMb ?? 1), 3),
  pass: {
    ratioVsT1: big.ratioVsT1 >= TARGET_RATIO,
    ratioVsT2: big.ratioVsT2 >= TARGET_RATIO,
    size: big.sizeRatio <= TARGET_SIZE,
  },
  profile: cpu,
};
writeResults('pack', out);
console.table(results);
log('top self time (pack run, --cpu-prof of the main thread):');
console.table(cpu.topSelf.map((f) => ({ fn: f.fn, selfMs: f.selfMs, selfPct: f.selfPct })));
log(
  `busy ${cpu.busyMs} ms (GC ${cpu.gcMs}), idle ${cpu.idleMs} ms of ${cpu.profiledMs} ms; ` +
    `pack ${big.packMBps} MB/s = ${big.ratioVsT1}x zstd -T1, ${big.ratioVsT2}x zstd -T2; size ${big.sizeRatio}x; ` +
    `peak RSS ${results.map((r) => `${r.rows} rows: ${r.peakRssMb} MB`).join(', ')}`,
);
