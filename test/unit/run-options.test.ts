import { describe, expect, it } from 'vitest';
import { runMode, slurmShard } from '../../lib/commands/run-options.js';
import { ForeignFailures } from '../../lib/keep-going.js';
import type { StageName, TaskId } from '../../lib/model.js';

const slurm = (id: number, min?: number, max?: number, count?: number, step?: number) => ({
  SLURM_ARRAY_TASK_ID: String(id),
  ...(min !== undefined ? { SLURM_ARRAY_TASK_MIN: String(min) } : {}),
  ...(max !== undefined ? { SLURM_ARRAY_TASK_MAX: String(max) } : {}),
  ...(count !== undefined ? { SLURM_ARRAY_TASK_COUNT: String(count) } : {}),
  ...(step !== undefined ? { SLURM_ARRAY_TASK_STEP: String(step) } : {}),
});

describe('--shard inside a Slurm array', () => {
  it.each([
    ['--array=0-3, task 0', slurm(0, 0, 3, 4), { index: 0, count: 4 }],
    ['--array=0-3, task 3', slurm(3, 0, 3, 4), { index: 3, count: 4 }],
    ['--array=1-4, task 1', slurm(1, 1, 4, 4), { index: 0, count: 4 }],
    ['--array=1-4, task 4', slurm(4, 1, 4, 4), { index: 3, count: 4 }],
    ['--array=0-15:4, task 8', slurm(8, 0, 12, 4, 4), { index: 2, count: 4 }],
    ['no MIN/MAX: ID/COUNT', slurm(2, undefined, undefined, 3), { index: 2, count: 3 }],
  ])('%s', (_name, env, want) => {
    expect(slurmShard(env)).toEqual({ ok: true, value: want });
  });

  it.each([
    ['gaps (--array=1,5,9)', slurm(5, 1, 9, 3)],
    ['outside the array', slurm(7, 1, 4, 4)],
    ['not in a Slurm array', {}],
    ['ID only', { SLURM_ARRAY_TASK_ID: '1' }],
  ])('refuses %s', (_name, env) => {
    const r = slurmShard(env);
    expect(r.ok).toBe(false);
  });
});

describe('run flags', () => {
  it('alone, worker, shard', () => {
    expect(runMode({ jobs: 2 }, {})).toEqual({ ok: true, value: { kind: 'alone' } });
    expect(runMode({ worker: true, leaseTtl: 30 }, {})).toEqual({
      ok: true,
      value: { kind: 'worker', ttlMs: 30_000 },
    });
    expect(runMode({ shard: '1/3', force: true }, {})).toEqual({
      ok: true,
      value: { kind: 'shard', index: 1, count: 3 },
    });
    expect(runMode({ shard: true }, slurm(2, 1, 2, 2))).toEqual({
      ok: true,
      value: { kind: 'shard', index: 1, count: 2 },
    });
  });
});

describe('a shard waiting on another shard failure', () => {
  const rec = (at: number) => ({
    task: 'discover:Python' as TaskId,
    stage: 'discover' as StageName,
    failure: { reason: 'transient' as const, message: 'boom' },
    at,
  });
  it('is final at once when written after this process started', () => {
    const f = new ForeignFailures(1000, 60_000);
    expect(f.final([rec(1500)], 2000)).toHaveLength(1);
  });
  it('an older record is final only after it stayed unchanged for the grace period', () => {
    const f = new ForeignFailures(1000, 60_000);
    expect(f.final([rec(500)], 2000)).toHaveLength(0);
    expect(f.final([rec(500)], 61_999)).toHaveLength(0);
    expect(f.final([rec(500)], 62_000)).toHaveLength(1);
  });
  it('a record that went away (its owner retries) restarts the wait', () => {
    const f = new ForeignFailures(1000, 60_000);
    expect(f.final([rec(500)], 2000)).toHaveLength(0);
    expect(f.final([], 30_000)).toHaveLength(0);
    expect(f.final([rec(500)], 40_000)).toHaveLength(0);
    expect(f.final([rec(500)], 99_000)).toHaveLength(0);
    expect(f.final([rec(500)], 100_000)).toHaveLength(1);
  });
});
