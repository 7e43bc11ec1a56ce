/**
 * The Slurm test harness's pure parts: reading `scontrol show job` output and the private
 * slurm.conf. On a real cluster it is tested by test/system/slurm.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { parseJobRecords, slurmConf } from './conf.js';

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
