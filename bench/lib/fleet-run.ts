/**
 * One measured run for bench/fleet.ts: N `stackflow run --worker` processes started together on
 * one pipeline (separate cache dirs, as separate hosts), or the reference, a bare pool of N
 * slots running the same shell commands with nothing around them.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const REPO = resolve(import.meta.dirname, '../..');
const BIN = join(REPO, 'bin/stackflow.js');

/**
 * Preloaded into each worker: its own CPU time and peak RSS, written at exit to the file named by
 * FLEET_RUSAGE_OUT (the bench cannot get a child's rusage from Node otherwise).
 */
const RUSAGE_HOOK =
  'data:text/javascript,' +
  encodeURIComponent(
    'import { writeFileSync } from "node:fs";' +
      'process.on("exit", () => { const r = process.resourceUsage();' +
      ' writeFileSync(process.env.FLEET_RUSAGE_OUT, JSON.stringify({ userMs: r.userCPUTime / 1000,' +
      ' systemMs: r.systemCPUTime / 1000, maxRssMb: r.maxRSS / 1024 })); });',
  );

/** One JSON event line of a worker, with the fields the bench reads. */
export interface WorkerEvent {
  /** Emission time (ms since the epoch), from the event's own `time` field. */
  at: number;
  type: string;
  task?: string;
  stage?: string;
  ms?: number;
}

export interface WorkerResult {
  index: number;
  code: number | null;
  /** Date.now() at exit. */
  exitedAt: number;
  events: WorkerEvent[];
  /** Last lines of stderr, for failures. */
  stderrTail: string;
  cpu: { userMs: number; systemMs: number; maxRssMb: number } | undefined;
}

export interface FleetRunOptions {
  /** Directory holding pipeline.yaml; cache dirs go under it. */
  dir: string;
  workers: number;
  jobs: number;
  /** Environment of every worker (credentials, region). */
  env: Record<string, string>;
  /** Per-worker extra environment (e.g. its own endpoint through the recording proxy). */
  envOf?: (index: number) => Record<string, string>;
  timeoutMs: number;
}

/** Starts every worker at once; resolves when all have exited. `startedAt` is Date.now() before the first spawn. */
export async function runFleet(
  o: FleetRunOptions,
): Promise<{ startedAt: number; workers: WorkerResult[] }> {
  const startedAt = Date.now();
  const workers = await Promise.all(Array.from({ length: o.workers }, (_, i) => runWorker(o, i)));
  return { startedAt, workers };
}

function runWorker(o: FleetRunOptions, index: number): Promise<WorkerResult> {
  const rusageFile = join(o.dir, `rusage-${String(index)}.json`);
  const child = spawn(
    process.execPath,
    [
      '--import',
      RUSAGE_HOOK,
      BIN,
      'run',
      '-f',
      join(o.dir, 'pipeline.yaml'),
      '--worker',
      '--worker-id',
      `w${String(index)}`,
      '--cache-dir',
      join(o.dir, `cache-${String(index)}`),
      '-j',
      String(o.jobs),
      '--json',
    ],
    {
      cwd: o.dir,
      env: { ...process.env, ...o.env, ...(o.envOf?.(index) ?? {}), FLEET_RUSAGE_OUT: rusageFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const events: WorkerEvent[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (!line.startsWith('{')) return;
    const e = JSON.parse(line) as Record<string, unknown>;
    events.push({
      at: typeof e.time === 'string' ? Date.parse(e.time) : Date.now(),
      type: String(e.type),
      ...(typeof e.task === 'string' ? { task: e.task } : {}),
      ...(typeof e.stage === 'string' ? { stage: e.stage } : {}),
      ...(typeof e.ms === 'number' ? { ms: e.ms } : {}),
    });
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
  return new Promise((resolveRun, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const exitedAt = Date.now();
      let cpu: WorkerResult['cpu'];
      try {
        cpu = JSON.parse(readFileSync(rusageFile, 'utf8')) as WorkerResult['cpu'];
        rmSync(rusageFile, { force: true });
      } catch {
        cpu = undefined;
      }
      resolveRun({ index, code, exitedAt, events, stderrTail: stderr, cpu });
    });
  });
}

/**
 * The reference: `slots` loops each running its share of the same commands through
 * `bash -eo pipefail -c` (what the shell task runs, without zx, stackflow or S3). Its makespan is
 * "total work / workers" as this machine delivers it, process spawns included.
 */
export async function runBarePool(
  commands: readonly string[],
  slots: number,
  cwd: string,
): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: slots }, async () => {
      for (;;) {
        const cmd = commands[next++];
        if (cmd === undefined) return;
        await new Promise<void>((done, fail) => {
          const c = spawn('bash', ['-eo', 'pipefail', '-c', cmd], { cwd, stdio: 'ignore' });
          c.on('error', fail);
          c.on('close', (code) => {
            if (code === 0) done();
            else fail(new Error(`bare pool: ${cmd} exited ${String(code)}`));
          });
        });
      }
    }),
  );
  return performance.now() - t0;
}
