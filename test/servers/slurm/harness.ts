/**
 * A real single-node Slurm for tests: private munged, slurmctld and slurmd in a temp dir, on free
 * ports, with a clean state every time (see /work/shared/reference/slurm-notes.md for the facts
 * this rests on).
 *
 *   startSlurm()                   needs the Debian packages installed (.ci/run does) and root:
 *     munged  (own key + socket)   ← AuthInfo=socket=… in the private slurm.conf
 *     slurmctld -c                 ← wait for `scontrol ping` UP
 *     slurmd                       ← wait for the node to be idle
 *   cluster.env                    SLURM_CONF for sbatch/squeue and for CLI processes
 *   cluster.waitForJob(id)         polls `scontrol show job` (sbatch --wait polls with a ~8 s back-off)
 *   cluster.stop()                 scancel, wait for the jobs to go, stop the daemons by pid file
 *
 * Slurm daemons must run as root (slurmd starts jobs as their user), so without root there is no
 * cluster: `slurmSkipReason()` says why, and tests skip loudly (or fail with
 * STACKFLOW_REQUIRE_SYSTEM=1, see test/system/skip.ts).
 */
import { execFile, spawn } from 'node:child_process';
import { accessSync, constants, readFileSync, readdirSync, rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { JobTask } from './conf.js';
import { DEF_MEM_PER_CPU, isTerminal, parseJobRecords, slurmConf } from './conf.js';

/** The Debian packages (Slurm 22.05 on Debian 12) a cluster needs. */
export const SLURM_PACKAGES = ['slurm-wlm', 'slurmctld', 'slurmd', 'slurm-client', 'munge'];
/** Every program the harness runs: all must be installed. */
const TOOLS = [
  'sbatch',
  'squeue',
  'scancel',
  'scontrol',
  'sinfo',
  'slurmctld',
  'slurmd',
  'munged',
  'mungekey',
];
const DAEMONS = ['slurmd', 'slurmctld', 'munged'] as const;

/** How one array job ended. */
export interface JobResult {
  /** COMPLETED when every array task completed, else the first other final state. */
  state: string;
  /** Per array task, by index. */
  tasks: JobTask[];
}

export interface SlurmCluster {
  /** Environment for every process that talks to this cluster (sbatch, squeue, the CLI). */
  env: Record<string, string>;
  /** The private dir: slurm.conf, daemon logs, state. */
  dir: string;
  /** Polls until every task of the job is in a final state; throws after timeoutMs. */
  waitForJob(jobId: string, timeoutMs: number): Promise<JobResult>;
  /** Ids of the jobs (array jobs once) still known to the controller and not finished. */
  activeJobs(): Promise<string[]>;
  /** The last lines of the daemons' logs, for failure messages. */
  logTail(lines?: number): string;
  /** Cancels leftover jobs, stops the daemons, removes the dir. Safe to call twice. */
  stop(): Promise<void>;
}

/** Why there can be no cluster here, or undefined when startSlurm() can make one. */
export function slurmSkipReason(): string | undefined {
  const missing = TOOLS.filter((t) => which(t) === undefined);
  if (missing.length > 0)
    return (
      `Slurm is not installed (missing ${missing.join(', ')}): as root, ` +
      `apt-get install ${SLURM_PACKAGES.join(' ')} (as .ci/run does)`
    );
  if (process.getuid?.() !== 0)
    return 'Slurm daemons need root (slurmd starts jobs as their owner): run the tests as root';
  return undefined;
}

/** Starts a private cluster, or returns undefined (after printing why) where none can run. */
export async function startSlurm(
  opts: { cpus?: number; log?: (s: string) => void } = {},
): Promise<SlurmCluster | undefined> {
  const log = opts.log ?? ((s: string) => void process.stderr.write(`[slurm] ${s}\n`));
  const reason = slurmSkipReason();
  if (reason !== undefined) {
    log(`NO SLURM CLUSTER: ${reason}`);
    return undefined;
  }
  const cpus = opts.cpus ?? 8;
  const dir = await mkdtemp(join(tmpdir(), 'stackflow-slurm-'));
  // munged refuses a socket whose directory others cannot traverse (mkdtemp makes it 0700).
  await chmod(dir, 0o711);
  const env = { SLURM_CONF: join(dir, 'slurm.conf') };
  const pids = new Map<string, number>();
  // Daemons outlive a crashed test process unless something kills them: last resort, by pid.
  const onExit = (): void => {
    for (const pid of pids.values()) if (alive(pid)) tryKill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', onExit);
  const tail = (n = 20): string =>
    ['slurmctld.log', 'slurmd.log', 'munged.log']
      .map((f) => {
        try {
          const lines = readFileSync(join(dir, f), 'utf8').trimEnd().split('\n');
          return `--- ${f}\n${lines.slice(-n).join('\n')}`;
        } catch {
          return `--- ${f}: (none)`;
        }
      })
      .join('\n');

  let stopped = false;
  const cluster: SlurmCluster = {
    env,
    dir,
    waitForJob: (jobId, timeoutMs) => waitForJob(env, jobId, timeoutMs, tail),
    activeJobs: () => activeJobs(env),
    logTail: tail,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await stopCluster(dir, env, pids, log);
      } finally {
        process.off('exit', onExit);
        await rm(dir, { recursive: true, force: true });
      }
    },
  };

  try {
    await mkdir(join(dir, 'state'));
    await mkdir(join(dir, 'spool'));
    // Our own key: the cluster never depends on (or touches) /etc/munge.
    await run('mungekey', ['--create', `--keyfile=${join(dir, 'munge.key')}`], {});
    await daemon('munged', [
      `--socket=${join(dir, 'munge.sock')}`,
      `--key-file=${join(dir, 'munge.key')}`,
      `--pid-file=${join(dir, 'munged.pid')}`,
      `--log-file=${join(dir, 'munged.log')}`,
      `--seed-file=${join(dir, 'munged.seed')}`,
    ]);
    pids.set('munged', await pidFrom(join(dir, 'munged.pid')));

    const node = await run('slurmd', ['-C'], {});
    const host = /NodeName=(\S+)/.exec(node.stdout)?.[1];
    const realMb = Number(/RealMemory=(\d+)/.exec(node.stdout)?.[1] ?? 0);
    if (host === undefined) throw new Error(`slurmd -C printed no NodeName:\n${node.stdout}`);
    const [ctldPort, slurmdPort] = await freePorts();
    await writeFile(
      env.SLURM_CONF,
      slurmConf({
        dir,
        host,
        ctldPort,
        slurmdPort,
        cpus,
        memoryMb: Math.max(realMb, cpus * DEF_MEM_PER_CPU),
      }),
    );

    // -c: clean start, no jobs or node state from an earlier cluster.
    await daemon('slurmctld', ['-c', '-f', env.SLURM_CONF], env);
    pids.set('slurmctld', await pidFrom(join(dir, 'slurmctld.pid')));
    await until(
      async () => (await run('scontrol', ['ping'], env)).stdout.includes('UP'),
      15_000,
      () => `slurmctld did not come up\n${tail()}`,
    );
    await daemon('slurmd', ['-f', env.SLURM_CONF], env);
    pids.set('slurmd', await pidFrom(join(dir, 'slurmd.pid')));
    await until(
      async () => (await run('sinfo', ['-h', '-N', '-o', '%T'], env)).stdout.trim() === 'idle',
      15_000,
      () => `the node did not become idle\n${tail()}`,
    );
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return cluster;
}

async function waitForJob(
  env: Record<string, string>,
  jobId: string,
  timeoutMs: number,
  tail: () => string,
): Promise<JobResult> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const r = await run('scontrol', ['show', 'job', '-o', jobId], env);
    if (r.code !== 0) throw new Error(`scontrol show job ${jobId}: ${r.stderr.trim()}`);
    last = r.stdout;
    const { tasks, pending } = parseJobRecords(r.stdout);
    if (pending === 0 && tasks.length > 0 && tasks.every((t) => isTerminal(t.state))) {
      const bad = tasks.find((t) => t.state !== 'COMPLETED');
      return { state: bad?.state ?? 'COMPLETED', tasks };
    }
    if (Date.now() > deadline)
      throw new Error(
        `job ${jobId} not finished after ${String(timeoutMs)} ms:\n${last}\n${tail()}`,
      );
    await sleep(100);
  }
}

async function activeJobs(env: Record<string, string>): Promise<string[]> {
  // %F: the array job id, so an array is cancelled (and counted) once.
  const r = await run('squeue', ['-h', '-o', '%F'], env);
  return [...new Set(r.stdout.split('\n').filter(Boolean))];
}

async function stopCluster(
  dir: string,
  env: Record<string, string>,
  pids: Map<string, number>,
  log: (s: string) => void,
): Promise<void> {
  const ctld = pids.get('slurmctld');
  if (ctld !== undefined && alive(ctld)) {
    // Jobs first: stopping slurmd under a running job orphans its slurmstepd, which ignores
    // SIGTERM.
    const jobs = await activeJobs(env);
    if (jobs.length > 0) {
      await run('scancel', jobs, env);
      try {
        await until(
          async () => (await activeJobs(env)).length === 0,
          20_000,
          () => 'scancel',
        );
      } catch {
        log(`jobs ${jobs.join(', ')} did not leave the queue; killing their processes`);
      }
    }
  }
  // Whatever still runs under our slurmd (a slurmstepd and its job) is ours: kill it by pid.
  const slurmd = pids.get('slurmd');
  if (slurmd !== undefined) for (const pid of descendants(slurmd)) tryKill(pid, 'SIGKILL');
  for (const name of DAEMONS) {
    const pid = pids.get(name) ?? (await pidFrom(join(dir, `${name}.pid`), 0).catch(() => 0));
    if (pid > 0) await terminate(pid);
  }
}

/** SIGTERM, then SIGKILL if the process is still there after 10 s. */
async function terminate(pid: number): Promise<void> {
  if (!alive(pid)) return;
  tryKill(pid, 'SIGTERM');
  try {
    await until(
      () => Promise.resolve(!alive(pid)),
      10_000,
      () => '',
    );
  } catch {
    tryKill(pid, 'SIGKILL');
  }
}

/** Runs a daemon that forks into the background; resolves once the foreground part exits. */
function daemon(cmd: string, args: string[], env: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    // stdio ignored: a daemon that kept our pipe open would keep us waiting for its end.
    const child = spawn(which(cmd) ?? cmd, args, {
      env: { ...process.env, ...env },
      stdio: 'ignore',
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${String(code)}`));
    });
  });
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(
  cmd: string,
  args: string[],
  env: Record<string, string>,
  timeout = 30_000,
): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      which(cmd) ?? cmd,
      args,
      { env: { ...process.env, ...env }, timeout, maxBuffer: 16 << 20 },
      (e, stdout, stderr) => {
        const code = e === null ? 0 : typeof e.code === 'number' ? e.code : 1;
        resolve({ code, stdout, stderr: stderr || (e?.message ?? '') });
      },
    );
  });
}

async function pidFrom(file: string, timeoutMs = 10_000): Promise<number> {
  let pid = 0;
  await until(
    async () => {
      try {
        pid = Number((await readFile(file, 'utf8')).trim());
      } catch {
        return false;
      }
      return pid > 0;
    },
    timeoutMs,
    () => `no pid in ${file}`,
  );
  return pid;
}

async function until(
  check: () => Promise<boolean>,
  timeoutMs: number,
  what: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(what());
    await sleep(50);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Alive and not a zombie: a zombie still answers kill(pid, 0) but is gone for our purposes. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function tryKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** Every live process below pid, from /proc parent links. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // exited while we looked
    }
  }
  const out: number[] = [];
  const queue = [root];
  for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

function which(cmd: string): string | undefined {
  // sbin dirs too: a non-root PATH often lacks them, but the daemons live there.
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin'];
  for (const d of dirs) {
    const p = join(d, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Ports free right now on loopback (the OS picks them; the race until slurmctld binds is tiny). */
async function freePorts(): Promise<[number, number]> {
  const servers = await Promise.all(
    Array.from(
      { length: 2 },
      () =>
        new Promise<Server>((resolve, reject) => {
          const s = createServer();
          s.once('error', reject);
          s.listen(0, '127.0.0.1', () => {
            resolve(s);
          });
        }),
    ),
  );
  const ports = servers.map((s) => {
    const a = s.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  });
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  const [a, b] = ports;
  if (a === undefined || b === undefined) throw new Error('Internal error: no free ports');
  return [a, b];
}
