/**
 * The scheduler alone: no stores, no timers, no tasks. A plan is built from a few lines of
 * fixture, the test plays the events ("finished ok", "failed", "claim lost", ...) and checks
 * what the scheduler lets start.
 */
import { describe, expect, it } from 'vitest';
import type { PlanStep, StageName, TaskId } from '../../lib/model.js';
import type { ReadyOrder, SchedTask, SchedulerOptions, TaskOutcome } from '../../lib/scheduler.js';
import { planOrder, Scheduler, workerSpread } from '../../lib/scheduler.js';

const id = (s: string): TaskId => s as TaskId;
const ids = (xs: readonly { task: TaskId }[]): string[] => xs.map((x) => x.task);

/**
 * A graph from `task: stage <- dep dep` lines (stage order: first appearance), every task
 * planned to run unless listed in `fresh`.
 */
function fixture(
  lines: string[],
  o: Partial<SchedulerOptions> & { fresh?: string[]; sizes?: Record<string, number> } = {},
): SchedulerOptions {
  const tasks = new Map<TaskId, SchedTask>();
  const stageOrder: StageName[] = [];
  const steps: PlanStep[] = [];
  for (const line of lines) {
    const [head = '', deps = ''] = line.split('<-');
    const [name = '', stage = ''] = head.split(':').map((x) => x.trim());
    const st = stage as StageName;
    if (!stageOrder.includes(st)) stageOrder.push(st);
    const size = o.sizes?.[name];
    tasks.set(id(name), {
      stage: st,
      deps: deps.trim() ? deps.trim().split(/\s+/).map(id) : [],
      ...(size !== undefined ? { file: { size } } : {}),
    });
    steps.push(
      o.fresh?.includes(name) === true
        ? { action: 'skip', task: id(name), stage: st, reason: 'fresh' }
        : { action: 'run', task: id(name), stage: st, reason: 'missing' },
    );
  }
  return { steps, tasks, stageOrder, limits: new Map(), jobs: 1, ...o };
}

/**
 * Plays a whole run: starts what may start, then finishes the earliest started task with
 * `outcome(task)` (default: succeeded), until nothing runs. Returns the start order and the
 * tasks blocked, as `task<because`.
 */
function drain(
  s: Scheduler,
  outcome: (task: string) => TaskOutcome = () => ({ type: 'succeeded' }),
): { started: string[]; blocked: string[]; maxRunning: number } {
  const started: string[] = [];
  const blocked: string[] = [];
  const running: string[] = [];
  let maxRunning = 0;
  for (let guard = 0; guard < 1000; guard++) {
    for (const st of s.startNow()) {
      started.push(st.task);
      running.push(st.task);
    }
    maxRunning = Math.max(maxRunning, s.running);
    const next = running.shift();
    if (next === undefined) break;
    for (const b of s.finish(id(next), outcome(next))) blocked.push(`${b.task}<${b.because}`);
  }
  return { started, blocked, maxRunning };
}

describe('scheduler', () => {
  it('an empty plan starts nothing and is done at once', () => {
    const s = new Scheduler(fixture([]));
    expect(s.startNow()).toEqual([]);
    expect(s.running).toBe(0);
    expect(s.stopped).toBe(false);
  });

  it('a plan where everything is up to date starts nothing', () => {
    const s = new Scheduler(fixture(['a: x', 'b: y <- a'], { fresh: ['a', 'b'], jobs: 4 }));
    expect(s.startNow()).toEqual([]);
    expect(drain(s).started).toEqual([]);
    expect(s.succeeded.size).toBe(0);
  });

  it('does not wait for a dependency that is up to date', () => {
    const s = new Scheduler(fixture(['a: x', 'b: y <- a'], { fresh: ['a'] }));
    expect(ids(s.startNow())).toEqual(['b']);
  });

  it('runs dependencies first and a task only when all of its dependencies succeeded', () => {
    const s = new Scheduler(fixture(['a: x', 'b: x', 'c: y <- a b'], { jobs: 4 }));
    expect(ids(s.startNow())).toEqual(['a', 'b']);
    s.finish(id('a'), { type: 'succeeded' });
    expect(s.startNow()).toEqual([]);
    s.finish(id('b'), { type: 'succeeded' });
    expect(s.startNow()).toEqual([{ action: 'run', task: id('c'), stage: 'y', reason: 'missing' }]);
  });

  it('never has more than `jobs` tasks running', () => {
    const s = new Scheduler(fixture(['a: x', 'b: x', 'c: x', 'd: x', 'e: x'], { jobs: 2 }));
    expect(ids(s.startNow())).toEqual(['a', 'b']);
    expect(s.startNow()).toEqual([]);
    s.finish(id('a'), { type: 'succeeded' });
    expect(ids(s.startNow())).toEqual(['c']);
    expect(s.running).toBe(2);
    s.finish(id('b'), { type: 'succeeded' });
    s.finish(id('c'), { type: 'succeeded' });
    expect(drain(s).maxRunning).toBe(2);
    expect(s.succeeded.size).toBe(5);
  });

  it('tries deeper stages first, then plan order', () => {
    // Two parquets through fetch → pack: the first one's pack goes before the second fetch.
    const s = new Scheduler(
      fixture(['f1: fetch', 'f2: fetch', 'f3: fetch', 'p1: pack <- f1', 'p2: pack <- f2'], {
        jobs: 1,
      }),
    );
    expect(drain(s).started).toEqual(['f1', 'p1', 'f2', 'p2', 'f3']);
  });

  it('keeps ready tasks of the same key in the order they became ready', () => {
    const s = new Scheduler(
      fixture(['a: x', 'b: x', 'c: y <- b', 'd: y <- a'], {
        jobs: 2,
        order: { key: (t) => [-t.depth] },
      }),
    );
    expect(ids(s.startNow())).toEqual(['a', 'b']);
    s.finish(id('b'), { type: 'succeeded' });
    s.finish(id('a'), { type: 'succeeded' });
    expect(s.ready).toEqual(['c', 'd']);
  });

  it('honours each stage limit separately, skipping a limited stage without dropping it', () => {
    const s = new Scheduler(
      fixture(['a1: a', 'a2: a', 'a3: a', 'b1: b', 'b2: b', 'c1: c'], {
        jobs: 5,
        limits: new Map([
          ['a' as StageName, 1],
          ['b' as StageName, 2],
        ]),
      }),
    );
    expect(ids(s.startNow())).toEqual(['c1', 'b1', 'b2', 'a1']);
    s.finish(id('b1'), { type: 'succeeded' });
    expect(s.startNow()).toEqual([]);
    s.finish(id('a1'), { type: 'succeeded' });
    expect(ids(s.startNow())).toEqual(['a2']);
    let maxA = 0;
    const running = new Set<string>(['a2', 'b2', 'c1']);
    for (const t of ['b2', 'c1', 'a2', 'a3']) {
      running.delete(t);
      s.finish(id(t), { type: 'succeeded' });
      for (const st of s.startNow()) running.add(st.task);
      maxA = Math.max(maxA, [...running].filter((r) => r.startsWith('a')).length);
    }
    expect(maxA).toBe(1);
    expect(s.succeeded.size).toBe(6);
  });

  it('blocks everything downstream of a failure and keeps going with the rest', () => {
    const s = new Scheduler(
      fixture(['a: x', 'b: y <- a', 'c: z <- b', 'd: z <- a', 'e: x', 'f: y <- e'], { jobs: 1 }),
    );
    const run = drain(s, (t) => (t === 'a' ? { type: 'failed' } : { type: 'succeeded' }));
    expect(run.started).toEqual(['a', 'e', 'f']);
    expect(run.blocked).toEqual(['b<a', 'c<b', 'd<a']);
    expect([...s.failed]).toEqual(['a']);
    expect(s.blocked).toEqual(new Set(['b', 'c', 'd']));
    expect(s.succeeded).toEqual(new Set(['e', 'f']));
    expect(s.stopped).toBe(false);
  });

  it('reports a task blocked by two failures once', () => {
    const s = new Scheduler(fixture(['a: x', 'b: x', 'c: y <- a b'], { jobs: 2 }));
    s.startNow();
    expect(s.finish(id('a'), { type: 'failed' })).toEqual([
      { task: 'c', stage: 'y', because: 'a' },
    ]);
    expect(s.finish(id('b'), { type: 'failed' })).toEqual([]);
  });

  it('with fail-fast starts nothing after the first failure, while running tasks finish', () => {
    const s = new Scheduler(fixture(['a: x', 'b: x', 'c: x', 'd: x'], { jobs: 2, failFast: true }));
    expect(ids(s.startNow())).toEqual(['a', 'b']);
    s.finish(id('a'), { type: 'failed' });
    expect(s.stopped).toBe(true);
    expect(s.startNow()).toEqual([]);
    expect(s.running).toBe(1);
    s.finish(id('b'), { type: 'succeeded' });
    expect(s.startNow()).toEqual([]);
    expect(s.running).toBe(0);
    expect([...s.succeeded]).toEqual(['b']);
  });

  it('an interrupt stops starting tasks', () => {
    const s = new Scheduler(fixture(['a: x', 'b: x', 'c: x'], { jobs: 1 }));
    expect(ids(s.startNow())).toEqual(['a']);
    s.interrupt();
    s.finish(id('a'), { type: 'succeeded' });
    expect(s.startNow()).toEqual([]);
    expect(s.stopped).toBe(true);
  });

  it('a lost claim leaves the task to another worker and its dependents waiting', () => {
    const s = new Scheduler(fixture(['a: x', 'b: y <- a', 'c: x'], { jobs: 1, staleAfter: 4 }));
    const run = drain(s, (t) => (t === 'a' ? { type: 'claim-lost' } : { type: 'succeeded' }));
    expect(run.started).toEqual(['a', 'c']);
    expect(run.blocked).toEqual([]);
    expect(s.deferred).toEqual(new Set(['a']));
    expect(s.blocked.size).toBe(0);
    expect(s.failed.size).toBe(0);
    expect(s.ready).toEqual([]);
  });

  it('stops after `staleAfter` claims lost in a row; a success resets the count', () => {
    const lines = ['a: x', 'b: x', 'c: x', 'd: x', 'e: x', 'f: x'];
    const s = new Scheduler(fixture(lines, { jobs: 1, staleAfter: 2 }));
    const outcomes: Record<string, TaskOutcome['type']> = {
      a: 'claim-lost',
      b: 'succeeded',
      c: 'claim-lost',
      d: 'held-elsewhere', // costs no request: does not count
      e: 'claim-lost',
    };
    const run = drain(s, (t) => ({ type: outcomes[t] ?? 'succeeded' }) as TaskOutcome);
    expect(run.started).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(s.stopped).toBe(true);
    expect(s.deferred).toEqual(new Set(['a', 'c', 'd', 'e']));
  });

  it('a refreshed view lifts a stale stop: the rest of the ready list is tried', () => {
    const lines = ['a: x', 'b: x', 'c: x', 'd: x'];
    const s = new Scheduler(fixture(lines, { jobs: 1, staleAfter: 2 }));
    for (const t of ['a', 'b']) {
      expect(ids(s.startNow())).toEqual([t]);
      s.finish(id(t), { type: 'claim-lost' });
    }
    expect(s.stale).toBe(true);
    expect(s.startNow()).toEqual([]);
    s.viewRefreshed();
    expect(s.stale).toBe(false);
    expect(s.stopped).toBe(false);
    expect(drain(s, () => ({ type: 'succeeded' })).started).toEqual(['c', 'd']);
  });

  it('without `staleAfter` lost claims never stop it', () => {
    const s = new Scheduler(fixture(['a: x', 'b: x', 'c: x', 'd: x', 'e: x'], { jobs: 1 }));
    expect(drain(s, () => ({ type: 'claim-lost' })).started).toHaveLength(5);
    expect(s.stopped).toBe(false);
  });

  it('redoes a dependency whose marker was damaged, then the task that found it', () => {
    // a was planned as up to date; b finds its marker damaged.
    const s = new Scheduler(fixture(['a: x', 'b: y <- a', 'c: z <- b'], { fresh: ['a'] }));
    expect(ids(s.startNow())).toEqual(['b']);
    expect(s.finish(id('b'), { type: 'needs-redo', deps: [id('a')] })).toEqual([]);
    expect(s.startNow()).toEqual([
      { action: 'run', task: id('a'), stage: 'x', reason: 'state-damaged' },
    ]);
    s.finish(id('a'), { type: 'succeeded' });
    expect(ids(s.startNow())).toEqual(['b']);
    s.finish(id('b'), { type: 'succeeded' });
    expect(ids(s.startNow())).toEqual(['c']);
  });

  it('a redo of a dependency that failed blocks the task that asked for it', () => {
    const s = new Scheduler(fixture(['a: x', 'b: y', 'c: z <- b'], { jobs: 2, fresh: ['b'] }));
    expect(ids(s.startNow())).toEqual(['c', 'a']);
    s.finish(id('a'), { type: 'failed' });
    expect(s.finish(id('c'), { type: 'needs-redo', deps: [id('a')] })).toEqual([
      { task: 'c', stage: 'z', because: 'a' },
    ]);
    expect(s.startNow()).toEqual([]);
  });

  it('a redone dependency whose own dependency failed blocks it and the task that asked', () => {
    // x runs (and fails); d was planned as up to date; t finds d's marker damaged afterwards.
    const s = new Scheduler(fixture(['x: a', 'd: b <- x', 't: c <- d'], { jobs: 2, fresh: ['d'] }));
    expect(ids(s.startNow())).toEqual(['t', 'x']);
    expect(s.finish(id('x'), { type: 'failed' })).toEqual([]);
    expect(s.finish(id('t'), { type: 'needs-redo', deps: [id('d')] })).toEqual([
      { task: 'd', stage: 'b', because: 'x' },
      { task: 't', stage: 'c', because: 'd' },
    ]);
    expect(s.startNow()).toEqual([]);
    expect(s.running).toBe(0);
  });

  it('tries ready tasks in the order an injected policy gives', () => {
    const reverse: ReadyOrder = { key: (t) => [-t.planIndex] };
    const s = new Scheduler(fixture(['a: x', 'b: x', 'c: x'], { order: reverse }));
    expect(drain(s).started).toEqual(['c', 'b', 'a']);
    expect(
      planOrder.key({
        task: id('a'),
        stage: 'x' as StageName,
        depth: 2,
        planIndex: 7,
        bytes: 0,
        maxBytes: 0,
        anchor: id('a'),
      }),
    ).toEqual([-2, 7]);
  });

  it('workers spread over a stage in orders of their own, deeper stages still first', () => {
    const lines = [
      ...Array.from({ length: 20 }, (_, i) => `f${i}: fetch`),
      'p0: pack <- f0',
      'p1: pack <- f1',
    ];
    const firsts = ['w1', 'w2', 'w3', 'w4'].map((w) => {
      const s = new Scheduler(fixture(lines, { jobs: 1, order: workerSpread(w) }));
      return s.ready[0];
    });
    expect(new Set(firsts).size).toBeGreaterThan(1);
    // Same worker, same order.
    const again = new Scheduler(fixture(lines, { jobs: 1, order: workerSpread('w1') }));
    expect(again.ready[0]).toBe(firsts[0]);
    // A pack, once ready, goes before any fetch.
    const s = new Scheduler(fixture(lines, { jobs: 1, fresh: ['f0'], order: workerSpread('w1') }));
    expect(s.ready[0]).toBe('p0');
  });

  it('workers start the biggest parquets first, and spread among those of about the same size', () => {
    const sizes: Record<string, number> = {};
    const lines: string[] = [];
    for (let i = 0; i < 6; i++) {
      lines.push(`big${String(i)}: pack`, `small${String(i)}: pack`);
      sizes[`big${String(i)}`] = 2.5e9 + i * 1e7; // one size class
      sizes[`small${String(i)}`] = 20e6 + i * 1e6;
    }
    lines.push('mid: pack');
    sizes.mid = 400e6;
    const orders = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6'].map(
      (w) => new Scheduler(fixture(lines, { jobs: 1, sizes, order: workerSpread(w) })).ready,
    );
    for (const ready of orders) {
      // Longest first: the six big ones, then the middle one, then the small ones.
      expect(ready.slice(0, 6).every((t) => t.startsWith('big'))).toBe(true);
      expect(ready[6]).toBe('mid');
    }
    // Not every worker goes for the same big one first.
    expect(new Set(orders.map((r) => r[0])).size).toBeGreaterThan(1);
  });

  it('the small parquets (5+ octaves below the largest) are one class: workers spread over all of them, not one octave at a time', () => {
    // The end of a fleet's run: the one-file languages, ten octaves of ~60 small parquets each.
    // One class per octave had every worker walk the same ~60 at once, racing for each.
    const sizes: Record<string, number> = { big: 3e9 };
    const lines = ['big: pack'];
    for (let o = 0; o < 10; o++) {
      for (let i = 0; i < 8; i++) {
        const name = `s${String(o)}_${String(i)}`;
        lines.push(`${name}: pack`);
        sizes[name] = 2 ** (24 - o) + i; // 16 MiB down to 32 KiB: all 7+ octaves below `big`
      }
    }
    lines.push('near: pack');
    sizes.near = 2 ** 28; // 3.5 octaves below `big`: still a class of its own
    const orders = ['w1', 'w2', 'w3', 'w4'].map(
      (w) => new Scheduler(fixture(lines, { jobs: 1, sizes, order: workerSpread(w) })).ready,
    );
    for (const ready of orders) {
      expect(ready.slice(0, 2)).toEqual(['big', 'near']);
      // A worker's first eight small ones come from several octaves, not all from the largest.
      const octaves = new Set(ready.slice(2, 10).map((t) => t.split('_')[0]));
      expect(octaves.size).toBeGreaterThan(3);
    }
    // Workers' first picks among them differ.
    expect(new Set(orders.map((r) => r[2])).size).toBeGreaterThan(1);
    // The classes are the graph's, not the plan's: a later round (or a late worker) whose plan
    // no longer runs the big ones walks the small ones the same way.
    const late = new Scheduler(
      fixture(lines, { jobs: 1, sizes, fresh: ['big', 'near'], order: workerSpread('w1') }),
    ).ready;
    expect(late).toEqual(orders[0]?.slice(2));
  });

  it('finishing a task that was never started is an internal error', () => {
    const s = new Scheduler(fixture(['a: x']));
    expect(() => s.finish(id('zz'), { type: 'succeeded' })).toThrow(/Internal error/);
  });
});
