/**
 * On a real single-node Slurm (test/servers/slurm, Debian's packages, run as root):
 * - `stackflow submit slurm` end to end: the built CLI submits a job array whose tasks are
 *   `stackflow run --worker` processes sharing the rig's cache dir; the array finishes, the sample
 *   graph is complete and no task ran twice;
 * - the harness itself: failures reported per array task, stop() leaves no process behind.
 * Skips loudly where Slurm is missing (see ./skip.ts). The no-cluster cases of `submit slurm` run
 * with `npm test` (test/integration/slurm.test.ts).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rig, parseEvents } from '../helpers/rig.js';
import type { SlurmCluster } from '../servers/slurm/harness.js';
import { slurmSkipReason, startSlurm } from '../servers/slurm/harness.js';
import { announce } from './skip.js';

const skipReason = slurmSkipReason();
const runs = announce('slurm', skipReason);

describe.runIf(runs)('stackflow submit slurm on a real Slurm', () => {
  let cluster: SlurmCluster | undefined;
  const rigs: Rig[] = [];
  const newRig = (): Rig => {
    const rig = new Rig();
    rigs.push(rig);
    rig.env = { ...cluster?.env };
    return rig;
  };
  beforeAll(async () => {
    const started = Date.now();
    cluster = await startSlurm();
    if (cluster === undefined) throw new Error(`no Slurm cluster: ${skipReason ?? '?'}`);
    console.log(`[slurm] cluster up in ${String(Date.now() - started)} ms`);
  }, 600_000);
  afterAll(async () => {
    // Jobs and daemons first: a worker must not be writing into a rig being deleted.
    await cluster?.stop();
    for (const rig of rigs) rig.cleanup();
  });

  it('3 workers complete the sample graph, each task exactly once', async () => {
    const rig = newRig();
    // What a single run would do: every task of the sample, each once.
    const preview = await rig.run(['run', '--dry-run', '--json', '--cache-dir', 'cache']);
    expect(preview.code).toBe(0);
    const planned = (
      JSON.parse(preview.stdout) as { steps: { task: string; action: string }[] }
    ).steps
      .map((s) => s.task)
      .sort();

    // A space and a `%` in the log dir: sbatch's own #SBATCH parser and Slurm's filename
    // patterns must both get the path right.
    const logDir = join(rig.dir, 'slurm logs 100%');
    const t0 = Date.now();
    const sub = await rig.run([
      'submit',
      'slurm',
      '--workers',
      '3',
      '--cache-dir',
      'cache',
      '--log-dir',
      logDir,
    ]);
    expect(sub.stderr).toBe('');
    expect(sub.code).toBe(0);
    const jobId = /^Submitted Slurm job (\d+): 3 workers \(array 0-2\)$/m.exec(sub.stdout)?.[1];
    expect(jobId).toBeDefined();
    if (jobId === undefined || cluster === undefined) return;
    const job = await cluster.waitForJob(jobId, 240_000);
    const ms = Date.now() - t0;

    const logs = [0, 1, 2].map((i) => join(logDir, `${jobId}_${String(i)}.out`));
    const texts = logs.map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : '(missing)'));
    const detail = `job ${JSON.stringify(job)}\n${texts.map((t, i) => `--- log ${String(i)}\n${t.slice(-3000)}`).join('\n')}`;
    expect(job.tasks, detail).toEqual(
      [0, 1, 2].map((task) => ({ task, state: 'COMPLETED', exitCode: 0, signal: 0 })),
    );
    for (const f of logs) expect(existsSync(f), f).toBe(true);

    // No task ran twice: across the three workers, each task id starts at most once, and
    // together they ran exactly the tasks a single run would have.
    const perWorker = texts.map((t) =>
      parseEvents(t)
        .filter((e) => e.type === 'task-started')
        .map((e) => String(e.task)),
    );
    const started = perWorker.flat().sort();
    const twice = started.filter((t, i) => started[i - 1] === t);
    expect(twice, detail).toEqual([]);
    expect(started).toEqual(planned);
    for (const t of texts)
      expect(parseEvents(t).find((e) => e.type === 'run-finished')).toMatchObject({ ok: true });
    console.log(
      `[slurm] 3-worker array on the sample: ${String(ms)} ms; tasks per worker: ${perWorker.map((w) => w.length).join(', ')}`,
    );

    // The graph is complete: status says every stage is done, and a new plan runs nothing.
    const status = await rig.run(['status', '--json', '--cache-dir', 'cache']);
    expect(status.code).toBe(0);
    const st = JSON.parse(status.stdout) as {
      stages: Record<string, unknown>[];
      workers: { worker: string; done: number }[];
    };
    expect(st.stages.length).toBeGreaterThan(0);
    for (const s of st.stages)
      expect(s).toMatchObject({ pending: 0, failed: 0, stale: 0, blocked: 0, running: 0 });
    // Markers name the array task that wrote them: --worker-id reached every worker.
    for (const w of st.workers) expect(w.worker).toMatch(new RegExp(`^slurm-${jobId}-[012]$`));
    expect(st.workers.reduce((n, w) => n + w.done, 0)).toBe(planned.length);
    const again = await rig.run(['run', '--dry-run', '--json', '--cache-dir', 'cache']);
    const steps = (JSON.parse(again.stdout) as { steps: { action: string }[] }).steps;
    expect(steps.filter((s) => s.action !== 'skip')).toEqual([]);
  });

  it("reports sbatch's refusal and queues nothing", async () => {
    const rig = newRig();
    const r = await rig.run([
      'submit',
      'slurm',
      '--workers',
      '2',
      '--sbatch-arg=--partition=no-such-partition',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^❌ sbatch refused the job \(exit 1\): sbatch: error: invalid partition specified: no-such-partition\n {3}sbatch: error: Batch job submission failed: Invalid partition name specified\n {3}\(script: \/.*\.sbatch\)\n$/,
    );
    expect(await cluster?.activeJobs()).toEqual([]);
  });
});

/** Alive and not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function submit(c: SlurmCluster, name: string, body: string, args: string[] = []): string {
  const path = join(c.dir, name);
  writeFileSync(path, `#!/bin/bash\n${body}\n`);
  return execFileSync('sbatch', ['--parsable', ...args, path], {
    env: { ...process.env, ...c.env },
  })
    .toString()
    .trim();
}

describe.runIf(runs)('a real single-node Slurm', () => {
  it('reports each array task, runs several at once, and stops without leftovers', async () => {
    // Twice in a row: a second cluster must not trip over anything the first left behind.
    for (let round = 0; round < 2; round++) {
      const c = await startSlurm();
      if (c === undefined) throw new Error(`no Slurm cluster: ${skipReason ?? '?'}`);
      const pids = ['munged', 'slurmctld', 'slurmd'].map((d) =>
        Number(readFileSync(join(c.dir, `${d}.pid`), 'utf8')),
      );
      let stopped = false;
      try {
        const id = submit(
          c,
          'array.sbatch',
          // Each task records when it ran; task 3 fails.
          `date +%s.%N > "${c.dir}/ran-$SLURM_ARRAY_TASK_ID"; sleep 1; exit $((SLURM_ARRAY_TASK_ID == 3 ? 7 : 0))`,
          ['--array=0-3', '--output=/dev/null'],
        );
        const job = await c.waitForJob(id, 60_000);
        expect(job).toEqual({
          state: 'FAILED',
          tasks: [0, 1, 2, 3].map((task) => ({
            task,
            state: task === 3 ? 'FAILED' : 'COMPLETED',
            exitCode: task === 3 ? 7 : 0,
            signal: 0,
          })),
        });
        // 8 declared CPUs: the four tasks start together (one at a time would span 3+ s).
        const starts = [0, 1, 2, 3].map((i) =>
          Number(readFileSync(join(c.dir, `ran-${String(i)}`), 'utf8')),
        );
        expect(Math.max(...starts) - Math.min(...starts)).toBeLessThan(2);

        // A job still running at stop(): cancelled, and its process gone with the daemons.
        submit(c, 'long.sbatch', `echo $$ > "${c.dir}/long.pid"; exec sleep 300`, [
          '--output=/dev/null',
        ]);
        // Written by the job's shell: wait until it holds a whole pid, not just until it exists.
        const pidFile = join(c.dir, 'long.pid');
        let jobPid = 0;
        for (let i = 0; i < 400 && !(jobPid > 0); i++) {
          await new Promise((r) => setTimeout(r, 50));
          jobPid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim() || 0) : 0;
        }
        expect(alive(jobPid)).toBe(true);
        expect(await c.activeJobs()).toHaveLength(1);
        const dir = c.dir;
        await c.stop();
        stopped = true;
        for (const pid of [jobPid, ...pids]) expect(alive(pid), String(pid)).toBe(false);
        expect(existsSync(dir)).toBe(false);
        await c.stop(); // twice is fine
      } finally {
        if (!stopped) await c.stop();
      }
    }
  }, 180_000);
});
