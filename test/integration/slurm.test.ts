/**
 * `stackflow submit slurm` end to end: the built CLI submits a job array to a real single-node
 * Slurm (test/servers/slurm), whose tasks are `stackflow run --worker` processes sharing the rig's
 * cache dir. Checks that the array finishes, the sample graph is complete and no task ran twice.
 *
 * Without root there is no cluster: those tests skip and say so loudly; STACKFLOW_REQUIRE_SLURM=1
 * turns the skip into a failure. The no-cluster cases (--dry-run, no sbatch) always run.
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rig, parseEvents } from '../helpers/rig.js';
import type { SlurmCluster } from '../servers/slurm/harness.js';
import { slurmSkipReason, startSlurm } from '../servers/slurm/harness.js';

const skipReason = slurmSkipReason();
const required = process.env.STACKFLOW_REQUIRE_SLURM === '1';
if (skipReason !== undefined && !required)
  console.warn(
    `\n${'!'.repeat(78)}\n!! SKIPPING the real-Slurm tests: ${skipReason}\n!! ` +
      `(STACKFLOW_REQUIRE_SLURM=1 makes this a failure)\n${'!'.repeat(78)}\n`,
  );

/** A directory holding bash (zx needs it) and, optionally, a stand-in sbatch; nothing else. */
function binDir(rig: Rig, sbatch?: string): string {
  const dir = mkdtempSync(join(rig.dir, 'bin-'));
  symlinkSync(execFileSync('bash', ['-c', 'command -v bash']).toString().trim(), join(dir, 'bash'));
  if (sbatch !== undefined) {
    writeFileSync(join(dir, 'sbatch'), `#!/bin/bash\n${sbatch}\n`);
    chmodSync(join(dir, 'sbatch'), 0o755);
  }
  return dir;
}

describe('stackflow submit slurm, without a cluster', () => {
  const rig = new Rig();
  afterAll(() => {
    rig.cleanup();
  });

  it('--dry-run prints the script and submits nothing', async () => {
    const calls = join(rig.dir, 'sbatch-calls');
    rig.env = { PATH: binDir(rig, `echo "$@" >> '${calls}'; echo 1`) };
    const r = await rig.run(['submit', 'slurm', 'pack', '--workers', '2', '--dry-run']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^#!\/bin\/bash\n#SBATCH --job-name=stackflow\n#SBATCH --array=0-1\n/);
    expect(r.stdout).toContain(`#SBATCH --output=${rig.cache}/slurm-logs/%A_%a.out\n`);
    expect(r.stdout).toContain(
      ` run pack --worker --worker-id "slurm-\${SLURM_ARRAY_JOB_ID}-\${SLURM_ARRAY_TASK_ID}" -f ${rig.dir}/pipeline.yaml --cache-dir ${rig.cache} --json\n`,
    );
    expect(existsSync(calls)).toBe(false);
    expect(existsSync(join(rig.cache, 'slurm-logs'))).toBe(false);
  });

  it('says what to do when sbatch is not installed', async () => {
    rig.env = { PATH: binDir(rig) };
    const r = await rig.run(['submit', 'slurm', '--workers', '2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^❌ cannot run sbatch: the Slurm client is not installed here or not on PATH \(.*sbatch.*\)\. Submit the script from a Slurm login node: sbatch \/.*\/cache\/slurm-logs\/submit-.*\.sbatch\n$/,
    );
  });

  it('exits 2 on a bad --workers', async () => {
    rig.env = {};
    const r = await rig.run(['submit', 'slurm', '--workers', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--workers must be a positive integer/);
  });
});

describe.skipIf(skipReason !== undefined && !required)(
  'stackflow submit slurm on a real Slurm',
  () => {
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
  },
);
