/**
 * One pack of the rehearsal through the real CLI (bench/scale.ts): the generated shard's pack task
 * with state and bucket on the loopback S3 test server and contents from the synthetic Software
 * Heritage, sampled from outside while it runs (/proc: RSS, CPU per thread group; the scratch
 * dir's bytes) and read back from the servers' counters afterwards.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { S3TestServer } from '../../test/servers/s3/harness.js';
import type { SwhTestServer } from '../../test/servers/swh/harness.js';
import type { ThreadGroup } from './proc.js';
import { THREAD_GROUPS, cpuTotal, dirBytes, rssMb, threadCpu } from './proc.js';

const REPO = resolve(import.meta.dirname, '../..');

export interface PackRunOptions {
  /** Holds hf/data/Big/train-00000-of-00001.parquet (scripts/make-big-parquet.ts --swh). */
  dataDir: string;
  rows: number;
  /** pack's `concurrency` (the fetch window, or its upper bound when adaptive). */
  window: number;
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

export interface PackRun {
  label: string;
  rows: number;
  window: number;
  cpus: string | null;
  ok: boolean;
  /** The pack task alone (its task-succeeded `ms`). */
  seconds: number;
  rowsPerSecond: number;
  getsPerSecond: number;
  /** JSON lines produced (before zstd), MB/s, and the parts written, MB/s. */
  jsonMBps: number;
  outputMBps: number;
  counts: Record<string, number>;
  /** CPU seconds of the CLI process during pack, per 1M rows, by thread group and in total. */
  cpuSecondsPer1MRows: Record<ThreadGroup | 'total', number>;
  /** Cores the CLI kept busy on average during pack. */
  coresBusy: number;
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
  /** Per second of the pack: GETs that arrived, answered SlowDown, and most in flight. */
  timeline: { s: number; gets: number; slowDown: number; inFlight: number }[];
  /** Request retries the CLI counted (run-finished). */
  requestRetries: number;
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
    `  pack: { kind: pack, needs: [fetch], params: { rows_per_part: ${String(o.rowsPerPart)}, concurrency: ${String(o.window)}${extraParams} } }`,
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
  let cpuAtStart: Record<ThreadGroup, number> | undefined;
  let cpuAtEnd: Record<ThreadGroup, number> | undefined;
  let packMs = 0;
  let counts: Record<string, number> = {};
  let finished: { ok: boolean; peakRssMb: number; requestRetries: number } | undefined;
  let failure = '';
  let peakRss = 0;
  let peakScratch = 0;
  let sampler: NodeJS.Timeout | undefined;
  let ticker: NodeJS.Timeout | undefined;
  const scratchDir = join(cache, 'tmp');
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    if (!line.startsWith('{')) return;
    const e = JSON.parse(line) as Record<string, unknown>;
    const isPack = typeof e.task === 'string' && e.task.startsWith('pack:');
    if (e.type === 'task-started' && isPack) {
      void o.swh.resetStats();
      cpuAtStart = threadCpu(pid);
      sampler = setInterval(() => {
        peakRss = Math.max(peakRss, rssMb(pid) ?? 0);
        peakScratch = Math.max(peakScratch, dirBytes(scratchDir));
      }, 250);
      let second = 0;
      if (o.onSecond) {
        const tick = o.onSecond;
        ticker = setInterval(() => {
          void tick(++second);
        }, 1000);
      }
    } else if (e.type === 'task-succeeded' && isPack) {
      cpuAtEnd = threadCpu(pid);
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
  const cpu = Object.fromEntries(
    THREAD_GROUPS.map((g) => [g, per1M((cpuAtEnd?.[g] ?? 0) - (cpuAtStart?.[g] ?? 0))]),
  ) as Record<ThreadGroup, number>;
  const cpuSeconds = cpuTotal(cpuAtEnd) - cpuTotal(cpuAtStart);
  const partBytes = (counts.zst_bytes ?? 0) / Math.max(1, counts.parts ?? 1);
  return {
    label: o.label,
    rows,
    window: o.window,
    cpus: o.cpus ?? null,
    ok: finished.ok,
    seconds: r2(seconds),
    rowsPerSecond: Math.round(rows / seconds),
    getsPerSecond: Math.round(st.requests / seconds),
    jsonMBps: r2((counts.raw_bytes ?? 0) / 1e6 / seconds),
    outputMBps: r2((counts.zst_bytes ?? 0) / 1e6 / seconds),
    counts,
    cpuSecondsPer1MRows: { ...cpu, total: per1M(cpuSeconds) },
    coresBusy: r2(cpuSeconds / seconds),
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
    timeline: st.timeline.map((t) => ({
      s: t.second,
      gets: t.requests,
      slowDown: t.slowDown,
      inFlight: t.maxInFlight,
    })),
    requestRetries: finished.requestRetries,
  };
}
