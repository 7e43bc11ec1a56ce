/**
 * One failure never stops unrelated work: a language whose discover fails (its mirror folder
 * holds a dangling link, as an HF cache snapshot whose blob was deleted does) while the other
 * languages are fetched and packed in the same invocation, in a plain run, as a worker and as a
 * shard; `--fail-fast` stops at the first failure; the closing summary. And the hygiene around a
 * run: two plain runs on one state, `--shard` inside a Slurm array started at 1, a dry run's
 * flag checks, `doctor` on a pipeline file that does not parse.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { collect, Rig, started } from '../helpers/rig.js';
import type { CliResult } from '../helpers/rig.js';

const rigs: Rig[] = [];
afterEach(() => {
  for (const r of rigs.splice(0)) r.cleanup();
});

/** The sample with `data/Python/` holding a dangling link next to its parquet. */
function brokenRig(): Rig {
  const rig = new Rig();
  rigs.push(rig);
  symlinkSync(
    join(rig.dir, 'hf/blobs/deleted-blob'),
    join(rig.dir, 'hf/data/Python/train-00001-of-00002.parquet'),
  );
  return rig;
}

const OTHERS = ['C', 'C++', 'Graphviz_(DOT)', 'JavaScript', 'Shell'];

const finished = (r: CliResult) => {
  const e = r.events.find((x) => x.type === 'run-finished');
  expect(e, r.stdout + r.stderr).toBeDefined();
  return e as {
    ok: boolean;
    failed: number;
    blocked: number;
    notStarted: number;
    failures: { task: string; reason: string; message: string; blocked: number; retry: string }[];
  };
};

/** A later run finds every task done: `total` tasks, and starts none. */
async function everythingDone(rig: Rig, total: number): Promise<void> {
  const r = await rig.run(['run']);
  expect(r.code, r.stderr).toBe(0);
  expect(started(r)).toEqual([]);
  expect(r.events.find((e) => e.type === 'run-finished')).toMatchObject({ skipped: total });
}

const packedLanguages = (rig: Rig): string[] => {
  const dir = join(rig.cache, 'bucket/packed');
  return existsSync(dir) ? readdirSync(dir).sort() : [];
};

describe('keep going after a failure', () => {
  it('a plain run packs every other language, then ends with a summary of the failure and exit 1', async () => {
    const rig = brokenRig();
    const r = await rig.run(['run']);
    expect(r.code, r.stderr).toBe(1);
    // The healthy languages were fanned out and packed in this same invocation.
    expect(packedLanguages(rig)).toEqual([...OTHERS].sort());
    expect(started(r).filter((t) => t.startsWith('pack:')).length).toBe(6);
    expect(started(r).some((t) => t.includes('Python') && !t.startsWith('discover:'))).toBe(false);
    const f = finished(r);
    expect(f.ok).toBe(false);
    expect(f.failed).toBe(1);
    expect(f.failures).toHaveLength(1);
    expect(f.failures[0]).toMatchObject({
      task: 'discover:Python',
      reason: 'invalid-input',
      retry: 'stackflow run discover:Python',
    });
    expect(f.failures[0]?.message).toMatch(/train-00001-of-00002\.parquet is listed but cannot/);
    // Python's parquet-level stages (awaiting its manifest), its language-level ones and the
    // once-stages over every language.
    expect(f.failures[0]?.blocked).toBeGreaterThanOrEqual(5);
    expect(f.blocked).toBe(f.failures[0]?.blocked);
    // The summary as text too, for whoever reads the log.
    expect(r.stderr).toContain('1 task failed:');
    expect(r.stderr).toContain('✗ discover:Python (invalid-input):');
    expect(r.stderr).toContain(
      `blocked ${String(f.blocked)} tasks · retry: stackflow run discover:Python`,
    );

    // Fixed: the next run does only what is left, Python's tasks.
    rmSync(join(rig.dir, 'hf/data/Python/train-00001-of-00002.parquet'));
    const again = await rig.run(['run']);
    expect(again.code, again.stderr).toBe(0);
    // Only Python's tasks, and the once-stages over every language (their input changed).
    const lang = (t: string) => /^[^:]+:([^/]+)/.exec(t)?.[1];
    expect(started(again).filter((t) => lang(t) !== undefined && lang(t) !== 'Python')).toEqual([]);
    expect(started(again).filter((t) => lang(t) === 'Python').length).toBeGreaterThanOrEqual(5);
    expect(finished(again).failures).toEqual([]);
  }, 180_000);

  it('--fail-fast stops starting tasks at the first failure', async () => {
    const rig = brokenRig();
    const r = await rig.run(['run', '--fail-fast', '-j', '1']);
    expect(r.code, r.stderr).toBe(1);
    // Discovers run in language order, one at a time: Shell comes after Python.
    expect(started(r)).toEqual([
      'discover:C',
      'discover:C++',
      'discover:Graphviz_(DOT)',
      'discover:JavaScript',
      'discover:Python',
    ]);
    const f = finished(r);
    expect(f.notStarted).toBe(1);
    expect(f.failures.map((x) => x.task)).toEqual(['discover:Python']);
    expect(r.stderr).toContain('stopped at the first failure (--fail-fast): 1 ready task');
    expect(packedLanguages(rig)).toEqual([]);
  }, 120_000);

  it('a worker keeps going too, and honours --fail-fast', async () => {
    const rig = brokenRig();
    const ff = await rig.run(['run', '--worker', '--fail-fast', '-j', '1', '--poll', '100']);
    expect(ff.code, ff.stderr).toBe(1);
    expect(started(ff).some((t) => !t.startsWith('discover:'))).toBe(false);
    expect(finished(ff).failures.map((x) => x.task)).toEqual(['discover:Python']);

    const r = await rig.run(['run', '--worker', '--poll', '100']);
    expect(r.code, r.stderr).toBe(1);
    expect(packedLanguages(rig)).toEqual([...OTHERS].sort());
    const f = finished(r);
    expect(f.failures.map((x) => x.task)).toEqual(['discover:Python']);
    expect(f.failures[0]?.blocked).toBeGreaterThanOrEqual(5);
    expect(r.stderr).toContain('retry: stackflow run discover:Python');
  }, 180_000);

  it('a shard keeps going too', async () => {
    const rig = brokenRig();
    const r = await rig.run(['run', '--shard', '0/1', '--poll', '100']);
    expect(r.code, r.stderr).toBe(1);
    expect(packedLanguages(rig)).toEqual([...OTHERS].sort());
    expect(finished(r).failures.map((x) => x.task)).toEqual(['discover:Python']);
  }, 180_000);
});

describe('shards and a failure in another shard', () => {
  it('the shard that waits on it stops waiting: both finish with exit 1, everything else done once', async () => {
    const rig = brokenRig();
    // discover:Python belongs to shard 0 of 2 (a hash of its id); shard 1 waits for its manifest.
    const [a, b] = await Promise.all([
      rig.run(['run', '--shard', '0/2', '--poll', '100']),
      rig.run(['run', '--shard', '1/2', '--poll', '100']),
    ]);
    expect(a.code, a.stderr).toBe(1);
    expect(b.code, b.stderr).toBe(1);
    expect(packedLanguages(rig)).toEqual([...OTHERS].sort());
    const all = [...started(a), ...started(b)];
    expect(new Set(all).size).toBe(all.length);
    expect(all.filter((t) => t.includes('Python') && !t.startsWith('discover:'))).toEqual([]);
    expect(finished(a).failures.map((x) => x.task)).toEqual(['discover:Python']);
    const elsewhere = finished(b).failures;
    expect(elsewhere).toMatchObject([{ task: 'discover:Python', elsewhere: 'shard 0/2' }]);
    expect(b.stderr).toContain('✗ discover:Python (invalid-input, in shard 0/2)');
  }, 180_000);
});

describe('two plain runs on one state', () => {
  it('the second waits for the first, saying who holds the state; every task runs exactly once', async () => {
    const rig = new Rig();
    rigs.push(rig);
    const [a, b] = await Promise.all([rig.run(['run']), rig.run(['run'])]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const all = [...started(a), ...started(b)];
    expect(new Set(all).size).toBe(all.length);
    await everythingDone(rig, all.length);
    const waited = [a, b].flatMap((x) => x.events.filter((e) => e.type === 'state-locked'));
    expect(waited.length).toBe(1);
    expect(waited[0]).toMatchObject({ host: hostname() });
    expect(existsSync(join(rig.cache, 'state/locks/run'))).toBe(false);
  }, 180_000);

  it('a lock held on another host is waited for, with who holds it; a dead holder of this host is taken over at once', async () => {
    const rig = new Rig();
    rigs.push(rig);
    const dir = join(rig.cache, 'state/locks/run');
    mkdirSync(dir, { recursive: true });
    const lock = (host: string, pid: number) => {
      writeFileSync(
        join(dir, 'e00000000.json'),
        JSON.stringify({
          worker: `${host}-${String(pid)}`,
          host,
          pid,
          since: '2026-01-02T03:04:05.000Z',
          ttlMs: 60_000,
          token: 'x',
        }),
      );
    };
    lock('gpu-node-7', 4242);
    const child = rig.start(['run', 'discover', '--poll', '100']);
    const done = collect(child);
    let seen = '';
    await new Promise<void>((res) => {
      child.stdout?.on('data', (d: Buffer) => {
        seen += d.toString();
        if (seen.includes('"state-locked"')) res();
      });
    });
    expect(seen).toContain('"holder":"gpu-node-7-4242"');
    expect(seen).toContain('"since":"2026-01-02T03:04:05.000Z"');
    expect(seen).not.toContain('task-started');
    rmSync(join(dir, 'e00000000.json')); // the other run finished
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    expect(started(r).length).toBe(6);

    // A run of this host killed with -9 leaves its lock: the next run takes it over at once.
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((res) => dead.on('close', res));
    mkdirSync(dir, { recursive: true });
    lock(hostname(), dead.pid ?? 0);
    const t0 = Date.now();
    const next = await rig.run(['run', 'discover', '--force']);
    expect(next.code, next.stderr).toBe(0);
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(JSON.stringify(next.events)).toContain(
      `took over the state lock of pid ${String(dead.pid)} on this host`,
    );
  }, 120_000);
});

describe('shards in a Slurm array started at 1', () => {
  it('--shard takes i and N from SLURM_ARRAY_TASK_MIN/MAX: two shards of --array=1-2 cover the graph once', async () => {
    const rig = new Rig();
    rigs.push(rig);
    const env = (id: number) => ({
      SLURM_ARRAY_TASK_ID: String(id),
      SLURM_ARRAY_TASK_MIN: '1',
      SLURM_ARRAY_TASK_MAX: '2',
      SLURM_ARRAY_TASK_COUNT: '2',
    });
    const shard = (id: number) => {
      rig.env = env(id);
      return rig.start(['run', '--shard', '--poll', '100']);
    };
    const [a, b] = await Promise.all([collect(shard(1)), collect(shard(2))]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const all = [...started(a), ...started(b)];
    expect(new Set(all).size).toBe(all.length);
    rig.env = {};
    await everythingDone(rig, all.length);
    expect(started(a).length).toBeGreaterThan(0);
    expect(started(b).length).toBeGreaterThan(0);
  }, 180_000);

  it('an array with gaps is refused with what to do instead', async () => {
    const rig = new Rig();
    rigs.push(rig);
    rig.env = {
      SLURM_ARRAY_TASK_ID: '5',
      SLURM_ARRAY_TASK_MIN: '1',
      SLURM_ARRAY_TASK_MAX: '9',
      SLURM_ARRAY_TASK_COUNT: '3',
    };
    const r = await rig.run(['run', '--shard', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--shard cannot map this Slurm array onto shards');
    expect(r.stderr).toContain('--array=0-2');
  });
});

describe('a dry run checks flags like a real run', () => {
  const rig = new Rig();
  afterAll(() => {
    rig.cleanup();
  });
  it.each([
    [['--worker', '--shard', '0/2'], '--worker and --shard exclude each other'],
    [['--worker', '--force'], '--force does not combine with --worker'],
    [['--shard', '3/2'], '--shard expects i/N with 0 ≤ i < N'],
    [['--shard'], '--shard without i/N runs inside a Slurm array'],
    [['--lease-ttl', '30'], '--lease-ttl only applies to --worker'],
  ])('run --dry-run %j exits 2', async (flags, message) => {
    const runs = await Promise.all(
      [['--dry-run'], []].map((dry) => rig.run(['run', ...dry, ...flags])),
    );
    for (const r of runs) {
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(message);
      expect(r.stdout).toBe('');
    }
    expect(existsSync(rig.cache)).toBe(false);
  });
});

describe('doctor -f', () => {
  it('a pipeline file that does not parse: its diagnostics and exit 2, nothing probed', async () => {
    const rig = new Rig();
    rigs.push(rig);
    writeFileSync(join(rig.dir, 'bad.yaml'), 'version: 1\ns3:\n  b: { endpoint: 12 }\ntasks: {}\n');
    const store = join(rig.dir, 'probe-me');
    const r = await rig.run(['doctor', '-f', 'bad.yaml', `file://${store}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml:\d+:\d+/);
    expect(r.stderr).toMatch(/error.? in bad\.yaml/);
    expect(existsSync(store)).toBe(false);
    // A named file that does not exist is an error too; without -f, the environment is used.
    const missing = await rig.run(['doctor', '-f', 'nope.yaml', `file://${store}`]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read pipeline file nope.yaml');
  });
});
