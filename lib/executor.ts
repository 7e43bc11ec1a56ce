/**
 * EFFECTS. Walks a plan: the scheduler (lib/scheduler.ts, pure) says which tasks may start now
 * (`-j`, per-stage limits, deepest stage first, dependents of a failure blocked, fail-fast), and
 * each started task runs through lib/task-run.ts (claim, attempts with retries, outputs verified,
 * marker written last). This file joins the two: it starts what the scheduler answers, waits for
 * any task to finish, tells the scheduler how it ended, and emits `task-blocked` for what that
 * blocks. SIGINT aborts running tasks; an aborted task writes no marker.
 */
import type { Failure } from './errors.js';
import { convertExceptionToFailure } from './errors.js';
import type { Emit } from './events.js';
import type { Fingerprint } from './fingerprint.js';
import type { Graph } from './graph.js';
import type { HubSource } from './io/hub/hub.js';
import type { MarkerBody } from './io/state/markers.js';
import type { ObjectStore } from './io/stores/object-store.js';
import type { Manifest, Pipeline, Plan, StageName, TaskId, TaskKind } from './model.js';
import type { MarkerRef } from './planner.js';
import type { TaskDefinition } from './task-api.js';
import type { Claims } from './leases.js';
import type { ReadyOrder } from './scheduler.js';
import { planOrder, Scheduler, workerSpread } from './scheduler.js';
import type { TaskRunOutcome } from './task-run.js';
import { runTask } from './task-run.js';
import { STACKFLOW_VERSION } from './version.js';

export { STACKFLOW_VERSION };
export { verifyOutputs } from './task-run.js';

export interface Stores {
  work: ObjectStore;
  bucket: ObjectStore;
  state: ObjectStore;
}

export interface ExecEnv {
  pipeline: Pipeline;
  graph: Graph;
  fingerprints: ReadonlyMap<TaskId, Fingerprint>;
  markers: ReadonlyMap<TaskId, readonly MarkerRef[]>;
  stores: Stores;
  hub: HubSource;
  content: ObjectStore;
  /** Told of every request a task retried itself (the run's request-retry count). */
  onRequestRetry?: () => void;
  registry: { readonly [K in TaskKind]: TaskDefinition };
  cacheDir: string;
  emit: Emit;
  signal: AbortSignal;
  /** Max tasks at once. */
  jobs: number;
  /** Claim each task before running it (workers on a shared graph); absent: run everything. */
  claims?: Claims;
  /** Written into markers; default host-pid. */
  worker?: string;
  /**
   * Tasks another worker holds a live lease on, as `heldKey(task, fingerprint)`: deferred
   * without a claim attempt.
   */
  heldElsewhere?: ReadonlySet<string>;
  /** Tasks with a failure record when planned (only theirs need deleting); absent: all. */
  failures?: ReadonlySet<TaskId>;
  /**
   * Stop starting tasks after the first failure (`--fail-fast`); running ones finish. Default:
   * keep going, every task that does not depend on a failed one still runs.
   */
  failFast?: boolean;
  /**
   * The order in which ready tasks are tried (lib/scheduler.ts). Default: deeper stages first,
   * then plan order; among workers (`claims` and `worker` set) an order of the worker's own
   * (`workerSpread`), so workers sharing a graph start on different tasks.
   */
  order?: ReadyOrder;
}

export interface ExecResult {
  succeeded: Set<TaskId>;
  failed: Map<TaskId, Failure>;
  blocked: Set<TaskId>;
  /** Manifests produced by discover tasks in this run, by language. */
  manifests: Map<string, Manifest>;
  retries: number;
  interrupted: boolean;
  /** Tasks left to others: held by another worker or shard, done meanwhile, or lease lost. */
  deferred: Set<TaskId>;
}

export async function execute(plan: Plan, env: ExecEnv): Promise<ExecResult> {
  const spread = env.claims !== undefined && env.worker !== undefined;
  const sched = new Scheduler({
    steps: plan.steps,
    tasks: env.graph.tasks,
    stageOrder: env.graph.stageOrder,
    limits: new Map(
      env.pipeline.stages.flatMap((s): [StageName, number][] =>
        s.limit !== undefined ? [[s.name, s.limit]] : [],
      ),
    ),
    jobs: env.jobs,
    order: env.order ?? (spread ? workerSpread(env.worker ?? '') : planOrder),
    ...(env.failFast === true ? { failFast: true } : {}),
    // Among workers, a run of claims lost in a row means this plan is out of date.
    ...(env.claims !== undefined ? { staleAfter: Math.max(4, 2 * env.jobs) } : {}),
  });
  const stageCfg = new Map(env.pipeline.stages.map((s) => [s.name, s]));
  const failed = new Map<TaskId, Failure>();
  const manifests = new Map<string, Manifest>();
  const bodies = new Map<TaskId, MarkerBody>();
  let retries = 0;
  const running = new Map<TaskId, Promise<void>>();

  const finished = (id: TaskId, outcome: TaskRunOutcome): void => {
    running.delete(id);
    if (outcome.type === 'failed') failed.set(id, outcome.failure);
    if (outcome.type === 'succeeded' && outcome.manifest !== undefined) {
      manifests.set(outcome.manifest.language, outcome.manifest.manifest);
    }
    for (const b of sched.finish(id, outcome)) env.emit({ type: 'task-blocked', ...b });
  };

  for (;;) {
    if (env.signal.aborted) sched.interrupt();
    for (const step of sched.startNow()) {
      const id = step.task;
      // runTask returns failures as values; anything it throws (a full disk under the scratch
      // dir, say) still becomes this task's failure rather than tearing down the whole run.
      const p = runTask({
        step,
        env,
        cfg: stageCfg.get(step.stage),
        bodies,
        onRetry: () => {
          retries++;
        },
      })
        .catch((e: unknown): TaskRunOutcome => {
          const f = convertExceptionToFailure(e, env.signal);
          env.emit({ type: 'task-failed', task: id, stage: step.stage, failure: f });
          return { type: 'failed', failure: f };
        })
        .then((outcome) => {
          finished(id, outcome);
        });
      running.set(id, p);
    }
    if (running.size === 0) break;
    if (sched.stale && !env.signal.aborted && env.claims?.held !== undefined) {
      // A stale plan with tasks still running: rather than idle the free slots until they all
      // end, refresh the view of what others hold (two listings) and go on from the ready list;
      // tasks the view shows as taken then cost no request.
      const view = env.claims.held().then(
        (r) => (r.ok ? ('view' as const) : ('no-view' as const)),
        () => 'no-view' as const,
      );
      const task = Promise.race(running.values()).then(() => 'task' as const);
      const next = await Promise.race([view, task]);
      if (next === 'view') sched.viewRefreshed();
      // No view (the listing failed): wait for a running task as before.
      else if (next === 'no-view') await task;
      continue;
    }
    await Promise.race(running.values());
  }
  return {
    succeeded: new Set(sched.succeeded),
    failed,
    blocked: new Set(sched.blocked),
    manifests,
    retries,
    interrupted: env.signal.aborted,
    deferred: new Set(sched.deferred),
  };
}
