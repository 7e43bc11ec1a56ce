/**
 * One measured run for bench/fleet.ts: N `stackflow run --worker` processes started together on
 * one pipeline (separate cache dirs, as separate hosts), or the reference, a bare pool of N
 * slots running the same shell commands with nothing around them.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
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
  /** task-started: 1, or the retry's number after a transient failure. */
  attempt?: number;
  /** note / warning / task-failed: what was said (takeovers, lost leases, failures). */
  message?: string;
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
  /** Cache dir name of each worker under `dir` (default `cache-<index>`). */
  cacheName?: (index: number) => string;
  /** Per-worker extra node flags (e.g. `--cpu-prof` for one of them). */
  nodeArgsOf?: (index: number) => string[];
  /** Extra `run` arguments of every worker (e.g. `--lease-ttl 3 --poll 100`). */
  runArgs?: string[];
  timeoutMs: number;
}

/** What a note, warning or failure event said. */
function messageOf(e: Record<string, unknown>): { message?: string } {
  if (typeof e.message === 'string') return { message: e.message };
  const f = e.failure as { message?: unknown } | undefined;
  return typeof f?.message === 'string' ? { message: f.message } : {};
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
      ...(o.nodeArgsOf?.(index) ?? []),
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
      join(o.dir, o.cacheName?.(index) ?? `cache-${String(index)}`),
      '-j',
      String(o.jobs),
      '--json',
      ...(o.runArgs ?? []),
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
      ...(typeof e.attempt === 'number' ? { attempt: e.attempt } : {}),
      ...messageOf(e),
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

/**
 * CPU seconds (user + system) a process has used so far, from /proc (Linux; undefined
 * elsewhere). Clock ticks are taken as 100 per second, the Linux default.
 */
export function processCpuS(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** The pid of this process's child running `script` (the S3 test server), if any. */
export function childPidRunning(script: string): number | undefined {
  try {
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid !== process.pid) continue;
        if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(script)) return Number(name);
      } catch {
        // The process exited meanwhile.
      }
    }
  } catch {
    // No /proc.
  }
  return undefined;
}

/** Busy and total CPU seconds of the whole machine so far (all processes, everyone's), from /proc/stat. */
export function machineCpuS(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    const busy =
      (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
    return { busy: busy / 100, total: (busy + (idle ?? 0) + (iowait ?? 0)) / 100 };
  } catch {
    return undefined;
  }
}
