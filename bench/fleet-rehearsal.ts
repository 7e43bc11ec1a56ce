/**
 * A fleet rehearsal (issue 10 §6): H simulated hosts — `stackflow run --worker -j J` processes,
 * each its own cache dir — on the loopback S3 state, over the real task list: the 917 parquets of
 * bigcode/the-stack-v2 in their real language folders (test/fixtures/the-stack-v2-parquets.txt;
 * 658 discover tasks, 917 pack-like tasks). A task's duration is what `stackflow estimate`'s model
 * says a pack of that parquet takes on a 32-core host (synthetic sizes, test/helpers/stack-v2.ts),
 * time-compressed so the ideal fits `--target-s`; the task body only sleeps that long and writes
 * one output (a `shell` stage). Lease TTL and poll are compressed too (within floors the machine
 * can take).
 *
 * Every request goes through a recording proxy (bench/lib/fleet-proxy.ts), so each is known by
 * area: coordination (state: markers, leases, part records, listings, probes) or outputs (work).
 *
 * Measures: makespan of the pack phase (first pack task started → last done) against the ideal
 * max(total work / slots, longest task); the whole run; duplicates (tasks started more than once;
 * must be 0); coordination requests per task and as a share of all S3 requests including the
 * content GETs the model implies (one per row); lease conflicts (create-only puts answered 412).
 * Targets: pack phase ≤ 1.1× ideal; coordination < 1% of requests.
 *
 *   npx tsx bench/fleet-rehearsal.ts [--quick] [--hosts 40] [--jobs 4] [--target-s 240]
 *
 * Writes bench/results/fleet-rehearsal.json. A correctness failure (duplicates, a failed worker,
 * tasks not run) exits 1; a missed target is `pass: false`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { startS3Server } from '../test/servers/s3/harness.js';
import type { S3TestServer } from '../test/servers/s3/harness.js';
import { syntheticStackV2 } from '../test/helpers/stack-v2.js';
import { DEFAULT_CALIBRATION } from '../lib/estimate/calibration.js';
import { DEFAULT_FLEET, DEFAULT_PRICES, estimate } from '../lib/estimate/model.js';
import { idealMakespan } from '../lib/estimate/schedule.js';
import { startRecordingProxy } from './lib/fleet-proxy.js';
import type { ProxiedRequest } from './lib/fleet-proxy.js';
import { runFleet } from './lib/fleet-run.js';
import { claimTimes, slotTime } from './lib/fleet-timeline.js';
import { cpuMeter, duplicatesOf, linkMirror, shellPipelineYaml } from './lib/fleet-setup.js';
import { machineInfo } from './lib/machine.js';
import { median, writeResults } from './lib/stats.js';

const REPO = resolve(import.meta.dirname, '..');
const STAGE = 'pack';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    hosts: { type: 'string' },
    jobs: { type: 'string', default: '4' },
    'target-s': { type: 'string' },
    /** Every worker event as JSON lines, for a closer look (not part of the results). */
    'events-out': { type: 'string' },
    /** Every proxied request as JSON lines (worker, op, area, key, status, start, end). */
    'requests-out': { type: 'string' },
  },
});
const quick = values.quick;
const H = Number(values.hosts ?? (quick ? 4 : 16));
const J = Number(values.jobs);
const targetS = Number(values['target-s'] ?? (quick ? 240 : 480));
const slots = H * J;

const r2 = (x: number) => Number(x.toFixed(2));
const r4 = (x: number) => Number(x.toFixed(4));

// The model: each parquet's pack time on a 32-core host (6 packs × 5.3 cores each), from the
// estimator with the default calibration (what `stackflow estimate` prints).
const list = syntheticStackV2();
const planned = list.map((p) => ({
  id: `pack:${p.language}/${p.stem}`,
  bytes: p.bytes,
  rows: Math.round(p.bytes / 312),
  rowsFrom: 'size' as const,
}));
const model = estimate({
  parquets: planned,
  tasksInPlan: planned.length + new Set(list.map((p) => p.language)).size,
  calibration: DEFAULT_CALIBRATION,
  fleet: { ...DEFAULT_FLEET, hosts: H, storeGetsPerSecond: 1e12 },
  prices: DEFAULT_PRICES,
});
const realS = planned.map((p) => p.rows / model.makespan.packRowsPerSecond);
const realIdeal = idealMakespan(realS, slots);
const factor = realIdeal / targetS;
const durS = realS.map((d) => d / factor);
const ideal = idealMakespan(durS, slots);
// TTL and poll compressed like the tasks, within floors a shared 2-core machine can take: with a
// short TTL a starved worker misses heartbeats and fences itself (measured: TTL 5 s under full
// load restarted 124 tasks), and a poll under ~250 ms is a busy loop of plans.
const ttlS = Math.max(30, Math.ceil(DEFAULT_FLEET.leaseTtlS / factor));
const pollMs = Math.max(250, Math.round(DEFAULT_FLEET.pollMs / factor));

/**
 * The mirror's parquets are links to one small sample file, so discovery records its size for
 * all 917. A real fleet's manifests say what each parquet weighs, and the scheduler starts the
 * biggest first: write the synthetic sizes into the manifests, as discovery of the real files
 * would have (sha256s stay: nothing in the rehearsal reads the files).
 */
async function giveManifestsRealSizes(s3: S3TestServer, b: string): Promise<void> {
  const bytes = new Map(list.map((p) => [`${p.language}/${p.stem}`, p.bytes]));
  const c = s3.client();
  try {
    let token: string | undefined;
    let n = 0;
    do {
      const page = await c.send(
        new ListObjectsV2Command({
          Bucket: b,
          Prefix: 'state/manifests/',
          ...(token !== undefined ? { ContinuationToken: token } : {}),
        }),
      );
      for (const o of page.Contents ?? []) {
        const got = await c.send(new GetObjectCommand({ Bucket: b, Key: o.Key }));
        const m = JSON.parse((await got.Body?.transformToString()) ?? '') as {
          language: string;
          files: { stem: string; size: number }[];
        };
        for (const f of m.files) f.size = bytes.get(`${m.language}/${f.stem}`) ?? f.size;
        await c.send(
          new PutObjectCommand({ Bucket: b, Key: o.Key, Body: JSON.stringify(m, null, 2) + '\n' }),
        );
        n++;
      }
      token = page.NextContinuationToken;
    } while (token !== undefined);
    if (n !== new Set(list.map((p) => p.language)).size) {
      throw new Error(`expected a manifest per language, found ${String(n)}`);
    }
  } finally {
    c.destroy();
  }
}

const root = mkdtempSync(join(tmpdir(), 'stackflow-rehearsal-'));
const mirror = join(root, 'hf');
const durDir = join(root, 'dur');
linkMirror(mirror, list);
for (const [i, p] of list.entries()) {
  mkdirSync(join(durDir, p.language), { recursive: true });
  writeFileSync(join(durDir, p.language, p.stem), `${(durS[i] ?? 0).toFixed(3)}\n`);
}
const bucket = 'rehearsal';
writeFileSync(
  join(root, 'pipeline.yaml'),
  shellPipelineYaml({
    repo: 'bench/rehearsal',
    mirror,
    bucket,
    stage: STAGE,
    // The language and stem reach bash only through the environment, never as code. The
    // duration is read by bash itself (`read`, no `cat` process): the body's only processes
    // are bash and sleep.
    env: { DUR: '{language}/{stem}' },
    command: `read -r d < "${durDir}/$DUR" && sleep "$d" && echo x > {outputs}`,
  }),
);

console.error(
  `rehearsal: ${String(H)} hosts × ${String(J)} jobs, ${String(list.length)} tasks; model ideal ${r2(realIdeal / 3600)} h compressed ${r2(factor)}× to ${r2(ideal)} s; TTL ${String(ttlS)} s, poll ${String(pollMs)} ms`,
);
const s3 = await startS3Server();
const proxy = await startRecordingProxy(s3.endpoint, H);
let exitCode = 0;
try {
  await s3.createBucket(bucket);
  // Discovery first (658 small listing tasks, one process, not counted): a fleet starts on the
  // pack tasks, and the rehearsal measures those.
  const discover = spawnSync(
    process.execPath,
    [
      join(REPO, 'bin/stackflow.js'),
      'run',
      'discover',
      '-f',
      join(root, 'pipeline.yaml'),
      '--cache-dir',
      join(root, 'cache-discover'),
      '-j',
      '8',
      '--json',
    ],
    {
      env: { ...process.env, ...s3.env, AWS_ENDPOINT_URL_S3: s3.endpoint },
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    },
  );
  if (discover.status !== 0) throw new Error(`discover failed: ${discover.stderr.slice(-2000)}`);
  await giveManifestsRealSizes(s3, bucket);
  console.error('  discovery done; starting the fleet');
  const load0 = loadavg();
  const cpu = cpuMeter();
  const { startedAt, workers } = await runFleet({
    dir: root,
    workers: H,
    jobs: J,
    env: s3.env,
    envOf: (i) => ({ AWS_ENDPOINT_URL_S3: proxy.endpoints[i] ?? '' }),
    runArgs: ['--lease-ttl', String(ttlS), '--poll', String(pollMs)],
    timeoutMs: Math.max(600_000, targetS * 10_000),
  });
  const spent = cpu();
  const all = workers.flatMap((w) => w.events.map((e) => ({ ...e, worker: w.index })));
  if (values['events-out'] !== undefined) {
    writeFileSync(
      values['events-out'],
      all.map((e) => JSON.stringify({ ...e, rel: e.at - startedAt })).join('\n') + '\n',
    );
  }
  if (values['requests-out'] !== undefined) {
    writeFileSync(
      values['requests-out'],
      proxy.requests.map((r) => JSON.stringify({ ...r, rel: r.start - startedAt })).join('\n') +
        '\n',
    );
  }
  const startedEv = all.filter((e) => e.type === 'task-started');
  const doneEv = all.filter((e) => e.type === 'task-succeeded');
  // A duplicate is a task that two workers started, or that finished more than once; a retry
  // (the same worker again after a transient failure, attempt > 1) is counted apart.
  const dup = duplicatesOf(workers);
  const firstPlans = workers.map(
    (w) => ((w.events.find((e) => e.type === 'plan')?.at ?? NaN) - startedAt) / 1000,
  );
  const packStarts = startedEv.filter((e) => e.stage === STAGE).map((e) => e.at);
  const packDone = doneEv.filter((e) => e.stage === STAGE);
  const packPhaseS = (Math.max(...packDone.map((e) => e.at)) - Math.min(...packStarts)) / 1000;
  const lastExit = Math.max(...workers.map((w) => w.exitedAt));
  const taskMs = packDone.map((e) => e.ms ?? 0);
  const plannedMs = durS.reduce((a, d) => a + d, 0) * 1000;

  // Requests by purpose, from the proxy.
  const reqs = proxy.requests;
  const isCoordination = (r: ProxiedRequest) =>
    r.key.startsWith('state/') || r.area === '(service)';
  const byArea: Record<string, number> = {};
  for (const r of reqs) {
    const k = `${r.area} ${r.op}`;
    byArea[k] = (byArea[k] ?? 0) + 1;
  }
  const coordination = reqs.filter(isCoordination);
  const outputs = reqs.length - coordination.length;
  const heartbeatLike = coordination.filter(
    (r) => r.area === 'state/leases' && r.op === 'PutObject',
  ).length;
  const conflicts = reqs.filter(
    (r) => r.op === 'PutObject(create-only)' && r.area === 'state/leases' && r.status === 412,
  ).length;
  const claims = reqs.filter(
    (r) => r.op === 'PutObject(create-only)' && r.area === 'state/leases',
  ).length;
  const tasks = list.length;
  const contentGets = model.totals.gets;
  // Heartbeats at real scale: the TTL was compressed less than the tasks (its floor), so the
  // rehearsal sends fewer per task than a real run would; scale them back.
  const heartbeatScale = ttlS / (DEFAULT_FLEET.leaseTtlS / factor);
  const coordinationAtScale =
    coordination.length - heartbeatLike + heartbeatLike * heartbeatScale * 2;
  const ratio = packPhaseS / ideal;
  const share = coordination.length / (coordination.length + outputs + contentGets);
  const shareAtScale = coordinationAtScale / (coordinationAtScale + outputs + contentGets);
  const failed = workers.filter((w) => w.code !== 0);
  const ranAll = new Set(packDone.map((e) => e.task)).size === list.length;
  if (dup.duplicates > 0 || failed.length > 0 || !ranAll) {
    exitCode = 1;
    const bad = failed[0];
    console.error(
      `FAILED: ${String(dup.duplicates)} duplicates, ${String(failed.length)} workers failed, ${String(new Set(packDone.map((e) => e.task)).size)}/${String(list.length)} pack tasks done${bad ? `; w${String(bad.index)}:\n${bad.stderrTail}` : ''}`,
    );
  }
  const result = {
    name: 'fleet-rehearsal',
    date: new Date().toISOString(),
    machine: { ...machineInfo(), loadavgBefore: load0, loadavgAfter: loadavg() },
    setup: {
      hosts: H,
      jobsPerHost: J,
      slots,
      parquets: list.length,
      languages: new Set(list.map((p) => p.language)).size,
      list: 'test/fixtures/the-stack-v2-parquets.txt (real folders), synthetic sizes (test/helpers/stack-v2.ts)',
      model: `stackflow estimate's model, default calibration: one pack on a 32-core host at ${Math.round(model.makespan.packRowsPerSecond)} rows/s; real ideal on ${String(slots)} slots ${r2(realIdeal / 3600)} h`,
      compression: r2(factor),
      longestTaskS: r2(Math.max(...durS)),
      medianTaskS: r2(median(durS)),
      leaseTtlS: ttlS,
      pollMs,
      taskBody:
        'a shell task: bash reads its duration (builtin read), runs sleep, writes one output; no other process',
      stores:
        'state, work and bucket on the loopback S3 test server, every request through a recording proxy',
      quick,
    },
    target:
      'pack phase ≤ 1.1× ideal; 0 duplicates; coordination < 1% of all S3 requests (content GETs included)',
    summary: {
      idealS: r2(ideal),
      packPhaseS: r2(packPhaseS),
      makespanVsIdeal: r2(ratio),
      wholeRunS: r2((lastExit - startedAt) / 1000),
      /** Task bodies' own time over what the model planned (the sleep plus bash and zx). */
      taskTimeVsPlanned: r2(taskMs.reduce((a, b) => a + b, 0) / plannedMs),
      duplicates: dup.duplicates,
      /** Tasks started by more than one worker / completed more than once. */
      startedByTwoWorkers: dup.startedByTwoWorkers,
      completedTwice: dup.completedTwice,
      /** Same-worker restarts after a transient failure (attempt > 1). */
      retries: dup.retries,
      /** Leases taken over from a silent holder / lost by their holder (warnings). */
      takeovers: all.filter((e) => e.message?.startsWith('took over') === true).length,
      leasesLost: all.filter((e) => e.message?.startsWith('lost the lease') === true).length,
      tasksFailed: all.filter((e) => e.type === 'task-failed').length,
      workersFailed: failed.length,
      leaseClaims: claims,
      leaseConflicts: conflicts,
      requests: reqs.length,
      coordinationRequests: coordination.length,
      outputRequests: outputs,
      coordinationPerTask: r2(coordination.length / tasks),
      contentGetsImplied: contentGets,
      coordinationShare: r4(share),
      heartbeatScale: r2(heartbeatScale),
      coordinationShareAtScale: r4(shareAtScale),
      machineBusyShare: r2(spent.machineBusyShare),
      serverCpuS: r2(spent.serverCpuS),
      workerCpuS: r2(
        workers.reduce((a, w) => a + (w.cpu ? w.cpu.userMs + w.cpu.systemMs : 0), 0) / 1000,
      ),
      workerPeakRssMb: Math.round(Math.max(...workers.map((w) => w.cpu?.maxRssMb ?? 0))),
      /**
       * Start-up: from the fleet's start to each worker's first plan (process start, store
       * probe, the manifests read, the first snapshot), median and slowest.
       */
      firstPlanS: {
        median: r2(median(firstPlans)),
        max: r2(Math.max(...firstPlans)),
      },
      /** Manifest reads (each worker reads every language's manifest once, at start). */
      manifestReads: reqs.filter((r) => r.area === 'state/manifests' && r.op === 'GetObject')
        .length,
      planRoundsPerWorker: median(
        workers.map((w) => w.events.filter((e) => e.type === 'plan').length),
      ),
      /** Where the pack phase's slot-time went (bench/lib/fleet-timeline.ts). */
      slotTime: slotTime(all, {
        stage: STAGE,
        jobs: J,
        workers: H,
        planned: new Map(planned.map((p, i) => [p.id, durS[i] ?? 0])),
      }),
      /** Lease claims timed at the proxy; lost ones against their winner. */
      claims: claimTimes(reqs),
    },
    duplicateTraces: dup.traces,
    requestsByArea: Object.fromEntries(Object.entries(byArea).sort((a, b) => b[1] - a[1])),
    pass: {
      duplicates: dup.duplicates === 0,
      makespan: ratio <= 1.1,
      coordination: shareAtScale < 0.01,
    },
  };
  writeResults('fleet-rehearsal', result);
  console.log(JSON.stringify(result.summary, null, 2));
} finally {
  await proxy.close();
  await s3.stop();
  rmSync(root, { recursive: true, force: true });
}
process.exitCode = exitCode;
