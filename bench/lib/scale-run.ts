/**
 * One pack of the rehearsal through the real CLI (bench/scale.ts): the generated shard's pack task
 * with state and bucket on the loopback S3 test server and contents from the synthetic Software
 * Heritage, sampled from outside while it runs (/proc: RSS, CPU per thread group, the machine's
 * busy CPU; the scratch dir's bytes) and read back from the servers' counters afterwards.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { S3TestServer } from '../../test/servers/s3/harness.js';
import type { SwhTestServer } from '../../test/servers/swh/harness.js';
import type { FetchSummary } from '../../lib/events.js';
import type { ThreadGroup } from './proc.js';
import {
  ThreadSampler,
  cpuSince,
  cpuTotal,
  dirBytes,
  machineCpu,
  processCpu,
  rssMb,
} from './proc.js';

const REPO = resolve(import.meta.dirname, '../..');

export interface PackRunOptions {
  /** Holds hf/data/Big/train-00000-of-00001.parquet (scripts/make-big-parquet.ts --swh). */
  dataDir: string;
  rows: number;
  /** pack's `concurrency` (the fetch window, or its upper bound when adaptive). */
  window: number;
  /** pack's `window:` param: `fixed` (exactly `window` GETs in flight) or `adaptive` (AIMD). */
  windowMode: 'fixed' | 'adaptive';
  rowsPerPart: number;
  s3: S3TestServer;
  /** Where the S3 test server keeps its data (to drop the run's bucket afterwards). */
  s3Dir: string;
  swh: SwhTestServer;
  /** taskset CPU list for the CLI (e.g. `0` or `0,1`); unpinned when undefined. */
  cpus?: string;
  /** Unique per run: names the bucket and the cache dir. */
  label: string;
  /** Called every second while pack runs (e.g. to change the server's rate limit mid-run). */
  onSecond?: (second: number) => Promise<void> | void;
}

/** One point of a run's timeline (per second, or averaged over `step` seconds on long runs). */
export interface TimelinePoint {
  s: number;
  /** GETs that arrived per second, those answered SlowDown, most in flight at once. */
  gets: number;
  slowDown: number;
  inFlight: number;
}

export interface PackRun {
  label: string;
  rows: number;
  window: number;
  windowMode: 'fixed' | 'adaptive';
  cpus: string | null;
  ok: boolean;
  /** The pack task alone (its task-succeeded `ms`). */
  seconds: number;
  rowsPerSecond: number;
  /** GETs the rows needed, per second (hedges and retries not counted: see requestsPerSecond). */
  getsPerSecond: number;
  /** Requests the synthetic SWH answered, per second (hedges and retries included). */
  requestsPerSecond: number;
  /** JSON lines produced (before zstd), MB/s, and the parts written, MB/s. */
  jsonMBps: number;
  outputMBps: number;
  counts: Record<string, number>;
  /** CPU seconds of the CLI process during pack, per 1M rows, by thread group and in total. */
  cpuSecondsPer1MRows: Record<ThreadGroup | 'total', number>;
  /** Cores the CLI kept busy on average during pack. */
  coresBusy: number;
  /** The loopback servers' CPU during pack, cores on average (they share the machine). */
  serversCores: { swh: number; s3: number };
  /**
   * Cores kept busy by everything else on the machine during pack (its busy CPU less the CLI's,
   * the servers' and this bench's): above ~0.2 the figure was measured on a busy machine.
   */
  othersCores: number;
  peakRssMb: number;
  /** Most bytes in the task's scratch dir at one sample (every 250 ms), and in parts. */
  peakScratchBytes: number;
  peakScratchParts: number;
  /** Requests the synthetic SWH answered, by outcome; every non-404 failure was retried. */
  server: {
    requests: number;
    byOutcome: Record<string, number>;
    maxInFlight: number;
    cpuMs: number;
    /** Body bytes sent. */
    bytes: number;
  };
  /**
   * Answers the CLI had to retry, by cause (the server's counts: every SlowDown, 500 and 503 is
   * retried; a 404 is a missing blob, not retried), and the retries the CLI itself counted.
   */
  retries: { slowDown: number; internalError: number; unavailable: number; cliCounted: number };
  /**
   * The process's fetch window as the CLI saw it (run-finished `fetch`): its ceiling, GETs, most
   * in flight, throttles, and the most bytes waiting in the part's reorder buffer at once.
   */
  fetch: FetchSummary | null;
  /** GETs in flight over time: per second, averaged over `timelineStep` s on long runs. */
  timelineStep: number;
  timeline: TimelinePoint[];
}

/** At most this many timeline points are kept per run. */
const TIMELINE_POINTS = 240;

/** The server's per-second timeline, averaged over steps so that at most TIMELINE_POINTS stay. */
export function downsample(
  seconds: { second: number; requests: number; slowDown: number; maxInFlight: number }[],
): { step: number; points: TimelinePoint[] } {
  const step = Math.max(1, Math.ceil(seconds.length / TIMELINE_POINTS));
  const points: TimelinePoint[] = [];
  for (let i = 0; i < seconds.length; i += step) {
    const chunk = seconds.slice(i, i + step);
    const n = chunk.length;
    points.push({
      s: chunk[0]?.second ?? i,
      gets: Math.round(chunk.reduce((a, t) => a + t.requests, 0) / n),
      slowDown: Math.round(chunk.reduce((a, t) => a + t.slowDown, 0) / n),
      inFlight: Math.max(...chunk.map((t) => t.maxInFlight)),
    });
  }
  return { step, points };
}

const r2 = (x: number) => Number(x.toFixed(2));

function pipelineYaml(o: PackRunOptions, bucket: string, extraParams: string): string {
  const hf = `file://${resolve(o.dataDir, 'hf')}`;
  return [
    'version: 1',
    `dataset: { repo: bigcode/the-stack-v2, revision: scale, source: "${hf}", languages: [Big] }`,
    `content: { source: "${o.swh.contentUrl}" }`,
    `bucket: s3://${bucket}/out`,
    `state: s3://${bucket}/state`,
    's3:',
    `  ${o.swh.bucket}: { endpoint: "${o.swh.endpoint}" }`,
    `  ${bucket}: { endpoint: "${o.s3.endpoint}" }`,
    'tasks:',
    '  discover: { kind: discover }',
    '  fetch: { kind: fetch, needs: [discover] }',
    `  pack: { kind: pack, needs: [fetch], params: { rows_per_part: ${String(o.rowsPerPart)}, concurrency: ${String(o.window)}, window: ${o.windowMode}${extraParams} } }`,
    '',
  ].join('\n');
}

export async function runPack(o: PackRunOptions, extraParams = ''): Promise<PackRun> {
  const bucket = `scale-${o.label.toLowerCase().replace(/[^a-z0-9-]+/g, '-')}`.slice(0, 60);
  await o.s3.createBucket(bucket);
  const runDir = join(o.dataDir, `run-${o.label}`);
  rmSync(runDir, { recursive: true, force: true });
  mkdirSync(runDir, { recursive: true });
  writeFileSync(join(runDir, 'pipeline.yaml'), pipelineYaml(o, bucket, extraParams));
  const cache = join(runDir, 'cache');
  const node = [
    process.execPath,
    join(REPO, 'bin/stackflow.js'),
    'run',
    'pack',
    '--cache-dir',
    cache,
  ];
  const [cmd, ...args] = o.cpus === undefined ? node : ['taskset', '-c', o.cpus, ...node];
  await o.swh.resetStats();
  const child = spawn(cmd ?? 'node', args, {
    cwd: runDir,
    env: { ...process.env, ...o.s3.env, FORCE_COLOR: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid ?? -1;
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-4000);
  });
  const threads = new ThreadSampler(pid);
  let cpuAtStart: Record<ThreadGroup, number> | undefined;
  let cpuAtEnd: Record<ThreadGroup, number> | undefined;
  let around: { t: number; machine: number; swh: number; s3: number; bench: number }[] = [];
  const mark = () => {
    const u = process.cpuUsage();
    around.push({
      t: performance.now(),
      machine: machineCpu().busy,
      swh: processCpu(o.swh.pid) ?? 0,
      s3: processCpu(o.s3.pid) ?? 0,
      bench: (u.user + u.system) / 1e6,
    });
  };
  let packMs = 0;
  let counts: Record<string, number> = {};
  let finished:
    { ok: boolean; peakRssMb: number; requestRetries: number; fetch?: FetchSummary } | undefined;
  let failure = '';
  let peakRss = 0;
  let peakScratch = 0;
  let sampler: NodeJS.Timeout | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let firstLine = true;
  const scratchDir = join(cache, 'tmp');
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    if (firstLine) {
      // The CLI is up: the threads seen now are Node's own (see ThreadSampler).
      firstLine = false;
      threads.sample();
    }
    if (!line.startsWith('{')) return;
    const e = JSON.parse(line) as Record<string, unknown>;
    const isPack = typeof e.task === 'string' && e.task.startsWith('pack:');
    if (e.type === 'task-started' && isPack) {
      void o.swh.resetStats();
      cpuAtStart = threads.sample();
      around = [];
      mark();
      sampler = setInterval(() => {
        threads.sample();
        peakRss = Math.max(peakRss, rssMb(pid) ?? 0);
        peakScratch = Math.max(peakScratch, dirBytes(scratchDir));
      }, 250);
      let second = 0;
      const tick = o.onSecond;
      ticker = setInterval(() => {
        second++;
        if (tick) void tick(second);
        // A long pack says how far it got, once a minute.
        if (second % 60 === 0) {
          void o.swh.stats().then((st) => {
            const done = Math.min(1, st.requests / Math.max(1, o.rows));
            console.error(
              `    ${o.label}: ${String(second)} s, ${String(st.requests)} GETs (${String(Math.round(st.requests / second))}/s, ~${String(Math.round(done * 100))}% of the rows)`,
            );
          });
        }
      }, 1000);
    } else if (e.type === 'task-succeeded' && isPack) {
      cpuAtEnd = threads.sample();
      mark();
      packMs = Number(e.ms);
      counts = e.counts as Record<string, number>;
      clearInterval(sampler);
      clearInterval(ticker);
    } else if (e.type === 'task-failed') {
      failure = JSON.stringify(e.failure);
    } else if (e.type === 'run-finished') {
      finished = e as unknown as typeof finished;
    }
  });
  await new Promise<void>((done) =>
    child.on('exit', () => {
      done();
    }),
  );
  clearInterval(sampler);
  clearInterval(ticker);
  const st = await o.swh.stats();
  // The run's outputs are not needed afterwards, and a full-size shard's take GBs.
  rmSync(join(o.s3Dir, bucket), { recursive: true, force: true });
  rmSync(runDir, { recursive: true, force: true });
  if (finished === undefined || cpuAtStart === undefined || cpuAtEnd === undefined) {
    throw new Error(`pack ${o.label} did not finish: ${failure}\n${stderr}`);
  }
  const seconds = packMs / 1000;
  const rows = counts.rows ?? o.rows;
  const per1M = (x: number) => r2((x / Math.max(1, rows)) * 1e6);
  const cpuDelta = cpuSince(cpuAtEnd, cpuAtStart);
  const cpu = Object.fromEntries(Object.entries(cpuDelta).map(([g, v]) => [g, per1M(v)])) as Record<
    ThreadGroup,
    number
  >;
  const cpuSeconds = cpuTotal(cpuDelta);
  const partBytes = (counts.zst_bytes ?? 0) / Math.max(1, counts.parts ?? 1);
  const [a, b] = [around[0], around[around.length - 1]];
  const span = a && b && b.t > a.t ? (b.t - a.t) / 1000 : seconds;
  const swhCores = a && b ? (b.swh - a.swh) / span : 0;
  const s3Cores = a && b ? (b.s3 - a.s3) / span : 0;
  const othersCores =
    a && b
      ? (b.machine -
          a.machine -
          cpuSeconds -
          (b.swh - a.swh) -
          (b.s3 - a.s3) -
          (b.bench - a.bench)) /
        span
      : 0;
  const tl = downsample(st.timeline);
  return {
    label: o.label,
    rows,
    window: o.window,
    windowMode: o.windowMode,
    cpus: o.cpus ?? null,
    ok: finished.ok,
    seconds: r2(seconds),
    rowsPerSecond: Math.round(rows / seconds),
    // The GETs the rows needed (one per row with a valid blob id), not the server's requests:
    // a hedged or retried GET is a cost (server.requests), not throughput.
    getsPerSecond: Math.round((rows - (counts.bad_rows ?? 0)) / seconds),
    requestsPerSecond: Math.round(st.requests / seconds),
    jsonMBps: r2((counts.raw_bytes ?? 0) / 1e6 / seconds),
    outputMBps: r2((counts.zst_bytes ?? 0) / 1e6 / seconds),
    counts,
    cpuSecondsPer1MRows: { ...cpu, total: per1M(cpuSeconds) },
    coresBusy: r2(cpuSeconds / seconds),
    serversCores: { swh: r2(swhCores), s3: r2(s3Cores) },
    othersCores: r2(Math.max(0, othersCores)),
    peakRssMb: Math.round(Math.max(peakRss, finished.peakRssMb)),
    peakScratchBytes: peakScratch,
    peakScratchParts: r2(peakScratch / Math.max(1, partBytes)),
    server: {
      requests: st.requests,
      byOutcome: st.byOutcome,
      maxInFlight: st.maxInFlight,
      cpuMs: st.cpuMs,
      bytes: st.bytes,
    },
    retries: {
      slowDown: st.byOutcome['slow-down'],
      internalError: st.byOutcome['internal-error'],
      unavailable: st.byOutcome.unavailable,
      cliCounted: finished.requestRetries,
    },
    fetch: finished.fetch ?? null,
    timelineStep: tl.step,
    timeline: tl.points,
  };
}

/**
 * pack's CPU per 1M rows: by thread group as measured, and by what it does, with two shares
 * priced by references measured in the same script: the SDK's (the bare loop's CPU per GET, all
 * of its process's threads, the SDK alone, × pack's GETs) and zstd's (scale-zstd.ts's CPU per MB
 * × the JSON bytes pack compressed). The line workers are measured; the rest is pack's own work
 * on the other threads (parquet reading, ordering, part writing, and their GC).
 */
export function cpuSplit(p: PackRun, sdkMsPerGet: number, zstdSecondsPerMB: number) {
  const c = p.cpuSecondsPer1MRows;
  const rows = Math.max(1, p.rows);
  const notWorkers = Math.max(0, c.total - c.workers);
  // zstd's reference is the firmer one (the bare loop's CPU per GET swells on a busy machine).
  const zstd = Math.min(
    notWorkers,
    (((p.counts.raw_bytes ?? 0) / 1e6) * zstdSecondsPerMB * 1e6) / rows,
  );
  const sdk = Math.min(notWorkers - zstd, ((sdkMsPerGet / 1000) * p.server.requests * 1e6) / rows);
  return {
    byThread: { main: c.main, workers: c.workers, native: c.native, exited: c.exited },
    sdkEstimated: r2(sdk),
    lineWorkers: c.workers,
    zstdEstimated: r2(zstd),
    rest: r2(notWorkers - sdk - zstd),
    total: c.total,
  };
}
