/**
 * PURE. Which of a plan's tasks may start now. The scheduler holds the ready queue, the running
 * counts (`-j` and each stage's `limit:`), and the bookkeeping of a run: succeeded, failed,
 * blocked (every task downstream of a failure), deferred to other workers. It does no I/O and
 * keeps no time; the executor (lib/executor.ts) drives it with events and runs what it answers:
 *
 *     const s = new Scheduler({...});
 *     for (;;) {
 *       for (const step of s.startNow()) run(step);      // later: s.finish(task, outcome)
 *       if (s.running === 0) break;
 *       await (any running task finishing);
 *     }
 *
 * Stopping: after an interrupt (`interrupt()`), after the first failure with `failFast`, and,
 * among workers, after `staleAfter` claims lost in a row (the plan is out of date: others took
 * or finished what it lists) until `viewRefreshed()`. Running tasks always finish.
 *
 * The order in which ready tasks are tried is one policy, `ReadyOrder`: a sort key per task,
 * computed once. The default runs deeper stages first (a parquet is finished before the next one
 * is fetched), then plan order.
 */
import { unreachable } from './errors.js';
import { sha256Hex } from './fingerprint.js';
import type { PlanStep, StageName, TaskId } from './model.js';

/** A plan step that runs a task. */
export type RunStep = Extract<PlanStep, { action: 'run' }>;

/** What the scheduler needs to know of a task of the graph. */
export interface SchedTask {
  /** Its stage: for the stage's limit and its depth. */
  stage: StageName;
  /** The tasks it needs; only those that run in this invocation are waited for. */
  deps: readonly TaskId[];
  /** Its parquet, for tasks of one: how long it takes grows with its size. */
  file?: { size: number } | undefined;
}

/** What a `ReadyOrder` may rank a task by. */
export interface OrderFacts {
  task: TaskId;
  stage: StageName;
  /** Index of its stage in the pipeline's stage order: 0 for the first, larger downstream. */
  depth: number;
  /** Its position among the plan's run steps (a redone dependency: its dependent's position). */
  planIndex: number;
  /** The bytes of its parquet (0 for a task without one): the longer task, roughly. */
  bytes: number;
  /**
   * The bytes of the graph's largest parquet (0 when no task has one): the same for every worker
   * and every round, done or not.
   */
  maxBytes: number;
  /**
   * The task whose place in the plan it takes: itself, or for a dependency redone because its
   * marker was damaged, the (original) dependent that found it so.
   */
  anchor: TaskId;
}

/**
 * The order in which ready tasks are tried: `key` is computed once per task, when the scheduler
 * first learns of it; smaller keys (compared element by element) are tried first, equal keys
 * in the order they became ready.
 */
export interface ReadyOrder {
  key(t: OrderFacts): readonly number[];
}

/** Deeper stages first (finish what was started before opening new work), then plan order. */
export const planOrder: ReadyOrder = { key: (t) => [-t.depth, t.planIndex] };

/**
 * Deeper stages first, then the biggest parquets first (their tasks take longest, and a fleet
 * finishes soonest when the longest tasks start first: the last one to start must not be a long
 * one), then, among tasks of about the same size, an order of this worker's own (a hash of worker
 * and task), so workers sharing a graph start on different tasks instead of racing for the same
 * ones. "About the same": the same octave of bytes, and every parquet SMALL_OCTAVES or more
 * octaves below the graph's largest counts as one size. Finer classes keep longest-first closer
 * to exact but leave workers walking the many small tasks (the dataset's one-file languages
 * spread over ten octaves, 60–80 tasks each) in one shared order, racing for each: measured on the
 * rehearsal, the end of the run, where only those are left, lost 1,066 of 1,983 claims with one
 * class per octave; the order inside the top octave and among the small ones costs the makespan
 * little (a small one takes at most 1/2^(SMALL_OCTAVES-1) of the longest task).
 */
export function workerSpread(worker: string): ReadyOrder {
  return {
    key: (t) => [
      -t.depth,
      -Math.max(sizeClass(t.bytes), sizeClass(t.maxBytes) - SMALL_OCTAVES),
      parseInt(sha256Hex(`${worker}\0${t.anchor}`).slice(0, 8), 16),
    ],
  };
}

/** Parquets this many octaves (or more) below the graph's largest are one size class. */
export const SMALL_OCTAVES = 5;

/** The octave of a size: log2(bytes), rounded down; 0 for nothing. */
export const sizeClass = (bytes: number): number => (bytes > 1 ? Math.floor(Math.log2(bytes)) : 0);

/** How a started task ended, as far as scheduling cares. */
export type TaskOutcome =
  /** Done: its dependents may become ready. */
  | { type: 'succeeded' }
  /** Failed (or interrupted): every task downstream of it is blocked. */
  | { type: 'failed' }
  /**
   * Another worker has it: a claim cost a request and lost, could not be made (a transient
   * error), or its lease went to another worker while it ran. Its dependents keep waiting;
   * `staleAfter` of these in a row stop the scheduler.
   */
  | { type: 'claim-lost' }
  /** Another worker holds it, known without a claim request. Its dependents keep waiting. */
  | { type: 'held-elsewhere' }
  /** The markers of `deps` turned out damaged or gone: run them first, then this task again. */
  | { type: 'needs-redo'; deps: readonly TaskId[] };

/** A task blocked because `because` failed (or was blocked itself). */
export interface Blocked {
  task: TaskId;
  stage: StageName;
  because: TaskId;
}

export interface SchedulerOptions {
  /** The plan's steps in plan order; only `run` steps are scheduled. */
  steps: readonly PlanStep[];
  /** Every task of the graph (a dependency redone after damage may not be in the plan's run). */
  tasks: ReadonlyMap<TaskId, SchedTask>;
  /** Stage names in topological order (for `OrderFacts.depth`). */
  stageOrder: readonly StageName[];
  /** Max tasks of a stage running at once (`limit:`); absent: only `jobs` bounds it. */
  limits: ReadonlyMap<StageName, number>;
  /** Max tasks running at once (`-j`). */
  jobs: number;
  /** Start nothing new after the first failure. */
  failFast?: boolean;
  /** Default: `planOrder`. */
  order?: ReadyOrder;
  /** Among workers: stop after this many claims lost in a row. Absent: never. */
  staleAfter?: number;
}

const compareKeys = (a: readonly number[], b: readonly number[]): number => {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
};

export class Scheduler {
  readonly #o: SchedulerOptions;
  readonly #order: ReadyOrder;
  readonly #steps = new Map<TaskId, RunStep>();
  /** Run-step dependencies not yet succeeded, per waiting task. */
  readonly #waiting = new Map<TaskId, number>();
  readonly #dependents = new Map<TaskId, TaskId[]>();
  readonly #facts = new Map<TaskId, OrderFacts>();
  readonly #keys = new Map<TaskId, readonly number[]>();
  readonly #depth: ReadonlyMap<StageName, number>;
  /** The graph's largest parquet (`OrderFacts.maxBytes`). */
  readonly #maxBytes: number;
  /** Kept sorted by key: one sort now, then binary insertion (100k-task graphs stay linear-ish). */
  readonly #ready: TaskId[];
  readonly #runningPerStage = new Map<StageName, number>();
  #running = 0;
  #lostInARow = 0;
  #interrupted = false;
  readonly #succeeded = new Set<TaskId>();
  readonly #failed = new Set<TaskId>();
  readonly #blocked = new Set<TaskId>();
  readonly #deferred = new Set<TaskId>();

  constructor(o: SchedulerOptions) {
    this.#o = o;
    this.#order = o.order ?? planOrder;
    this.#depth = new Map(o.stageOrder.map((s, i) => [s, i]));
    const steps = o.steps.filter((s): s is RunStep => s.action === 'run');
    for (const s of steps) this.#steps.set(s.task, s);
    let maxBytes = 0;
    for (const t of o.tasks.values()) maxBytes = Math.max(maxBytes, t.file?.size ?? 0);
    this.#maxBytes = maxBytes;
    steps.forEach((s, i) => {
      this.#learn(s, i, s.task);
    });
    for (const s of steps) {
      const deps = (o.tasks.get(s.task)?.deps ?? []).filter((d) => this.#steps.has(d));
      this.#waiting.set(s.task, deps.length);
      for (const d of deps) this.#addDependent(d, s.task);
    }
    this.#ready = steps
      .filter((s) => this.#waiting.get(s.task) === 0)
      .map((s) => s.task)
      .sort((a, b) => this.#compare(a, b));
  }

  /** Tasks started and not finished. */
  get running(): number {
    return this.#running;
  }

  /** Whether nothing new starts (interrupt, fail-fast after a failure, or a stale plan). */
  get stopped(): boolean {
    return this.#interrupted || this.stale || (this.#o.failFast === true && this.#failed.size > 0);
  }

  /** Among workers: `staleAfter` claims were lost in a row (the plan looks out of date). */
  get stale(): boolean {
    return this.#o.staleAfter !== undefined && this.#lostInARow >= this.#o.staleAfter;
  }

  /**
   * The worker's view of what others hold and finished was refreshed after the plan went stale:
   * claims the view answers cost nothing and are not lost claims, so starting may go on (without
   * this, a stale worker idles its free slots until its longest running task ends).
   */
  viewRefreshed(): void {
    this.#lostInARow = 0;
  }

  get succeeded(): ReadonlySet<TaskId> {
    return this.#succeeded;
  }
  get failed(): ReadonlySet<TaskId> {
    return this.#failed;
  }
  /** Downstream of a failure: never started. */
  get blocked(): ReadonlySet<TaskId> {
    return this.#blocked;
  }
  /** Left to other workers (claim lost or held elsewhere). */
  get deferred(): ReadonlySet<TaskId> {
    return this.#deferred;
  }
  /** Ready tasks, in the order they would be tried (for tests and diagnostics). */
  get ready(): readonly TaskId[] {
    return this.#ready;
  }

  /** Start nothing new from now on; running tasks finish. */
  interrupt(): void {
    this.#interrupted = true;
  }

  /**
   * The tasks that may start now, in order, counted as running from here on: as many as `jobs`
   * allows, skipping (not dropping) tasks whose stage is at its limit.
   */
  startNow(): RunStep[] {
    const started: RunStep[] = [];
    if (this.stopped) return started;
    for (let i = 0; i < this.#ready.length && this.#running < this.#o.jobs;) {
      const id = this.#ready[i] as TaskId;
      const step = this.#step(id);
      const n = this.#runningPerStage.get(step.stage) ?? 0;
      const limit = this.#o.limits.get(step.stage);
      if (limit !== undefined && n >= limit) {
        i++;
        continue;
      }
      this.#ready.splice(i, 1);
      this.#runningPerStage.set(step.stage, n + 1);
      this.#running++;
      started.push(step);
    }
    return started;
  }

  /** A started task ended. Returns the tasks this blocks, in the order they were blocked. */
  finish(id: TaskId, outcome: TaskOutcome): Blocked[] {
    const step = this.#step(id);
    this.#running--;
    this.#runningPerStage.set(step.stage, (this.#runningPerStage.get(step.stage) ?? 1) - 1);
    switch (outcome.type) {
      case 'needs-redo':
        return this.#redoFirst(id, outcome.deps);
      case 'claim-lost':
        this.#lostInARow++;
        this.#deferred.add(id);
        return [];
      case 'held-elsewhere':
        // Costs no request: says nothing about the plan being out of date.
        this.#deferred.add(id);
        return [];
      case 'succeeded':
        this.#lostInARow = 0;
        this.#succeeded.add(id);
        for (const d of this.#dependents.get(id) ?? []) {
          const left = (this.#waiting.get(d) ?? 1) - 1;
          this.#waiting.set(d, left);
          if (left === 0 && !this.#blocked.has(d)) this.#makeReady(d);
        }
        return [];
      case 'failed':
        this.#failed.add(id);
        return this.#block(id);
      default:
        return unreachable(outcome);
    }
  }

  #step(id: TaskId): RunStep {
    const s = this.#steps.get(id);
    if (s === undefined) throw new Error(`Internal error: ${id} is not scheduled`);
    return s;
  }

  #learn(step: RunStep, planIndex: number, anchor: TaskId): void {
    const facts: OrderFacts = {
      task: step.task,
      stage: step.stage,
      depth: this.#depth.get(step.stage) ?? 0,
      planIndex,
      bytes: this.#o.tasks.get(step.task)?.file?.size ?? 0,
      maxBytes: this.#maxBytes,
      anchor,
    };
    this.#facts.set(step.task, facts);
    this.#keys.set(step.task, this.#order.key(facts));
  }

  #compare(a: TaskId, b: TaskId): number {
    return compareKeys(this.#keys.get(a) ?? [], this.#keys.get(b) ?? []);
  }

  #addDependent(of: TaskId, dependent: TaskId): void {
    const list = this.#dependents.get(of);
    if (list === undefined) this.#dependents.set(of, [dependent]);
    else list.push(dependent);
  }

  /** Binary insertion after every task of an equal key. */
  #makeReady(id: TaskId): void {
    let lo = 0;
    let hi = this.#ready.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#compare(this.#ready[mid] as TaskId, id) <= 0) lo = mid + 1;
      else hi = mid;
    }
    this.#ready.splice(lo, 0, id);
  }

  /** Blocks everything downstream of `from`; returns what it blocked, depth first. */
  #block(from: TaskId): Blocked[] {
    const out: Blocked[] = [];
    const walk = (f: TaskId): void => {
      for (const d of this.#dependents.get(f) ?? []) {
        if (this.#blocked.has(d)) continue;
        this.#blocked.add(d);
        const st = this.#steps.get(d);
        if (st) out.push({ task: d, stage: st.stage, because: f });
        walk(d);
      }
    };
    walk(from);
    return out;
  }

  /**
   * `id` found the markers of `deps` damaged or gone when it read its upstream outputs (they
   * were planned as done): run them in this invocation, then `id` again.
   */
  #redoFirst(id: TaskId, deps: readonly TaskId[]): Blocked[] {
    const facts = this.#facts.get(id);
    let left = 0;
    for (const d of deps) {
      if (this.#succeeded.has(d)) continue;
      this.#addDependent(d, id);
      if (this.#failed.has(d) || this.#blocked.has(d)) return this.#block(d);
      left++;
      if (this.#steps.has(d)) continue;
      const dep = this.#o.tasks.get(d);
      if (dep === undefined) throw new Error(`Internal error: dep ${d} unknown`);
      const step: RunStep = { action: 'run', task: d, stage: dep.stage, reason: 'state-damaged' };
      this.#steps.set(d, step);
      this.#learn(step, facts?.planIndex ?? 0, facts?.anchor ?? id);
      const before = dep.deps.filter((x) => this.#steps.has(x) && !this.#succeeded.has(x));
      this.#waiting.set(d, before.length);
      for (const x of before) this.#addDependent(x, d);
      // One of them failed already: `d` (and so `id`) can never run; say so now.
      const dead = before.find((x) => this.#failed.has(x) || this.#blocked.has(x));
      if (dead !== undefined) return this.#block(dead);
      if (before.length === 0) this.#makeReady(d);
    }
    this.#waiting.set(id, left);
    if (left === 0) this.#makeReady(id);
    return [];
  }
}
