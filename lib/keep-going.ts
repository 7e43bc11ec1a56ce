/**
 * PURE. Keeping going after a failure (like `make -k`): a failed task takes down exactly what
 * depends on it, directly or by awaiting its manifest, and everything else still runs. The
 * ledger remembers, for one invocation, which tasks failed and which failure each blocked task
 * waits on, and turns that into the summary a run ends with.
 *
 *   discover:Rust ✗ ──► fetch:Rust/* ──► pack:Rust/*        (blocked, counted against discover:Rust)
 *   discover:C    ✓ ──► fetch:C/a ✓ ──► pack:C/a ✓          (runs in the same invocation)
 */
import type { Failure } from './errors.js';
import type { Graph } from './graph.js';
import type { Plan, StageName, TaskId } from './model.js';

/** One failed task in the run's closing summary (and in the `run-finished` event). */
export interface FailureSummary {
  task: TaskId;
  stage: StageName;
  /** The failure's kind (`transient`, `invalid-input`, `checksum-mismatch` …). */
  reason: Failure['reason'];
  /** The last attempt's error message. */
  message: string;
  /** Tasks of this run that did not run because they wait on this one. */
  blocked: number;
  /** The command that runs this task (and what it needs) again. */
  retry: string;
  /** Set when the task failed in another process (`shard 1/4`), which will not retry it. */
  elsewhere?: string;
}

export class FailureLedger {
  private readonly failed = new Map<
    TaskId,
    { stage: StageName; failure: Pick<Failure, 'reason' | 'message'>; elsewhere?: string }
  >();
  /** Blocked task → the failed task it ultimately waits on. */
  private readonly blockedBy = new Map<TaskId, TaskId>();

  /** Tasks that failed in this invocation (not tried again by it). */
  get failures(): ReadonlyMap<TaskId, { stage: StageName; elsewhere?: string }> {
    return this.failed;
  }

  /** How many of the failures happened in other processes. */
  get elsewhere(): number {
    return [...this.failed.values()].filter((f) => f.elsewhere !== undefined).length;
  }

  /** How many tasks are blocked by this invocation's failures. */
  get blocked(): number {
    return this.blockedBy.size;
  }

  recordFailed(
    task: TaskId,
    stage: StageName,
    failure: Pick<Failure, 'reason' | 'message'>,
    elsewhere?: string,
  ): void {
    this.failed.set(task, { stage, failure, ...(elsewhere !== undefined ? { elsewhere } : {}) });
    this.blockedBy.delete(task);
  }

  /** `task` cannot run because `because` (failed, or itself blocked) did not finish. */
  recordBlocked(task: TaskId, because: TaskId): void {
    if (this.failed.has(task)) return;
    this.blockedBy.set(task, this.root(because));
  }

  private root(id: TaskId): TaskId {
    return this.failed.has(id) ? id : (this.blockedBy.get(id) ?? id);
  }

  /**
   * The plan without the tasks that failed in this invocation and what depends on them
   * (recorded as blocked): this process tried those already, and a later round would only fail
   * them again. Steps come in dependency order, so one pass sees every chain.
   */
  prune(p: Plan, graph: Graph): Plan {
    if (this.failed.size === 0) return p;
    const awaiting = new Map(graph.pending.map((x) => [x.id, x.awaiting]));
    const steps = p.steps.filter((st) => {
      if (this.failed.has(st.task)) return false;
      const waitsOn = st.action === 'blocked' ? awaiting.get(st.task) : undefined;
      const causes = [...(graph.tasks.get(st.task)?.deps ?? []), ...(waitsOn ? [waitsOn] : [])];
      const cause = causes.find((d) => this.failed.has(d) || this.blockedBy.has(d));
      if (cause === undefined) return true;
      this.recordBlocked(st.task, cause);
      return false;
    });
    return { steps };
  }

  /** One entry per failed task, in failure order, with how many tasks each one blocked. */
  summary(retry: (task: TaskId) => string): FailureSummary[] {
    const blocked = new Map<TaskId, number>();
    for (const root of this.blockedBy.values()) blocked.set(root, (blocked.get(root) ?? 0) + 1);
    return [...this.failed].map(([task, { stage, failure, elsewhere }]) => ({
      task,
      stage,
      reason: failure.reason,
      message: failure.message,
      blocked: blocked.get(task) ?? 0,
      retry: retry(task),
      ...(elsewhere !== undefined ? { elsewhere } : {}),
    }));
  }
}

/** Another shard's failure record, as a shard waiting on that task reads it. */
export interface ForeignFailure {
  task: TaskId;
  stage: StageName;
  failure: Pick<Failure, 'reason' | 'message'>;
  /** When it was written, by its writer's clock (ms). */
  at: number;
}

/**
 * When a shard stops waiting for another shard's task that failed. Only the owning shard runs a
 * task, and a process never retries what failed in it, so without this a shard would wait
 * forever. A failure record exists only while nobody is trying the task (the executor deletes
 * it when an attempt starts), so it is final when it was written after this process started (its
 * owner failed it in this session), or, if older (an earlier session's, which a new owner may
 * still retry), once it has stayed unchanged for `graceMs` while this process waited.
 */
export class ForeignFailures {
  private readonly seen = new Map<TaskId, { at: number; since: number }>();
  constructor(
    private readonly startedAt: number,
    private readonly graceMs: number,
  ) {}

  /** The records that count as final failures now; `records` are all the current ones. */
  final(records: readonly ForeignFailure[], now: number): ForeignFailure[] {
    const current = new Set(records.map((r) => r.task));
    for (const id of [...this.seen.keys()]) if (!current.has(id)) this.seen.delete(id);
    return records.filter((r) => {
      const s = this.seen.get(r.task);
      if (s?.at !== r.at) this.seen.set(r.task, { at: r.at, since: now });
      if (r.at >= this.startedAt) return true;
      return now - (this.seen.get(r.task)?.since ?? now) >= this.graceMs;
    });
  }
}

/** A word as a POSIX shell reads it back: bare when it is plainly safe, else single-quoted. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
