/**
 * Many workers on one graph: W `stackflow run --worker` processes (own cache dirs, as separate
 * hosts) share state, work store and bucket on the loopback S3 test server and finish a graph of
 * `discover` (one task per language) plus T `shell` tasks that each sleep ~50 ms and write one
 * output. Measures duplicate executions, makespan, the workers' own CPU, and store requests per
 * task (server stats by operation).
 *
 * Reference, in alternation with each fleet run (F R F R ...): a bare pool of W slots running the
 * same T commands through `bash -eo pipefail -c`, which is "total work / workers" as this machine
 * delivers it. Figures are medians of the per-round ratios. One extra, untimed run goes through a
 * recording proxy (bench/lib/fleet-proxy.ts) to say what every request was for.
 *
 *   npx tsx bench/fleet.ts [--quick] [--workers 8] [--languages 10] [--parquets 100]
 *                          [--sleep-ms 50] [--jobs 1] [--rounds 5] [--skip-attribution]
 *
 * Writes bench/results/fleet.json. Targets: 0 duplicates, makespan ≤ 1.15× ideal,
 * ≤ 4 store requests per task. Only a correctness failure (duplicates, a failed worker) sets a
 * non-zero exit code; a missed target is reported as `pass: false`.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { startS3Server } from '../test/servers/s3/harness.js';
import type { S3TestServer } from '../test/servers/s3/harness.js';
import { attribute } from './lib/fleet-attribution.js';
import type { AttributionRow, TaskWindow } from './lib/fleet-attribution.js';
import { startRecordingProxy } from './lib/fleet-proxy.js';
import { runBarePool, runFleet } from './lib/fleet-run.js';
import { cpuMeter, linkMirror, shellPipelineYaml } from './lib/fleet-setup.js';
import type { FleetRunOptions, WorkerResult } from './lib/fleet-run.js';
import type { CpuProfile, ProfileSummary } from './lib/fetch-profile.js';
import { summarizeProfile } from './lib/fetch-profile.js';
import { median, writeResults } from './lib/stats.js';

const STAGE = 'sleep';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    workers: { type: 'string' },
    languages: { type: 'string' },
    parquets: { type: 'string' },
    'sleep-ms': { type: 'string', default: '50' },
    jobs: { type: 'string', default: '1' },
    rounds: { type: 'string' },
    'skip-attribution': { type: 'boolean', default: false },
  },
});
const quick = values.quick;
const W = Number(values.workers ?? 8);
const languages = Number(values.languages ?? (quick ? 4 : 10));
const parquets = Number(values.parquets ?? (quick ? 50 : 100));
const sleepMs = Number(values['sleep-ms']);
const jobs = Number(values.jobs);
const rounds = Number(values.rounds ?? (quick ? 3 : 5));
const T = languages * parquets;
const command = `sleep ${String(sleepMs / 1000)}; echo x > {outputs}`;

const r2 = (x: number) => Number(x.toFixed(2));
const r3 = (x: number) => Number(x.toFixed(3));

/** An HF-shaped mirror: `languages` folders of `parquets` links to one small sample parquet. */
function makeMirror(root: string): void {
  const pad = (n: number, w: number) => String(n).padStart(w, '0');
  linkMirror(
    root,
    Array.from({ length: languages * parquets }, (_, i) => ({
      language: `L${pad(Math.floor(i / parquets), 3)}`,
      stem: `train-${pad(i % parquets, 5)}-of-${pad(parquets, 5)}`,
    })),
  );
}

function pipelineYaml(mirror: string, bucket: string, endpoint: string | undefined): string {
  return shellPipelineYaml({
    repo: 'bench/fleet',
    mirror,
    bucket,
    ...(endpoint !== undefined ? { endpoint } : {}),
    stage: STAGE,
    command,
  });
}

interface FleetMeasure {
  makespanS: number;
  /** First `plan` event of any worker: process start, store probe, first snapshot. */
  firstPlanS: number;
  /** Last discover task done. */
  discoverDoneS: number;
  /** Last shell task done. */
  lastTaskDoneS: number;
  /** Last worker exit after the last task: final plan rounds and exit. */
  tailS: number;
  /** Extra `task-started` events beyond one per task. */
  duplicates: number;
  shellTasksRun: number;
  discoverTasksRun: number;
  workersFailed: number;
  /** Sum of the shell tasks' own `ms` (claim and release excluded). */
  shellTaskMsSum: number;
  shellTaskMsMedian: number;
  discoverTaskMsSum: number;
  tasksPerWorker: number[];
  planRoundsPerWorker: number[];
  /**
   * Where the workers' wall time went, summed over workers: inside tasks (task-started to
   * task-succeeded), before each `plan` event (snapshot + planning, since the worker's previous
   * event), and the rest (claims, releases, waiting for a free task).
   */
  timeShare: { inTasks: number; planning: number; other: number };
  /** The workers' own CPU (node: startup, planning, claims, zx), all workers together. */
  workerCpuS: number;
  workerPeakRssMb: number;
  /** CPU of the S3 test server process during the run. */
  serverCpuS: number;
  /** Busy CPU of the whole machine during the run (everyone's, other users included), s. */
  machineBusyS: number;
  /** machineBusyS over (cores × makespan): how saturated the machine was. */
  machineBusyShare: number;
  requests: number;
  byOp: Record<string, number>;
  requestsPerShellTask: number;
  markersWritten: number;
}

async function measureFleet(
  s3: S3TestServer,
  runDir: string,
  bucket: string,
  extra: Pick<FleetRunOptions, 'envOf' | 'nodeArgsOf'> = {},
): Promise<{ m: FleetMeasure; workers: WorkerResult[] }> {
  await s3.resetStats();
  const cpu = cpuMeter();
  const { startedAt, workers } = await runFleet({
    dir: runDir,
    workers: W,
    jobs,
    env: s3.env,
    ...extra,
    timeoutMs: 600_000,
  });
  const stats = await s3.stats();
  const spent = cpu();
  const all = workers.flatMap((w) => w.events.map((e) => ({ ...e, worker: w.index })));
  const started = all.filter((e) => e.type === 'task-started');
  const done = all.filter((e) => e.type === 'task-succeeded');
  const starts = new Map<string, number>();
  for (const e of started) starts.set(e.task ?? '', (starts.get(e.task ?? '') ?? 0) + 1);
  const shellDone = done.filter((e) => e.stage === STAGE);
  const discoverDone = done.filter((e) => e.stage === 'discover');
  const rel = (t: number) => (t - startedAt) / 1000;
  const lastExit = Math.max(...workers.map((w) => w.exitedAt));
  const lastTask = Math.max(...shellDone.map((e) => e.at));
  const shellMs = shellDone.map((e) => e.ms ?? 0);
  const markers = await countKeys(s3, bucket, 'state/markers/');
  const requests = stats.requests;
  return {
    workers,
    m: {
      makespanS: r2(rel(lastExit)),
      firstPlanS: r2(rel(Math.min(...all.filter((e) => e.type === 'plan').map((e) => e.at)))),
      discoverDoneS: r2(rel(Math.max(...discoverDone.map((e) => e.at)))),
      lastTaskDoneS: r2(rel(lastTask)),
      tailS: r2((lastExit - lastTask) / 1000),
      duplicates: [...starts.values()].reduce((a, n) => a + n - 1, 0),
      shellTasksRun: new Set(started.filter((e) => e.stage === STAGE).map((e) => e.task)).size,
      discoverTasksRun: new Set(started.filter((e) => e.stage === 'discover').map((e) => e.task))
        .size,
      workersFailed: workers.filter((w) => w.code !== 0).length,
      shellTaskMsSum: shellMs.reduce((a, b) => a + b, 0),
      shellTaskMsMedian: shellMs.length === 0 ? NaN : median(shellMs),
      discoverTaskMsSum: discoverDone.reduce((a, e) => a + (e.ms ?? 0), 0),
      tasksPerWorker: workers.map(
        (w) => w.events.filter((e) => e.type === 'task-succeeded' && e.stage === STAGE).length,
      ),
      planRoundsPerWorker: workers.map((w) => w.events.filter((e) => e.type === 'plan').length),
      timeShare: timeShare(workers, startedAt),
      workerCpuS: r2(
        workers.reduce((a, w) => a + (w.cpu ? w.cpu.userMs + w.cpu.systemMs : NaN), 0) / 1000,
      ),
      workerPeakRssMb: Math.round(Math.max(...workers.map((w) => w.cpu?.maxRssMb ?? 0))),
      serverCpuS: r2(spent.serverCpuS),
      machineBusyS: r2(spent.machineBusyS),
      machineBusyShare: r2(spent.machineBusyShare),
      requests,
      byOp: stats.byOp,
      requestsPerShellTask: r2(requests / T),
      markersWritten: markers,
    },
  };
}

async function countKeys(s3: S3TestServer, bucket: string, prefix: string): Promise<number> {
  const c = s3.client();
  try {
    let n = 0;
    let token: string | undefined;
    do {
      const page = await c.send(
        new ListObjectsV2Command({
          Bucket: bucket,
          Prefix: prefix,
          ...(token !== undefined ? { ContinuationToken: token } : {}),
        }),
      );
      n += page.KeyCount ?? 0;
      token = page.NextContinuationToken;
    } while (token !== undefined);
    return n;
  } finally {
    c.destroy();
  }
}

function timeShare(workers: readonly WorkerResult[], startedAt: number): FleetMeasure['timeShare'] {
  let life = 0;
  let planning = 0;
  for (const w of workers) {
    life += w.exitedAt - startedAt;
    let prev = startedAt;
    for (const e of w.events) {
      if (e.type === 'plan') planning += e.at - prev;
      prev = e.at;
    }
  }
  const inTasks = taskWindows(workers).reduce((a, t) => a + t.to - t.from, 0);
  return {
    inTasks: r3(inTasks / life),
    planning: r3(planning / life),
    other: r3(1 - (inTasks + planning) / life),
  };
}

/** Each worker's task windows, task-started to task-succeeded/failed. */
function taskWindows(workers: readonly WorkerResult[]): TaskWindow[] {
  const out: TaskWindow[] = [];
  for (const w of workers) {
    const open = new Map<string, number>();
    for (const e of w.events) {
      if (e.task === undefined) continue;
      if (e.type === 'task-started') open.set(e.task, e.at);
      const from = open.get(e.task);
      if ((e.type === 'task-succeeded' || e.type === 'task-failed') && from !== undefined) {
        out.push({ worker: w.index, stage: e.stage ?? '?', from, to: e.at });
        open.delete(e.task);
      }
    }
  }
  return out;
}

/**
 * A profile's non-idle self time, by area, turned into CPU: on a saturated machine a sample's
 * wall time includes waiting for a core, so only the shares are trusted, scaled to the CPU the
 * process really used (its rusage).
 */
function cpuByArea(prof: ProfileSummary, cpuS: number, tasks: number) {
  const busy = Object.entries(prof.byArea).filter(([area]) => area !== 'idle');
  const total = busy.reduce((a, [, ms]) => a + ms, 0);
  return {
    cpuS: r2(cpuS),
    tasks,
    areas: busy.map(([area, ms]) => ({
      area,
      share: r3(ms / total),
      cpuMs: Math.round((ms / total) * cpuS * 1000),
      cpuMsPerTask: r2(((ms / total) * cpuS * 1000) / Math.max(1, tasks)),
    })),
    top: prof.top.filter((f) => f.area !== 'idle').map((f) => ({ ...f, share: r3(f.ms / total) })),
  };
}

function checkRun(m: FleetMeasure, workers: WorkerResult[], label: string): void {
  if (m.workersFailed > 0 || m.shellTasksRun !== T || m.discoverTasksRun !== languages) {
    const bad = workers.find((w) => w.code !== 0);
    console.error(
      `${label}: ${String(m.workersFailed)} worker(s) failed, ${String(m.shellTasksRun)}/${String(T)} shell tasks ran${bad ? `; w${String(bad.index)} stderr:\n${bad.stderrTail}` : ''}`,
    );
  }
}

const root = mkdtempSync(join(tmpdir(), 'stackflow-fleet-'));
const load0 = loadavg();
const s3 = await startS3Server();
const fleetRuns: (FleetMeasure & { round: number; bareS: number; ratio: number })[] = [];
let attribution:
  | {
      run: FleetMeasure;
      /** CPU of one worker that starts on the finished graph: startup, probe, one plan. */
      idleWorkerCpuS: number;
      worker0Profile?: ReturnType<typeof cpuByArea>;
      rows: AttributionRow[];
      proxied: number;
      serverCounted: number;
    }
  | undefined;
try {
  const mirror = join(root, 'mirror');
  makeMirror(mirror);
  console.log(
    `fleet: ${String(W)} workers × -j ${String(jobs)}, ${String(languages)} discover + ${String(T)} shell tasks of ${String(sleepMs)} ms, ${String(rounds)} rounds (fleet, bare pool) alternating`,
  );
  for (let round = 1; round <= rounds; round++) {
    const bucket = `fleet-${String(round)}`;
    await s3.createBucket(bucket);
    const runDir = join(root, `run-${String(round)}`);
    mkdirSync(runDir, { recursive: true });
    writeFileSync(join(runDir, 'pipeline.yaml'), pipelineYaml(mirror, bucket, s3.endpoint));
    const { m, workers } = await measureFleet(s3, runDir, bucket);
    checkRun(m, workers, `round ${String(round)}`);
    rmSync(runDir, { recursive: true, force: true });

    const bareDir = join(root, `bare-${String(round)}`);
    mkdirSync(bareDir, { recursive: true });
    const cmds = Array.from({ length: T }, (_, i) =>
      command.replace('{outputs}', `out-${String(i)}`),
    );
    const bareS = (await runBarePool(cmds, W * jobs, bareDir)) / 1000;
    rmSync(bareDir, { recursive: true, force: true });
    fleetRuns.push({ round, ...m, bareS: r2(bareS), ratio: r3(m.makespanS / bareS) });
    console.log(
      `  round ${String(round)}: fleet ${m.makespanS.toFixed(2)} s, bare pool ${bareS.toFixed(2)} s, duplicates ${String(m.duplicates)}, ${m.requestsPerShellTask.toFixed(2)} requests/task`,
    );
  }

  if (!values['skip-attribution']) {
    // Untimed: each worker talks to its own listener of the recording proxy.
    const proxy = await startRecordingProxy(s3.endpoint, W);
    try {
      const bucket = 'fleet-attribution';
      await s3.createBucket(bucket);
      const runDir = join(root, 'run-attribution');
      mkdirSync(runDir, { recursive: true });
      writeFileSync(join(runDir, 'pipeline.yaml'), pipelineYaml(mirror, bucket, undefined));
      // Worker 0 is also CPU-profiled (whole process: startup, planning, claims, tasks).
      const profDir = join(runDir, 'prof');
      const { m, workers } = await measureFleet(s3, runDir, bucket, {
        envOf: (i) => ({ AWS_ENDPOINT_URL_S3: proxy.endpoints[i] ?? '' }),
        nodeArgsOf: (i) => (i === 0 ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []),
      });
      const profFile = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
      const w0 = workers[0];
      const profile =
        profFile === undefined || w0?.cpu === undefined
          ? undefined
          : cpuByArea(
              summarizeProfile(
                JSON.parse(readFileSync(join(profDir, profFile), 'utf8')) as CpuProfile,
                20,
              ),
              (w0.cpu.userMs + w0.cpu.systemMs) / 1000,
              w0.events.filter((e) => e.type === 'task-succeeded').length,
            );
      checkRun(m, workers, 'attribution run');
      const recorded = [...proxy.requests];
      // One more worker on the finished graph, fresh cache dir: what a worker costs before and
      // around its tasks (node startup, store probe, one full plan round), with nothing to run.
      const idle = await runFleet({
        dir: runDir,
        workers: 1,
        jobs,
        env: s3.env,
        envOf: () => ({ AWS_ENDPOINT_URL_S3: proxy.endpoints[0] ?? '' }),
        cacheName: () => 'cache-idle',
        timeoutMs: 120_000,
      });
      const idleWorker = idle.workers[0];
      const idleWorkerCpuS =
        idleWorker?.cpu === undefined
          ? NaN
          : r2((idleWorker.cpu.userMs + idleWorker.cpu.systemMs) / 1000);
      const perStage = new Map([
        [STAGE, m.shellTasksRun],
        ['discover', m.discoverTasksRun],
      ]);
      attribution = {
        run: m,
        idleWorkerCpuS,
        ...(profile ? { worker0Profile: profile } : {}),
        rows: attribute(recorded, perStage, STAGE, taskWindows(workers)),
        proxied: recorded.length,
        serverCounted: m.requests,
      };
    } finally {
      await proxy.close();
    }
  }
} finally {
  await s3.stop();
  rmSync(root, { recursive: true, force: true });
}

type NumberField = {
  [K in keyof FleetMeasure]: FleetMeasure[K] extends number ? K : never;
}[keyof FleetMeasure];
const med = (k: NumberField) => median(fleetRuns.map((r) => r[k]));
const nominalIdealS = (T * sleepMs) / 1000 / (W * jobs);
const summary = {
  makespanS: r2(med('makespanS')),
  barePoolS: r2(median(fleetRuns.map((r) => r.bareS))),
  /** Median of per-round fleet / bare-pool ratios: the headline figure. */
  makespanVsBarePool: r3(median(fleetRuns.map((r) => r.ratio))),
  /** Against T × sleep / (W × jobs), what the issue calls ideal with nothing but the sleeps. */
  makespanVsNominal: r3(med('makespanS') / nominalIdealS),
  /** Against the shell tasks' own durations summed over W × jobs slots. */
  makespanVsTaskMs: r3(
    median(fleetRuns.map((r) => r.makespanS / (r.shellTaskMsSum / 1000 / (W * jobs)))),
  ),
  nominalIdealS: r2(nominalIdealS),
  shellTaskMsMedian: med('shellTaskMsMedian'),
  firstPlanS: r2(med('firstPlanS')),
  discoverDoneS: r2(med('discoverDoneS')),
  lastTaskDoneS: r2(med('lastTaskDoneS')),
  tailS: r2(med('tailS')),
  duplicatesTotal: fleetRuns.reduce((a, r) => a + r.duplicates, 0),
  workerCpuS: r2(med('workerCpuS')),
  workerCpuMsPerTask: r2((med('workerCpuS') * 1000) / T),
  serverCpuS: r2(med('serverCpuS')),
  serverCpuMsPerTask: r2((med('serverCpuS') * 1000) / T),
  machineBusyShare: r2(med('machineBusyShare')),
  requestsPerShellTask: r2(med('requestsPerShellTask')),
  byOpPerShellTask: Object.fromEntries(
    Object.keys(fleetRuns[0]?.byOp ?? {}).map((op) => [
      op,
      r3(median(fleetRuns.map((r) => (r.byOp[op] ?? 0) / T))),
    ]),
  ),
};
const correct = fleetRuns.every(
  (r) =>
    r.duplicates === 0 &&
    r.workersFailed === 0 &&
    r.shellTasksRun === T &&
    r.markersWritten === T + languages,
);
const out = {
  name: 'fleet',
  date: new Date().toISOString(),
  machine: {
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? '?',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadavgBefore: load0.map(r2),
    loadavgAfter: loadavg().map(r2),
  },
  setup: {
    workers: W,
    jobsPerWorker: jobs,
    languages,
    shellTasks: T,
    discoverTasks: languages,
    sleepMs,
    command,
    stores: 'state, work and bucket on the loopback S3 test server (s3rver child, /dev/shm)',
    leaseTtlS: 60,
    pollMs: 500,
    rounds,
    quick,
  },
  target: '0 duplicates, makespan ≤ 1.15× ideal, ≤ 4 store requests per task',
  summary,
  pass: {
    duplicates: summary.duplicatesTotal === 0 && correct,
    makespan: summary.makespanVsBarePool <= 1.15,
    requests: summary.requestsPerShellTask <= 4,
  },
  runs: fleetRuns,
  attribution,
};
writeResults('fleet', out);

console.table(
  fleetRuns.map((r) => ({
    round: r.round,
    'fleet s': r.makespanS,
    'bare pool s': r.bareS,
    ratio: r.ratio,
    'first plan s': r.firstPlanS,
    'discover done s': r.discoverDoneS,
    'tail s': r.tailS,
    'in tasks': r.timeShare.inTasks,
    planning: r.timeShare.planning,
    dup: r.duplicates,
    'task ms p50': r.shellTaskMsMedian,
    'worker CPU s': r.workerCpuS,
    'server CPU s': r.serverCpuS,
    'machine busy': r.machineBusyShare,
    'req/task': r.requestsPerShellTask,
  })),
);
console.table(
  Object.entries(summary.byOpPerShellTask).map(([op, perTask]) => ({
    op,
    'per shell task': perTask,
  })),
);
if (attribution !== undefined) {
  console.log(
    `attribution run (through the recording proxy, untimed): makespan ${String(attribution.run.makespanS)} s, ${String(attribution.proxied)} requests seen, server counted ${String(attribution.serverCounted)}; a worker started on the finished graph (startup, probe, one plan) used ${String(attribution.idleWorkerCpuS)} s CPU`,
  );
  console.table(
    attribution.rows.map((r) => ({
      group: r.group,
      stage: r.stage,
      what: r.what,
      requests: r.requests,
      'per task': r.perTask,
      'p50 ms': r.p50Ms,
    })),
  );
}
if (attribution?.worker0Profile !== undefined) {
  const prof = attribution.worker0Profile;
  console.log(
    `worker 0 CPU profile (attribution run, whole process): ${String(prof.cpuS)} s CPU for ${String(prof.tasks)} tasks, by area`,
  );
  console.table(prof.areas.slice(0, 14));
  console.table(prof.top.slice(0, 12).map((f) => ({ fn: f.fn, area: f.area, share: f.share })));
}
console.log(
  `makespan ${summary.makespanS} s = ${summary.makespanVsBarePool}× bare pool (${summary.barePoolS} s), ${summary.makespanVsNominal}× nominal ideal (${summary.nominalIdealS} s); duplicates ${summary.duplicatesTotal}; ${summary.requestsPerShellTask} requests/task; worker CPU ${summary.workerCpuMsPerTask} ms/task`,
);
console.log(`pass: ${JSON.stringify(out.pass)}; wrote bench/results/fleet.json`);
if (!correct) process.exitCode = 1;
