/**
 * Nothing hangs, every signal is honoured, and a run that cannot work says so before any task
 * starts — through the real CLI:
 *   - `bucket: file:///proc/nope` (Node's recursive mkdir spun there forever) exits 2 at once;
 *   - a missing `content.source` / `dataset.source` is "directory not found" at its line;
 *   - SIGTERM while loading exits 130 at once; while a task runs, it stops the task (and the
 *     commands it started) and exits 130; a second SIGTERM quits at once; the next run redoes it;
 *   - a stage's stall_timeout stops a silent task and retries it; its timeout stops a busy one;
 *   - scratch dirs of killed runs are swept, those of live owners kept.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { processStart } from '../../lib/scratch.js';
import type { CliResult } from '../helpers/rig.js';
import { collect, Rig, started, walk } from '../helpers/rig.js';
import { shellPipeline } from '../helpers/shell-pipeline.js';

const rigs: Rig[] = [];
const newRig = (pipeline?: string): Rig => {
  const rig = new Rig(pipeline === undefined ? {} : { pipeline });
  rigs.push(rig);
  return rig;
};
/** Pids of processes whose command line is exactly `args` (our own, uniquely named sleeps). */
function pidsOf(args: string): number[] {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => /^\s*(\d+)\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null && m[2] === args)
    .map((m) => Number(m[1]));
}
const leftovers: string[] = [];
afterEach(() => {
  for (const args of leftovers.splice(0)) {
    for (const pid of pidsOf(args)) process.kill(pid, 'SIGKILL');
  }
  for (const r of rigs.splice(0)) r.cleanup();
});

/** Resolves when `child`'s stdout has shown `needle`. */
function waitFor(child: ReturnType<Rig['start']>, needle: string): Promise<void> {
  return new Promise((resolve) => {
    let seen = '';
    child.stdout?.on('data', (d: Buffer) => {
      seen += d.toString();
      if (seen.includes(needle)) resolve();
    });
  });
}

const textOf = (rig: Rig): string => readFileSync(join(rig.dir, 'pipeline.yaml'), 'utf8');
const failures = (r: CliResult) => r.events.filter((e) => e.type === 'task-failed');

describe('a run that cannot work stops before any task, exit 2', () => {
  it.skipIf(process.platform !== 'linux')(
    'bucket: file:///proc/nope exits 2 promptly with the pipeline line',
    async () => {
      const rig = newRig();
      const sample = textOf(rig);
      rig.writePipeline(sample.replace('\ntasks:', '\nbucket: file:///proc/nope\ntasks:'));
      const t0 = Date.now();
      const r = await rig.run(['run', '--json']);
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(
        /❌ pipeline\.yaml:\d+:9 bucket file:\/\/\/proc\/nope cannot be created or written: /,
      );
      expect(r.stderr).toContain('    bucket: file:///proc/nope\n            ~~~~~~~~~~~~~~~~~\n');
      expect(started(r)).toEqual([]);
    },
    30_000,
  );

  it('a missing content.source is "directory not found" at its line, in a dry run too', async () => {
    const rig = newRig();
    rig.writePipeline(textOf(rig).replace('file://swh/content', 'file://swh/nothing'));
    for (const args of [
      ['run', '--json'],
      ['run', '--dry-run'],
    ]) {
      const r = await rig.run(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(
        /❌ pipeline\.yaml:\d+:11 content\.source file:\/\/\S+\/swh\/nothing: directory not found/,
      );
      expect(r.stderr).toMatch(/\n\s+source: file:\/\/swh\/nothing .*\n\s+~{18}\n/);
      expect(r.stderr).not.toMatch(/missing/i);
      expect(started(r)).toEqual([]);
    }
  }, 60_000);

  it('a missing dataset mirror is "directory not found" too', async () => {
    const rig = newRig();
    rig.writePipeline(textOf(rig).replace('source: file://hf', 'source: file://hf-gone'));
    const r = await rig.run(['run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /❌ pipeline\.yaml:\d+:\d+ dataset\.source \S+\/hf-gone: directory not found/,
    );
  }, 30_000);
});

describe('signals', () => {
  it('SIGTERM while loading (the Hub does not answer) exits 130 at once', async () => {
    const sockets: Socket[] = [];
    let connected: () => void = () => undefined;
    const reached = new Promise<void>((resolve) => (connected = resolve));
    const server: Server = createServer((s) => {
      sockets.push(s); // accepted, never answered
      connected();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const rig = newRig();
      rig.writePipeline(
        textOf(rig)
          .replace('source: file://hf', 'source: hf://datasets/bigcode/the-stack-v2')
          .replace('revision: sample-v1', 'revision: main'),
      );
      rig.env = { HF_ENDPOINT: `http://127.0.0.1:${String(port)}`, HF_TOKEN: 'hf_test' };
      const child = rig.start(['run', '--json']);
      const done = collect(child);
      await reached;
      const t0 = Date.now();
      child.kill('SIGTERM');
      const r = await done;
      expect(Date.now() - t0).toBeLessThan(3_000);
      expect(r.code).toBe(130);
      expect(r.stderr).toContain('SIGTERM');
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
  }, 60_000);

  it('SIGTERM during a task stops it and what it started, exit 130; the next run redoes it', async () => {
    const rig = newRig(shellPipeline('sleep $SLEEP; echo done > {outputs}'));
    const args = 'sleep 41.25';
    leftovers.push(args);
    rig.env = { SLEEP: '41.25' };
    const child = rig.start(['run', '--json']);
    const done = collect(child);
    await waitFor(child, '"type":"task-started","task":"slow"');
    while (pidsOf(args).length === 0) await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    child.kill('SIGTERM');
    const r = await done;
    expect(Date.now() - t0).toBeLessThan(4_000);
    expect(r.code).toBe(130);
    expect(r.events.at(-1)).toMatchObject({ type: 'run-finished', interrupted: true });
    expect(r.events.some((e) => e.type === 'task-succeeded' && e.task === 'slow')).toBe(false);
    // The command's own child went with it (bash alone used to be killed, `sleep` ran on).
    expect(pidsOf(args)).toEqual([]);
    // Stopped, not failed: "interrupted" (not "command exited SIGTERM"), and no failure record.
    // Other tasks running at that moment (a slow machine: discover) are stopped the same way.
    const stopped = failures(r);
    expect(stopped).toContainEqual(
      expect.objectContaining({
        task: 'slow',
        failure: { reason: 'aborted', message: 'interrupted' },
      }),
    );
    for (const f of stopped) {
      expect(f).toMatchObject({ failure: { reason: 'aborted', message: 'interrupted' } });
    }
    expect(walk(join(rig.cache, 'state')).filter((k) => k.endsWith('@failed.json'))).toEqual([]);
    rig.env = { SLEEP: '0' };
    const again = await rig.run(['run', '--json']);
    expect(again.code, JSON.stringify(again.events.filter((e) => e.type === 'task-failed'))).toBe(
      0,
    );
    expect(again.events).toContainEqual(
      expect.objectContaining({ type: 'task-started', task: 'slow', reason: 'missing' }),
    );
    expect(again.events).toContainEqual(
      expect.objectContaining({ type: 'task-succeeded', task: 'slow' }),
    );
  }, 60_000);

  it('a task deaf to SIGTERM: a second SIGTERM quits at once, and one alone after a grace', async () => {
    // bash ignores TERM, and so does the sleep it starts (an ignored signal stays ignored).
    const rig = newRig(shellPipeline('trap "" TERM; sleep $SLEEP; echo done > {outputs}'));
    for (const [n, SLEEP] of [
      [2, '42.5'],
      [1, '42.75'],
    ] as const) {
      const args = `sleep ${SLEEP}`;
      leftovers.push(args);
      rig.env = { SLEEP };
      const child = rig.start(['run', '--json']);
      const done = collect(child);
      await waitFor(child, '"type":"task-started","task":"slow"');
      while (pidsOf(args).length === 0) await new Promise((r) => setTimeout(r, 50));
      child.kill('SIGTERM');
      const t0 = Date.now();
      if (n === 2) {
        await new Promise((r) => setTimeout(r, 300));
        child.kill('SIGTERM');
      }
      const r = await done;
      const ms = Date.now() - t0;
      expect(r.code).toBe(130);
      if (n === 2) expect(ms).toBeLessThan(2_000);
      else {
        expect(ms).toBeGreaterThan(4_000); // the 5 s grace
        expect(ms).toBeLessThan(9_000);
      }
      // Killed with its process group on the way out.
      expect(pidsOf(args)).toEqual([]);
    }
  }, 60_000);
});

describe('time limits', () => {
  it('stall_timeout stops a silent task, retries it, then fails it as stalled', async () => {
    const rig = newRig(
      shellPipeline('sleep 30.5; echo done > {outputs}', '    retries: 1\n    stall_timeout: 1s\n'),
    );
    leftovers.push('sleep 30.5');
    const t0 = Date.now();
    const r = await rig.run(['run', '--json']);
    // Two attempts of ~1 s each, plus CLI start and discover on a busy machine: well below 30 s.
    expect(Date.now() - t0).toBeLessThan(40_000);
    expect(r.code).toBe(1);
    const retries = r.events.filter((e) => e.type === 'retry' && e.task !== undefined);
    expect(retries).toHaveLength(1);
    expect(String(retries[0]?.reason)).toMatch(/^slow: stalled: no progress for 1(\.\d)?s /);
    const [failed] = failures(r);
    expect(failed).toMatchObject({ task: 'slow', failure: { reason: 'transient' } });
    expect(JSON.stringify(failed)).toContain("the stage's stall_timeout is 1s");
    expect(pidsOf('sleep 30.5')).toEqual([]);
  }, 60_000);

  it('timeout stops a task that keeps busy (output counts as progress) with reason timeout', async () => {
    const rig = newRig(
      shellPipeline(
        'while true; do echo tick; sleep 0.2; done',
        '    retries: 1\n    timeout: 2s\n    stall_timeout: 1s\n',
      ),
    );
    const t0 = Date.now();
    const r = await rig.run(['run', '--json']);
    const ms = Date.now() - t0;
    expect(ms).toBeGreaterThan(4_000); // two attempts of 2 s: the 1 s stall limit never fired
    expect(ms).toBeLessThan(45_000);
    expect(r.code).toBe(1);
    expect(r.events.filter((e) => e.type === 'retry' && e.task !== undefined)).toHaveLength(1);
    const [failed] = failures(r);
    expect(failed).toMatchObject({ task: 'slow', failure: { reason: 'timeout' } });
    expect(JSON.stringify(failed)).toContain(
      "slow: timeout: still running after 2s (the stage's timeout)",
    );
  }, 60_000);

  it('a timeout that is not a duration is a config error at its line', async () => {
    const rig = newRig(shellPipeline('true', '    timeout: "30"\n'));
    const r = await rig.run(['run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      '❌ pipeline.yaml:13:14 tasks.slow.timeout "30" has no unit (write 30s, 30m or 30h), or none',
    );
  }, 30_000);
});

describe('scratch dirs of killed runs', () => {
  it('are swept when their owner is gone; those of live owners (or other hosts) are kept', async () => {
    const rig = newRig(shellPipeline('sleep $SLEEP; echo done > {outputs}'));
    const tmp = join(rig.cache, 'tmp');
    // A run killed with -9 mid-task leaves its scratch dir (and its owner record).
    const args = 'sleep 43.5';
    leftovers.push(args);
    rig.env = { SLEEP: '43.5' };
    const killed = rig.start(['run', '--json']);
    const done = collect(killed);
    await waitFor(killed, '"type":"task-started","task":"slow"');
    while (pidsOf(args).length === 0) await new Promise((r) => setTimeout(r, 50));
    killed.kill('SIGKILL');
    await done;
    const left = readdirSync(tmp).filter((n) => !n.endsWith('.owner'));
    // slow's, and discover's when it was still running.
    expect(left.some((n) => n.startsWith('slow-'))).toBe(true);
    // A live process (this test's child), its dir; the same pid with another start time (a
    // reused pid); a dir of another host; a young dir without a record.
    const live = spawn('sleep', ['44.5']);
    leftovers.push('sleep 44.5');
    const pid = live.pid ?? 0;
    const own = (name: string, o: object) => {
      mkdirSync(join(tmp, name));
      writeFileSync(join(tmp, `${name}.owner`), JSON.stringify(o));
    };
    own('live-1', { pid, host: hostname(), started: processStart(pid), at: '' });
    own('reused-1', { pid, host: hostname(), started: '1', at: '' });
    own('elsewhere-1', { pid: 1, host: 'another-host', started: '', at: '' });
    mkdirSync(join(tmp, 'legacy-1'));
    rig.env = { SLEEP: '0' };
    const r = await rig.run(['run', '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      `removed ${String(left.length + 1)} scratch dirs left by killed runs`,
    );
    expect(readdirSync(tmp).sort()).toEqual([
      'elsewhere-1',
      'elsewhere-1.owner',
      'legacy-1',
      'live-1',
      'live-1.owner',
    ]);
    live.kill('SIGKILL');
  }, 60_000);

  it('a pack killed mid-parquet leaves at most the part it was writing and the one it was publishing in scratch', async () => {
    const rig = newRig();
    rig.writePipeline(
      textOf(rig).replace('rows_per_part: 250', 'rows_per_part: 40\n      max_missing_rate: 0.05'),
    );
    const partRecords = (): number => walk(join(rig.cache, 'state/parts')).length;
    const child = rig.start(['run', 'pack', '-j', '1', '--json']);
    const done = collect(child);
    let packing = false;
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('"type":"task-started","task":"pack:')) packing = true;
    });
    const timer = setInterval(() => {
      if (packing && partRecords() >= 3) child.kill('SIGKILL');
    }, 5);
    await done;
    clearInterval(timer);
    const tmp = join(rig.cache, 'tmp');
    const packDirs = readdirSync(tmp).filter((n) => n.startsWith('pack_') && !n.endsWith('.owner'));
    expect(packDirs).toHaveLength(1);
    const parts = readdirSync(join(tmp, packDirs[0] ?? '')).filter((n) => n.startsWith('part-'));
    // Three parts were published; their packed files went with them. Left: at most the part being
    // written and the one being published meanwhile (tasks/pack/run.ts), never the whole parquet.
    expect(parts.filter((n) => n.endsWith('.jsonl.zst')).length).toBeLessThanOrEqual(2);
    const again = await rig.run(['run', 'pack', '-j', '1', '--json']);
    expect(again.code, JSON.stringify(again.events.filter((e) => e.type === 'task-failed'))).toBe(
      0,
    );
    expect(readdirSync(tmp)).toEqual([]);
  }, 120_000);
});
