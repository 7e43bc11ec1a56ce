/**
 * The Slurm test harness itself: reading `scontrol show job` output (pure), and on a real cluster
 * that failures are reported per array task and that stop() leaves no process behind, even with a
 * job still running. Skips loudly without root, like test/integration/slurm.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJobRecords, slurmConf } from './conf.js';
import { slurmSkipReason, startSlurm } from './harness.js';
import type { SlurmCluster } from './harness.js';

const skipReason = slurmSkipReason();
const required = process.env.STACKFLOW_REQUIRE_SLURM === '1';
if (skipReason !== undefined && !required)
  console.warn(`\n!! SKIPPING the Slurm harness tests: ${skipReason}\n`);

describe('parseJobRecords', () => {
  const rec = (fields: string): string =>
    `JobId=9 ${fields} JobName=a b UserId=root(0) Command=/x y/z.sbatch WorkDir=/w`;

  it('reads each array task, and counts the ones still folded into the meta record', () => {
    const text = [
      rec('ArrayJobId=7 ArrayTaskId=0 JobState=COMPLETED Reason=None ExitCode=0:0'),
      rec('ArrayJobId=7 ArrayTaskId=2 JobState=FAILED Reason=NonZeroExitCode ExitCode=7:0'),
      rec('ArrayJobId=7 ArrayTaskId=1 JobState=CANCELLED Reason=None ExitCode=0:15'),
      rec('ArrayJobId=7 ArrayTaskId=3-5,8%2 JobState=PENDING Reason=None ExitCode=0:0'),
      '',
    ].join('\n');
    expect(parseJobRecords(text)).toEqual({
      tasks: [
        { task: 0, state: 'COMPLETED', exitCode: 0, signal: 0 },
        { task: 1, state: 'CANCELLED', exitCode: 0, signal: 15 },
        { task: 2, state: 'FAILED', exitCode: 7, signal: 0 },
      ],
      pending: 4,
    });
  });

  it('reads a job that is not an array as task 0', () => {
    expect(parseJobRecords(rec('JobState=RUNNING Reason=None ExitCode=0:0'))).toEqual({
      tasks: [{ task: 0, state: 'RUNNING', exitCode: 0, signal: 0 }],
      pending: 0,
    });
  });
});

describe('slurmConf', () => {
  it('keeps every path, port and the munge socket private to the cluster', () => {
    const conf = slurmConf({
      dir: '/tmp/c',
      host: 'box',
      ctldPort: 40001,
      slurmdPort: 40002,
      cpus: 8,
      memoryMb: 4096,
    });
    expect(conf).toContain('\nSlurmctldHost=box(127.0.0.1)\n');
    expect(conf).toContain('\nSlurmctldPort=40001\nSlurmdPort=40002\n');
    expect(conf).toContain('\nAuthInfo=socket=/tmp/c/munge.sock\n');
    expect(conf).toMatch(/\nNodeName=box NodeAddr=127\.0\.0\.1 CPUs=8 .* RealMemory=4096 /);
    for (const line of conf.split('\n').filter((l) => /(Location|Dir|File)=/.test(l)))
      expect(line).toMatch(/=\/tmp\/c\//);
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

describe.skipIf(skipReason !== undefined && !required)('a real single-node Slurm', () => {
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
