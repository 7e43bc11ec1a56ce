/**
 * The executor with fake tasks the test controls, over memory stores: concurrency bounds, stage
 * limits, retries (transient only), markers written last, dependents blocked after a failure.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { Failure } from '../../lib/errors.js';
import { err, ok } from '../../lib/errors.js';
import type { RunEvent } from '../../lib/events.js';
import { execute } from '../../lib/executor.js';
import { planOrder } from '../../lib/scheduler.js';
import type { ExecEnv } from '../../lib/executor.js';
import { fingerprintGraph } from '../../lib/fingerprint.js';
import { expandGraph } from '../../lib/graph.js';
import type { Graph } from '../../lib/graph.js';
import { MirrorHub } from '../../lib/io/hub/hub-mirror.js';
import { snapshotMarkers } from '../../lib/io/state/markers.js';
import { MemoryStore } from '../../lib/io/stores/memory-store.js';
import type { Claims } from '../../lib/leases.js';
import type { Pipeline, TaskId, TaskKind } from '../../lib/model.js';
import { objectKey } from '../../lib/model.js';
import { plan } from '../../lib/planner.js';
import type { TaskContext, TaskDefinition, TaskResult } from '../../lib/task-api.js';
import { pipeline, stage, uniformKinds } from '../helpers/fixtures.js';
import { kindNames } from '../../lib/kinds.js';

type Behaviour = (ctx: TaskContext, attempt: number) => Promise<Failure | undefined>;

/** A registry whose every kind runs `behaviour` and writes one small output to the work store. */
function fakeRegistry(behaviour: Behaviour, log: string[]): ExecEnv['registry'] {
  const attempts = new Map<string, number>();
  const def = (kind: TaskKind): TaskDefinition => ({
    kind,
    version: '1',
    tools: {},
    async run(ctx): Promise<ReturnType<typeof ok<TaskResult>> | ReturnType<typeof err<Failure>>> {
      const n = (attempts.get(ctx.task.id) ?? 0) + 1;
      attempts.set(ctx.task.id, n);
      log.push(`start ${ctx.task.id}`);
      const f = await behaviour(ctx, n);
      log.push(`end ${ctx.task.id}`);
      if (f) return err(f);
      const key = `out/${ctx.task.id.replace(/[^\w]/g, '_')}`;
      const put = await ctx.stores.work.put(objectKey(key), ctx.task.id);
      if (!put.ok) return put;
      return ok({
        outputs: [{ store: 'work', key, size: put.value.size, sha256: put.value.sha256 ?? '' }],
        counts: {},
      });
    },
  });
  return Object.fromEntries(kindNames().map((k) => [k, def(k)])) as ExecEnv['registry'];
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function runWith(
  p: Pipeline,
  behaviour: Behaviour,
  jobs: number,
  extra: Partial<ExecEnv> = {},
) {
  const g: Graph = expandGraph(p, ['C++', 'Python'], new Map());
  const fps = fingerprintGraph({
    graph: g,
    stages: p.stages.map((st) => ({ ...st, params: {} })),
    kinds: uniformKinds('1'),
    revision: 'r',
  });
  const state = new MemoryStore('memory://state');
  const work = new MemoryStore('memory://work');
  const cacheDir = mkdtempSync(join(tmpdir(), 'stackflow-exec-'));
  dirs.push(cacheDir);
  const log: string[] = [];
  const events: RunEvent[] = [];
  const pl = plan({
    graph: g,
    fingerprints: fps,
    markers: new Map(),
    stageParams: new Map(),
    paramsArchive: new Map(),
    missingOutputs: new Map(),
    forced: () => false,
  });
  const res = await execute(pl, {
    pipeline: p,
    graph: g,
    fingerprints: fps,
    markers: new Map(),
    stores: { work, bucket: new MemoryStore('memory://bucket'), state },
    hub: new MirrorHub('/nonexistent'),
    content: new MemoryStore('memory://content'),
    registry: fakeRegistry(behaviour, log),
    cacheDir,
    emit: (e) => events.push(e),
    signal: new AbortController().signal,
    jobs,
    ...extra,
  });
  const markers = await snapshotMarkers(state);
  if (!markers.ok) throw new Error('snapshot failed');
  return { res, log, events, markers: markers.value };
}

/** Five once-level shell stages, no discover: a → b, c, d, e independent. */
const flat = (limit?: number): Pipeline => ({
  ...pipeline(),
  stages: [
    stage('a', 'shell'),
    stage('b', 'shell', ['a']),
    ...['c', 'd', 'e'].map((n) =>
      stage(n, 'shell', [], { retries: 2, ...(limit === undefined ? {} : { limit }) }),
    ),
  ],
});

function maxConcurrent(log: string[]): number {
  let cur = 0;
  let max = 0;
  for (const l of log) {
    cur += l.startsWith('start') ? 1 : -1;
    max = Math.max(max, cur);
  }
  return max;
}

describe('executor', () => {
  it('never runs more than -j tasks at once and runs dependencies first', async () => {
    const { res, log } = await runWith(flat(), () => sleep(20).then(() => undefined), 2);
    expect(res.succeeded.size).toBe(5);
    expect(maxConcurrent(log)).toBe(2);
    expect(log.indexOf('end a')).toBeLessThan(log.indexOf('start b'));
  });

  it('honours a stage limit', async () => {
    const p: Pipeline = {
      ...pipeline(),
      stages: [
        stage('a', 'discover'),
        stage('b', 'shell', ['a'], { foreach: 'language', limit: 1 }),
      ],
    };
    const { res, log } = await runWith(p, () => sleep(15).then(() => undefined), 4);
    expect(res.succeeded.size).toBe(4);
    const bLog = log.filter((l) => l.includes(' b:'));
    expect(maxConcurrent(bLog)).toBe(1);
  });

  it('retries transient failures, not others, and writes markers only for successes', async () => {
    const { res, events, markers } = await runWith(
      flat(),
      (ctx, attempt) =>
        Promise.resolve(
          ctx.task.id === 'c' && attempt < 3
            ? { reason: 'transient', message: '503' }
            : ctx.task.id === 'a'
              ? { reason: 'invalid-input', message: 'bad' }
              : undefined,
        ),
      3,
    );
    expect(res.failed.get('a' as TaskId)).toMatchObject({ reason: 'invalid-input' });
    expect(res.succeeded.has('c' as TaskId)).toBe(true);
    expect(res.retries).toBe(2);
    expect(events.filter((e) => e.type === 'retry' && e.task !== undefined).length).toBe(2);
    expect(res.blocked).toEqual(new Set(['b']));
    expect([...markers.keys()].sort()).toEqual(['c', 'd', 'e']);
  });

  it('an exception in a task is a failure of that task, not a crash', async () => {
    const { res } = await runWith(
      flat(),
      (ctx) =>
        ctx.task.id === 'd' ? Promise.reject(new Error('kaboom')) : Promise.resolve(undefined),
      2,
    );
    expect(res.failed.get('d' as TaskId)).toMatchObject({
      reason: 'internal-error',
      message: 'kaboom',
    });
    expect(res.succeeded.size).toBe(4);
  });

  it('a claim lost before its task starts (heartbeats stopped landing) never starts it here', async () => {
    const p: Pipeline = { ...pipeline(), stages: ['a', 'b'].map((n) => stage(n, 'shell')) };
    const gone = new AbortController();
    gone.abort();
    const claims: Claims = {
      describe: 'test claims',
      claim: (task) =>
        Promise.resolve(
          ok({
            kind: 'won' as const,
            claim: {
              signal: task.id === 'b' ? gone.signal : new AbortController().signal,
              confirm: () => Promise.resolve(ok(undefined)),
              release: () => Promise.resolve(),
            },
          }),
        ),
      held: () => Promise.resolve(ok(new Set<string>())),
    };
    const { res, log, events, markers } = await runWith(p, () => Promise.resolve(undefined), 2, {
      claims,
      worker: 'w1',
      order: planOrder,
    });
    expect(res.succeeded).toEqual(new Set(['a']));
    expect(res.deferred).toEqual(new Set(['b']));
    expect(log).not.toContain('start b');
    expect(events.filter((e) => e.type === 'task-started').map((e) => e.task)).toEqual(['a']);
    expect([...markers.keys()]).toEqual(['a']);
  });

  it('a worker whose claims went stale refreshes its view and goes on while a long task runs', async () => {
    // Seven independent stages: `a` runs long; b..e are lost to others (staleAfter is 4 at -j 2);
    // f and g must still start here, before `a` ends, once the view is refreshed.
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const p: Pipeline = { ...pipeline(), stages: names.map((n) => stage(n, 'shell')) };
    const lost = new Set(['b', 'c', 'd', 'e']);
    let refreshes = 0;
    const claims: Claims = {
      describe: 'test claims',
      claim: (task) =>
        Promise.resolve(
          ok(
            lost.has(task.id)
              ? { kind: 'held' as const, by: 'someone' }
              : {
                  kind: 'won' as const,
                  claim: {
                    signal: new AbortController().signal,
                    confirm: () => Promise.resolve(ok(undefined)),
                    release: () => Promise.resolve(),
                  },
                },
          ),
        ),
      held: async () => {
        refreshes++;
        await sleep(5);
        return ok(new Set<string>());
      },
    };
    const { res, log } = await runWith(
      p,
      (ctx) => sleep(ctx.task.id === 'a' ? 400 : 5).then(() => undefined),
      2,
      { claims, worker: 'w1', order: planOrder },
    );
    expect(res.succeeded).toEqual(new Set(['a', 'f', 'g']));
    expect(res.deferred).toEqual(lost);
    expect(log.indexOf('start f')).toBeGreaterThan(-1);
    expect(log.indexOf('start f')).toBeLessThan(log.indexOf('end a'));
    expect(refreshes).toBeGreaterThan(0);
  });
});
