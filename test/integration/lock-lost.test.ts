/**
 * A plain run that loses its state lock (lib/run-lock.ts) while a task runs, through the real
 * CLI: the task it stops fails with `lock-lost`, saying so and what to do (not "interrupted", as
 * if the user had pressed Ctrl-C) — in its `task-failed` event, the printed line and the closing
 * summary — and the fenced run writes nothing of it to the state (no marker, no failure record:
 * the state may be another run's now). Exit 1; the next run does the task. Both ways of losing
 * it: another run took it over (a later epoch), and its heartbeats stopped landing (the state
 * store on loopback S3 failing every request to the lock for half its TTL, 30 s).
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { collect, Rig, walk } from '../helpers/rig.js';
import { startS3Server } from '../servers/s3/harness.js';
import { shellPipeline } from '../helpers/shell-pipeline.js';
import type { S3TestServer } from '../servers/s3/harness.js';

const PIPELINE = shellPipeline('sleep $SLEEP; echo done > {outputs}');

const rigs: Rig[] = [];
afterEach(() => {
  for (const r of rigs.splice(0)) r.cleanup();
});

let s3: S3TestServer;
beforeAll(async () => {
  s3 = await startS3Server({ buckets: ['lockstate'] });
}, 60_000);
afterAll(async () => {
  await s3.stop();
});

type Failed = { task: string; failure: { reason: string; message: string } };

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

describe('a run that loses its state lock', () => {
  it('the task it stops fails with lock-lost, saying why and what to do; nothing is recorded; exit 1', async () => {
    const rig = new Rig({ pipeline: PIPELINE });
    rigs.push(rig);
    rig.env = { SLEEP: '43.125' };
    const child = rig.start(['run', 'slow', '--json']);
    const done = collect(child);
    await waitFor(child, '"type":"task-started","task":"slow"');
    // Another run took the lock over: a later epoch, which the holder's next heartbeat lists.
    const dir = join(rig.cache, 'state/locks/run');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'e00000001.json'),
      JSON.stringify({
        worker: 'gpu-node-7-4242',
        host: 'gpu-node-7',
        pid: 4242,
        since: new Date().toISOString(),
        ttlMs: 60_000,
        token: 'x',
      }),
    );
    const r = await done;
    expect(r.code, r.stderr).toBe(1);
    const failed = r.events.filter((e) => e.type === 'task-failed');
    expect(failed).toHaveLength(1);
    const failure = (failed[0] as { task: string; failure: { reason: string; message: string } })
      .failure;
    expect(failed[0]).toMatchObject({ task: 'slow' });
    expect(failure.reason, JSON.stringify(r.events.slice(-4))).toBe('lock-lost');
    expect(failure.message).not.toContain('interrupted');
    expect(failure.message).toContain('lost the state lock');
    expect(failure.message).toContain('another run took it over');
    expect(failure.message).toContain('stackflow status');
    expect(failure.message).toContain('rerun');
    expect(r.stderr).toContain(`✗ slow (lock-lost): ${failure.message}`);
    const end = r.events.find((e) => e.type === 'run-finished');
    expect(end).toMatchObject({ ok: false, interrupted: false, failed: 1 });
    expect((end as { failures: unknown[] }).failures).toEqual([
      expect.objectContaining({
        task: 'slow',
        reason: 'lock-lost',
        message: failure.message,
        retry: 'stackflow run slow',
      }),
    ]);
    // Fenced: the state is not this run's any more, so nothing of the task is written to it.
    const state = walk(join(rig.cache, 'state'));
    expect(state.filter((k) => k.includes('slow'))).toEqual([]);
    expect(existsSync(join(rig.cache, 'bucket/slow.txt'))).toBe(false);
    // The other run is gone: the next run takes the lock and does the task.
    rmSync(dir, { recursive: true });
    rig.env = { SLEEP: '0' };
    const again = await rig.run(['run', 'slow', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.events).toContainEqual(
      expect.objectContaining({ type: 'task-succeeded', task: 'slow' }),
    );
  }, 60_000);

  it('whose heartbeats stop landing (the state store fails): the task says so and points at the store', async () => {
    const rig = new Rig({
      pipeline: `${PIPELINE}state: s3://lockstate/state\ns3:\n  lockstate: { endpoint: '${s3.endpoint}' }\n`,
    });
    rigs.push(rig);
    rig.env = { ...s3.env, SLEEP: '47.375' };
    const child = rig.start(['run', 'slow', '--json']);
    const done = collect(child);
    await waitFor(child, '"type":"task-started","task":"slow"');
    // Every request to the lock fails from now on: its heartbeats stop landing.
    await s3.setFaults({ rate: 1, kinds: ['500'], keyPrefix: 'state/locks/' });
    try {
      const r = await done;
      expect(r.code, r.stderr).toBe(1);
      const failed = r.events.filter((e) => e.type === 'task-failed') as Failed[];
      expect(failed.map((f) => [f.task, f.failure.reason])).toEqual([['slow', 'lock-lost']]);
      const { message } = failed[0]?.failure ?? { message: '' };
      expect(message).toContain(
        'lost the state lock (its heartbeats stopped landing for half its TTL: the state store was unreachable',
      );
      expect(message).toContain('`stackflow doctor`');
      expect(r.stderr).toContain(`✗ slow (lock-lost): ${message}`);
    } finally {
      await s3.setFaults(null);
    }
    // The lost epoch stays (its holder deletes nothing); its process is gone: taken over at once.
    rig.env = { ...s3.env, SLEEP: '0' };
    const again = await rig.run(['run', 'slow', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.events).toContainEqual(
      expect.objectContaining({ type: 'task-succeeded', task: 'slow' }),
    );
  }, 120_000);
});
