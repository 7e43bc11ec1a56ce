/**
 * Planning benchmark: how long it takes to find out that a big graph is up to date, side by side
 * with the tools our users would pick instead, and how many store requests that costs on S3.
 *
 * The same graph (languages × shards × fetch/cmds/sync/pack, plus discover per language; see
 * bench/lib/planning-fixture.ts) is generated three ways, all up to date, at each size:
 *
 *   stackflow run sync pack --dry-run        vs   make -q all   and   snakemake -n
 *
 * Every figure is a ratio against a reference measured in this script, in alternation
 * (A B C A B C …), median of the runs. Targets: stackflow ≤ 1.5× make, snakemake ≥ 50× stackflow;
 * against S3 markers (state on the loopback S3 server) ≤ 1 LIST page per 1,000 tasks and no
 * per-task GET/HEAD. When stackflow misses the make target the script profiles it (CPU profile
 * and phase by phase) and records where the time goes.
 *
 *   npx tsx bench/planning.ts [--quick] [--sizes 20000,100000] [--runs 5] [--dir DIR]
 *                             [--snakemake-large-runs 1] [--regenerate]
 *
 * `--quick`: 2,000 and 10,000 tasks, 3 runs (a smoke test). Snakemake needs minutes per run
 * above 50,000 tasks (it plans in superlinear time), so there it runs `--snakemake-large-runs`
 * times (default 1), which the results file says. Generated graphs are kept under --dir
 * (default /dev/shm/stackflow-bench-planning) and reused. Writes bench/results/planning.json.
 */
import { execFile, spawnSync } from 'node:child_process';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { openStore } from '../lib/io/stores/store-url.js';
import { startS3Server } from '../test/servers/s3/harness.js';
import type { ProfileSummary } from './lib/cpu-profile.js';
import { startRecordingProxy } from './lib/fleet-proxy.js';
import { summarizeProfile } from './lib/cpu-profile.js';
import { machineInfo } from './lib/machine.js';
import type { Shape } from './lib/planning-fixture.js';
import {
  copyStore,
  pipelineYaml,
  shapeFor,
  TARGETS,
  writeMakeTree,
  writeMirror,
  writeStackflowState,
} from './lib/planning-fixture.js';
import type { TimedCommand } from './lib/stats.js';
import { alternate, median, round, timeOnce, writeResults } from './lib/stats.js';

const REPO = resolve(import.meta.dirname, '..');
const CLI = join(REPO, 'bin/stackflow.js');
/** Bump when the generated fixture changes shape, so kept fixtures are rebuilt. */
const FIXTURE_VERSION = 3;
const TARGET = { makeRatio: 1.5, snakemakeRatio: 50, listPagesPer1000: 1 } as const;

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sizes: { type: 'string' },
    runs: { type: 'string' },
    languages: { type: 'string', default: '20' },
    dir: { type: 'string' },
    'snakemake-large-runs': { type: 'string', default: '1' },
    regenerate: { type: 'boolean', default: false },
  },
});
const quick = values.quick;
const sizes = (values.sizes ?? (quick ? '2000,10000' : '20000,100000')).split(',').map(Number);
const runs = Number(values.runs ?? (quick ? 3 : 5));
const languageCount = Number(values.languages);
const snakemakeLargeRuns = Number(values['snakemake-large-runs']);
/** Above this many tasks snakemake runs `snakemakeLargeRuns` times (minutes per run). */
const SNAKEMAKE_LARGE = 50_000;
/** Size at which S3 requests are counted: s3rver takes ~400 PUT/s to populate. */
const s3Size = Math.min(...sizes);
const baseDir = resolve(values.dir ?? defaultDir());

function defaultDir(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm/stackflow-bench-planning';
  } catch {
    return join(REPO, 'bench/data/planning');
  }
}

const log = (s: string): void => {
  process.stderr.write(`[planning] ${s}\n`);
};

/** Newest mtime (ms) of the .ts files under `dir`. */
function newestTs(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.ts')) {
      newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs);
    }
  }
  return newest;
}

const cliJs = join(REPO, 'dist/lib/cli.js');
const distStale =
  !existsSync(cliJs) ||
  Math.max(newestTs(join(REPO, 'lib')), newestTs(join(REPO, 'tasks'))) > statSync(cliJs).mtimeMs;
if (distStale) log('warning: dist/ is older than lib/ or tasks/: run `npm run build` first');

const stackflowArgs = (pipeline: string, extra: string[] = []): string[] => [
  CLI,
  'run',
  ...TARGETS,
  '-f',
  pipeline,
  '--cache-dir',
  'cache',
  '--dry-run',
  ...extra,
];

/** Counts of a `--dry-run --json` plan by action. */
function planCounts(stdout: string): Record<string, number> {
  const p = JSON.parse(stdout) as { steps: { action: string }[] };
  const out: Record<string, number> = {};
  for (const s of p.steps) out[s.action] = (out[s.action] ?? 0) + 1;
  return out;
}

/** Checks that all three tools see the graph as up to date; returns what is wrong, if anything. */
function checkUpToDate(root: string, s: Shape, env?: NodeJS.ProcessEnv, file = 'pipeline.yaml') {
  const problems: string[] = [];
  const sf = timeOnce({
    cmd: process.execPath,
    args: stackflowArgs(file, ['--json']),
    cwd: root,
    env,
  });
  if (sf.status !== 0) problems.push(`stackflow exited ${String(sf.status)}: ${sf.stderr}`);
  else {
    const c = planCounts(sf.stdout);
    if (c.skip !== s.tasks || Object.keys(c).length !== 1) {
      problems.push(`stackflow plans ${JSON.stringify(c)}, expected ${String(s.tasks)} skips`);
    }
  }
  return problems;
}

/** Generates (or reuses) the fixture of one size; returns its directory. */
async function fixture(s: Shape): Promise<string> {
  const root = join(baseDir, `tasks-${String(s.tasks)}-langs-${String(s.languages.length)}`);
  const stamp = join(root, 'fixture.json');
  const want = JSON.stringify({ version: FIXTURE_VERSION, ...s, languages: s.languages.length });
  const kept = existsSync(stamp) && readFileSync(stamp, 'utf8') === want && !values.regenerate;
  if (kept && checkUpToDate(root, s).length === 0) return root;
  if (kept) log(`kept fixture ${root} is not up to date for this stackflow: regenerating`);
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const t0 = performance.now();
  log(`generating ${String(s.tasks)} tasks in ${root}`);
  writeMirror(root, s);
  writeFileSync(join(root, 'pipeline.yaml'), pipelineYaml(s));
  await writeStackflowState(join(root, 'pipeline.yaml'), join(root, 'cache'), {
    onProgress: (d, t) => {
      log(`  ${String(d)}/${String(t)} markers`);
    },
  });
  writeMakeTree(root, s);
  log(`  generated in ${String(Math.round((performance.now() - t0) / 1000))} s`);
  const problems = checkUpToDate(root, s);
  if (problems.length > 0)
    throw new Error(`generated graph is not up to date:\n${problems.join('\n')}`);
  writeFileSync(stamp, want);
  return root;
}

/** The commands timed at one size. */
function commands(root: string): Record<string, TimedCommand> {
  return {
    stackflow: { cmd: process.execPath, args: stackflowArgs('pipeline.yaml'), cwd: root },
    make: { cmd: 'make', args: ['-q', 'all'], cwd: root },
    'make -r': { cmd: 'make', args: ['-q', '-r', 'all'], cwd: root },
    snakemake: { cmd: 'snakemake', args: ['-n'], cwd: root },
    // The fixed cost inside every stackflow figure: starting Node and loading the CLI.
    'stackflow --version': { cmd: process.execPath, args: [CLI, '--version'], cwd: root },
  };
}

function checkReferences(root: string): void {
  const mk = timeOnce({ cmd: 'make', args: ['-q', 'all'], cwd: root });
  if (mk.status !== 0) throw new Error(`make -q all exited ${String(mk.status)}: not up to date`);
  const sm = timeOnce({ cmd: 'snakemake', args: ['-n'], cwd: root });
  if (sm.status !== 0 || !/Nothing to be done/.test(sm.stdout + sm.stderr)) {
    throw new Error(
      `snakemake -n has work to do or failed:\n${(sm.stdout + sm.stderr).slice(-2000)}`,
    );
  }
}

interface SizeResult {
  tasks: number;
  languages: number;
  shardsPerLanguage: number;
  /** Median wall ms per command. */
  medianMs: Record<string, number>;
  /** Every timed run, in order, per command. */
  samplesMs: Record<string, number[]>;
  ratios: { stackflowOverMake: number; stackflowOverMakeR: number; snakemakeOverStackflow: number };
  pass: { make: boolean; snakemake: boolean };
}

function timeSize(root: string, s: Shape): SizeResult {
  const all = commands(root);
  const large = s.tasks > SNAKEMAKE_LARGE;
  const { snakemake, ...rest } = all;
  if (snakemake === undefined) throw new Error('Internal error: no snakemake command');
  // A warm-up round only where rounds are short; tmpfs data needs no page-cache warming.
  const warmup = large ? 0 : 1;
  log(
    `timing ${String(s.tasks)} tasks: ${String(runs)} runs in alternation (warm-up ${String(warmup)})`,
  );
  const onRound = (r: number, ms: Record<string, number>): void => {
    log(
      `  round ${String(r + 1)}: ${Object.entries(ms)
        .map(([k, v]) => `${k} ${String(Math.round(v))} ms`)
        .join(', ')}`,
    );
  };
  let samples: Record<string, number[]>;
  if (!large) samples = alternate(all, runs, { warmup, onRound });
  else {
    // Snakemake joins the first rounds only: one of its runs outlasts a whole round of the rest.
    samples = alternate({ ...rest, snakemake }, Math.min(runs, snakemakeLargeRuns), {
      warmup,
      onRound,
    });
    const more = alternate(rest, runs - Math.min(runs, snakemakeLargeRuns), { warmup: 0, onRound });
    for (const [k, v] of Object.entries(more)) samples[k] = [...(samples[k] ?? []), ...v];
  }
  const med = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, round(median(v))]));
  const get = (k: string): number => med[k] ?? NaN;
  const ratios = {
    stackflowOverMake: round(get('stackflow') / get('make'), 2),
    stackflowOverMakeR: round(get('stackflow') / get('make -r'), 2),
    snakemakeOverStackflow: round(get('snakemake') / get('stackflow'), 2),
  };
  return {
    tasks: s.tasks,
    languages: s.languages.length,
    shardsPerLanguage: s.shards,
    medianMs: med,
    samplesMs: Object.fromEntries(
      Object.entries(samples).map(([k, v]) => [k, v.map((x) => round(x))]),
    ),
    ratios,
    pass: {
      make: ratios.stackflowOverMake <= TARGET.makeRatio,
      snakemake: ratios.snakemakeOverStackflow >= TARGET.snakemakeRatio,
    },
  };
}

interface S3Result {
  tasks: number;
  /** Objects in the state store (markers, manifests, params archive), copied there for this. */
  stateObjects: number;
  /** Requests of one dry run, by S3 operation (identical in every run, checked). */
  requests: Record<string, number>;
  /** The same requests by operation and the first two key segments (through a recording proxy). */
  requestsByKeyArea: Record<string, number>;
  listPages: number;
  /** The fewest pages that can list one marker per task (S3 pages hold at most 1,000 keys). */
  minimumListPages: number;
  listPagesPer1000Tasks: number;
  /** GetObject + HeadObject of one dry run, and what they read. */
  reads: number;
  readsPerTask: number;
  readsNote: string;
  /** Wall ms of the dry run with the state on loopback S3 (median). */
  dryRunMs: number;
  pass: boolean;
}

const must = <T>(r: { ok: true; value: T } | { ok: false; error: { message: string } }): T => {
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
};

/** The state of one fixture on the loopback S3 server; work store and bucket stay local. */
async function countS3(root: string, s: Shape): Promise<S3Result> {
  const s3 = await startS3Server({ buckets: ['planning'] });
  try {
    // The in-process copy finds credentials where the CLI does: the SDK's default chain.
    Object.assign(process.env, s3.env);
    const settings = { planning: { endpoint: s3.endpoint } };
    const file = 'pipeline-s3.yaml';
    writeFileSync(
      join(root, file),
      pipelineYaml(s, { state: 's3://planning/state', s3: settings }),
    );
    const t0 = performance.now();
    const from = must(openStore(`file://${join(root, 'cache/state')}`));
    const to = must(openStore('s3://planning/state', { s3: settings, env: process.env }));
    const stateObjects = await copyStore(from, to, 32);
    log(
      `copied ${String(stateObjects)} state objects to S3 in ${String(Math.round((performance.now() - t0) / 1000))} s`,
    );
    const env = { ...process.env, ...s3.env };
    const problems = checkUpToDate(root, s, env, file);
    if (problems.length > 0) throw new Error(`S3 state is not up to date:\n${problems.join('\n')}`);
    const ms: number[] = [];
    const seen: string[] = [];
    let requests: Record<string, number> = {};
    for (let i = 0; i < Math.min(runs, 3); i++) {
      await s3.resetStats();
      const r = timeOnce({ cmd: process.execPath, args: stackflowArgs(file), cwd: root, env });
      if (r.status !== 0)
        throw new Error(`dry run against S3 exited ${String(r.status)}: ${r.stderr}`);
      ms.push(r.ms);
      requests = (await s3.stats()).byOp;
      seen.push(JSON.stringify(Object.entries(requests).sort()));
    }
    if (new Set(seen).size !== 1) {
      throw new Error(`request counts differ between runs: ${seen.join(' / ')}`);
    }
    const byArea = await attributeRequests(root, s, s3.endpoint, env);
    const listPages = requests.ListObjectsV2 ?? 0;
    const reads = (requests.GetObject ?? 0) + (requests.HeadObject ?? 0);
    const minimumListPages = Math.ceil(s.tasks / 1000);
    return {
      tasks: s.tasks,
      stateObjects,
      requests,
      requestsByKeyArea: byArea,
      listPages,
      minimumListPages,
      listPagesPer1000Tasks: round((1000 * listPages) / s.tasks, 3),
      reads,
      readsPerTask: round(reads / s.tasks, 4),
      readsNote:
        reads === s.languages.length
          ? `one manifest per language (${String(s.languages.length)} languages), none per task`
          : `${String(reads)} reads for ${String(s.languages.length)} languages: check what they are`,
      dryRunMs: round(median(ms)),
      // One marker per task: a listing cannot take fewer pages than ceil(tasks / 1000).
      pass: listPages <= minimumListPages && reads <= s.languages.length,
    };
  } finally {
    await s3.stop();
  }
}

/**
 * One more dry run through a recording proxy (bench/lib/fleet-proxy.ts) to say which key areas
 * the requests went to: `ListObjectsV2 state/markers` etc. Untimed: the proxy adds a hop.
 */
async function attributeRequests(
  root: string,
  s: Shape,
  endpoint: string,
  env: NodeJS.ProcessEnv,
): Promise<Record<string, number>> {
  const proxy = await startRecordingProxy(endpoint, 1);
  try {
    const file = 'pipeline-s3-proxied.yaml';
    const via = { planning: { endpoint: proxy.endpoints[0] ?? endpoint } };
    writeFileSync(join(root, file), pipelineYaml(s, { state: 's3://planning/state', s3: via }));
    // Not spawnSync: the proxy lives in this process and must keep serving.
    await promisify(execFile)(process.execPath, stackflowArgs(file), {
      cwd: root,
      env,
      maxBuffer: 1 << 26,
    });
    const out: Record<string, number> = {};
    for (const r of proxy.requests) out[`${r.op} ${r.area}`] = (out[`${r.op} ${r.area}`] ?? 0) + 1;
    return out;
  } finally {
    await proxy.close();
  }
}

/** Where stackflow's time goes at one size: CPU profile, phases, and the startup's imports. */
function profileStackflow(root: string) {
  const dir = join(root, 'profile');
  rmSync(dir, { recursive: true, force: true });
  const r = timeOnce({
    cmd: process.execPath,
    args: ['--cpu-prof', `--cpu-prof-dir=${dir}`, ...stackflowArgs('pipeline.yaml')],
    cwd: root,
  });
  if (r.status !== 0) throw new Error(`profiled dry run exited ${String(r.status)}: ${r.stderr}`);
  const prof = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (prof === undefined) throw new Error(`no .cpuprofile in ${dir}`);
  const cpu: ProfileSummary = summarizeProfile(join(dir, prof), REPO, { top: 15 });
  const ph = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      'bench/lib/planning-phases.ts',
      join(root, 'pipeline.yaml'),
      join(root, 'cache'),
    ],
    { cwd: REPO, encoding: 'utf8', maxBuffer: 1 << 26 },
  );
  if (ph.status !== 0) throw new Error(`planning-phases failed: ${ph.stderr}`);
  const phases = JSON.parse(ph.stdout) as {
    ms: Record<string, number>;
    counts: Record<string, number>;
  };
  // What loading the CLI costs, by dependency: each imported alone into a fresh Node (median of 3).
  const importMs = (spec: string): number => {
    const code = `const t = performance.now(); await import(${JSON.stringify(spec)}); process.stdout.write(String(performance.now() - t));`;
    const xs = [0, 1, 2].map(() => {
      const x = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
        cwd: REPO,
        encoding: 'utf8',
      });
      if (x.status !== 0) throw new Error(`import ${spec}: ${x.stderr}`);
      return Number(x.stdout);
    });
    return round(median(xs));
  };
  const imports = Object.fromEntries(
    [
      './dist/lib/cli.js',
      'zx',
      '@duckdb/node-api',
      '@aws-sdk/client-s3',
      '@aws-sdk/lib-storage',
      '@mongodb-js/zstd',
      'ajv',
      '@huggingface/hub',
      'commander',
      'yaml',
    ].map((m) => [m, importMs(m)]),
  );
  return { profileFile: join(dir, prof), cpu, phases, importMs: imports };
}

// ---------------------------------------------------------------------------------------------

const startedAt = Date.now();
const loadBefore = loadavg().map((x) => round(x, 2));
const machine = machineInfo({
  make: ['make', '--version'],
  snakemake: ['snakemake', '--version'],
  python3: ['python3', '--version'],
});
const fsType = spawnSync(
  'stat',
  ['-f', '-c', '%T', baseDir.startsWith('/dev/shm') ? '/dev/shm' : REPO],
  {
    encoding: 'utf8',
  },
).stdout.trim();
mkdirSync(baseDir, { recursive: true });

const results: SizeResult[] = [];
const roots = new Map<number, string>();
for (const n of sizes) {
  const s = shapeFor(n, languageCount);
  const root = await fixture(s);
  roots.set(n, root);
  checkReferences(root);
  results.push(timeSize(root, s));
}

const s3Shape = shapeFor(s3Size, languageCount);
log(`counting S3 requests at ${String(s3Shape.tasks)} tasks (state on the loopback S3 server)`);
const s3 = await countS3(roots.get(s3Size) ?? (await fixture(s3Shape)), s3Shape);

const missed = results.filter((r) => !r.pass.make);
const largest = results[results.length - 1];
let profile: ReturnType<typeof profileStackflow> | undefined;
if (missed.length > 0 && largest !== undefined) {
  log(
    `stackflow misses ≤ ${String(TARGET.makeRatio)}× make: profiling at ${String(largest.tasks)} tasks`,
  );
  profile = profileStackflow(roots.get(sizes[sizes.length - 1] ?? 0) ?? '');
}

const out = {
  name: 'planning',
  date: new Date().toISOString(),
  machine: {
    ...machine,
    loadAverageBefore: loadBefore,
    loadAverageAfter: loadavg().map((x) => round(x, 2)),
    dataFilesystem: fsType,
  },
  config: {
    quick,
    runs,
    languages: languageCount,
    targets: [...TARGETS],
    dataDir: baseDir,
    commands: {
      stackflow: `node bin/stackflow.js run ${TARGETS.join(' ')} -f pipeline.yaml --cache-dir cache --dry-run`,
      make: 'make -q all (one explicit rule per task, .SUFFIXES cleared, built-in rules on)',
      'make -r': 'make -q -r all (built-in implicit rules off: make at its fastest)',
      snakemake: 'snakemake -n (one rule per stage, wildcards)',
    },
    snakemakeRunsAbove20000Tasks: snakemakeLargeRuns,
    distStale,
    method:
      'wall time of the whole process, commands in alternation, median; a warm-up round at sizes ≤ 50,000 tasks',
  },
  target: {
    stackflowOverMake: `≤ ${String(TARGET.makeRatio)}`,
    snakemakeOverStackflow: `≥ ${String(TARGET.snakemakeRatio)}`,
    s3: '≤ 1 LIST page per 1,000 tasks (pages ≤ ceil(tasks/1000)), no per-task GET/HEAD',
  },
  results,
  s3,
  ...(profile !== undefined ? { profile } : {}),
  pass: results.every((r) => r.pass.make && r.pass.snakemake) && s3.pass,
  benchSeconds: Math.round((Date.now() - startedAt) / 1000),
};
writeResults('planning', out);

const ms = (r: SizeResult, k: string): string =>
  r.samplesMs[k] === undefined
    ? '-'
    : `${String(r.medianMs[k])} (n=${String(r.samplesMs[k].length)})`;
console.table(
  results.map((r) => ({
    tasks: r.tasks,
    'stackflow ms': ms(r, 'stackflow'),
    'make ms': ms(r, 'make'),
    'make -r ms': ms(r, 'make -r'),
    'snakemake ms': ms(r, 'snakemake'),
    'startup ms': ms(r, 'stackflow --version'),
    'stackflow/make': `${String(r.ratios.stackflowOverMake)} (≤ ${String(TARGET.makeRatio)})`,
    'stackflow/make -r': r.ratios.stackflowOverMakeR,
    'snakemake/stackflow': `${String(r.ratios.snakemakeOverStackflow)} (≥ ${String(TARGET.snakemakeRatio)})`,
  })),
);
console.table([
  {
    tasks: s3.tasks,
    'LIST pages': `${String(s3.listPages)} (min ${String(s3.minimumListPages)})`,
    'pages / 1,000 tasks': s3.listPagesPer1000Tasks,
    'GET+HEAD': s3.reads,
    'reads / task': s3.readsPerTask,
    'dry run ms (S3 state)': s3.dryRunMs,
  },
]);
console.table(s3.requestsByKeyArea);
if (profile !== undefined) {
  console.log(`where stackflow's time goes at ${String(largest?.tasks)} tasks (phases, ms):`);
  console.table(profile.phases.ms);
  console.log('CPU profile, self time charged to our own code (syscalls included):');
  console.table(profile.cpu.byOwnCode.slice(0, 12));
  console.log('import cost of the CLI and its heavy dependencies (ms, each alone):');
  console.table(profile.importMs);
}
console.log(
  `pass=${String(out.pass)}; bench/results/planning.json (${String(out.benchSeconds)} s)`,
);
// A missed target is a figure (pass: false in the results), not a failure: the up-to-date checks
// above throw when the three tools disagree about the graph.
