/**
 * EFFECTS. Walks a plan: runs ready tasks with bounded concurrency (`-j` and per-stage limits),
 * deepest stage first (so a parquet is finished before the next one is fetched), retries
 * transient failures with jittered backoff, verifies each task's outputs (size + sha256) and only
 * then writes its marker. SIGINT aborts running tasks; an aborted task writes no marker.
 */
import { join } from 'node:path';
import type { Failure, Result } from './errors.js';
import { convertExceptionToFailure, err, ok } from './errors.js';
import type { Emit } from './events.js';
import type { Fingerprint } from './fingerprint.js';
import { redactSecrets, sha256Hex, stageKeyedParams } from './fingerprint.js';
import type { Graph } from './graph.js';
import { digestObject } from './io/fs/files.js';
import type { HubSource } from './io/hub/hub.js';
import type { MarkerBody, OutputRecord, StoreName } from './io/state/markers.js';
import {
  archiveParams,
  deleteKeys,
  taskFailureKey,
  hostName,
  PartLedger,
  workerId,
  writeMarker,
} from './io/state/markers.js';
import type { ObjectInfo, ObjectStore } from './io/stores/object-store.js';
import type {
  Manifest,
  Pipeline,
  Plan,
  PlanStep,
  StageConfig,
  TaskId,
  TaskInstance,
  TaskKind,
} from './model.js';
import { objectKey } from './model.js';
import type { MarkerRef } from './planner.js';
import type { TaskContext, TaskDefinition } from './task-api.js';
import type { Claims, HeldClaim } from './leases.js';
import { heldKey } from './leases.js';
import { runAttempts } from './attempt.js';
import { dropScratch, makeScratch } from './scratch.js';
import { STACKFLOW_VERSION } from './version.js';
import { upstreamOutputs } from './upstream.js';

export { STACKFLOW_VERSION };

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

type RunStep = Extract<PlanStep, { action: 'run' }>;

export async function execute(plan: Plan, env: ExecEnv): Promise<ExecResult> {
  const res: ExecResult = {
    succeeded: new Set(),
    failed: new Map(),
    blocked: new Set(),
    manifests: new Map(),
    retries: 0,
    interrupted: false,
    deferred: new Set(),
  };
  const steps = plan.steps.filter((s): s is RunStep => s.action === 'run');
  const inRun = new Set(steps.map((s) => s.task));
  const waiting = new Map<TaskId, number>();
  const dependents = new Map<TaskId, TaskId[]>();
  const stepOf = new Map(steps.map((s) => [s.task, s]));
  for (const s of steps) {
    const deps = (env.graph.tasks.get(s.task)?.deps ?? []).filter((d) => inRun.has(d));
    waiting.set(s.task, deps.length);
    for (const d of deps) {
      const list = dependents.get(d);
      if (list === undefined) dependents.set(d, [s.task]);
      else list.push(s.task);
    }
  }
  const stageIndex = new Map(env.graph.stageOrder.map((s, i) => [s, i]));
  // Alone: plan order. Among workers: an order of this worker's own (a hash of worker and task),
  // so workers sharing a graph start on different tasks instead of racing for the same ones.
  const spread = env.claims !== undefined && env.worker !== undefined;
  const planIndex = new Map(
    steps.map((s, i) => [
      s.task,
      spread ? parseInt(sha256Hex(`${env.worker ?? ''}\0${s.task}`).slice(0, 8), 16) : i,
    ]),
  );
  const stageCfg = new Map(env.pipeline.stages.map((s) => [s.name, s]));
  // Deeper stages first, then plan order: finish what was started before opening new work.
  const priority = (a: TaskId, b: TaskId): number => {
    const sa = stageIndex.get(stepOf.get(a)?.stage ?? ('' as never)) ?? 0;
    const sb = stageIndex.get(stepOf.get(b)?.stage ?? ('' as never)) ?? 0;
    return sb - sa || (planIndex.get(a) ?? 0) - (planIndex.get(b) ?? 0);
  };
  // Kept sorted by priority: one sort now, then binary insertion (100k-task graphs stay linear-ish).
  const ready: TaskId[] = steps
    .filter((s) => waiting.get(s.task) === 0)
    .map((s) => s.task)
    .sort(priority);
  const makeReady = (id: TaskId): void => {
    let lo = 0;
    let hi = ready.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (priority(ready[mid] as TaskId, id) <= 0) lo = mid + 1;
      else hi = mid;
    }
    ready.splice(lo, 0, id);
  };
  const running = new Map<TaskId, Promise<void>>();
  const runningPerStage = new Map<string, number>();
  const bodies = new Map<TaskId, MarkerBody>();

  const block = (from: TaskId): void => {
    for (const d of dependents.get(from) ?? []) {
      if (res.blocked.has(d)) continue;
      res.blocked.add(d);
      const st = stepOf.get(d);
      if (st) env.emit({ type: 'task-blocked', task: d, stage: st.stage, because: from });
      block(d);
    }
  };

  /**
   * `id` found the markers of `deps` damaged or gone when it read its upstream outputs (they
   * were planned as done): run them in this invocation, then `id` again.
   */
  const redoFirst = (id: TaskId, deps: readonly TaskId[]): void => {
    let left = 0;
    for (const d of deps) {
      if (res.succeeded.has(d)) continue;
      dependents.set(d, [...(dependents.get(d) ?? []), id]);
      if (res.failed.has(d) || res.blocked.has(d)) {
        block(d);
        return;
      }
      left++;
      if (inRun.has(d)) continue;
      const dep = env.graph.tasks.get(d);
      if (dep === undefined) throw new Error(`Internal error: dep ${d} unknown`);
      const step: RunStep = { action: 'run', task: d, stage: dep.stage, reason: 'state-damaged' };
      inRun.add(d);
      stepOf.set(d, step);
      planIndex.set(d, planIndex.get(id) ?? 0);
      const before = dep.deps.filter((x) => inRun.has(x) && !res.succeeded.has(x));
      waiting.set(d, before.length);
      for (const x of before) dependents.set(x, [...(dependents.get(x) ?? []), d]);
      if (before.length === 0) makeReady(d);
    }
    waiting.set(id, left);
    if (left === 0) makeReady(id);
  };

  // Among workers, a run of claims lost in a row means this plan is out of date (others took
  // or finished what it lists): stop starting tasks and let the caller plan again.
  let lostInARow = 0;
  const stale = (): boolean => env.claims !== undefined && lostInARow >= Math.max(4, 2 * env.jobs);
  const stop = (): boolean =>
    env.signal.aborted || stale() || (env.failFast === true && res.failed.size > 0);
  while ((ready.length > 0 && !stop()) || running.size > 0) {
    for (let i = 0; i < ready.length && running.size < env.jobs && !stop();) {
      const id = ready[i] as TaskId;
      const step = stepOf.get(id) as RunStep;
      const cfg = stageCfg.get(step.stage);
      const n = runningPerStage.get(step.stage) ?? 0;
      if (cfg?.limit !== undefined && n >= cfg.limit) {
        i++;
        continue;
      }
      ready.splice(i, 1);
      runningPerStage.set(step.stage, n + 1);
      // runOne returns failures as values; anything it throws (a full disk under the scratch
      // dir, say) still becomes this task's failure rather than tearing down the whole run.
      const p = runClaimed(step, env, cfg, bodies, res)
        .catch((e: unknown) => {
          const f = convertExceptionToFailure(e, env.signal);
          env.emit({ type: 'task-failed', task: id, stage: step.stage, failure: f });
          return err(f);
        })
        .then((outcome) => {
          running.delete(id);
          runningPerStage.set(step.stage, (runningPerStage.get(step.stage) ?? 1) - 1);
          if (outcome.ok && typeof outcome.value === 'object') {
            redoFirst(id, outcome.value.redo);
          } else if (outcome.ok && (outcome.value === 'deferred' || outcome.value === 'held')) {
            // Its dependents stay waiting: another worker will finish it. Only a claim that
            // cost a request and lost says the plan is out of date.
            res.deferred.add(id);
            if (outcome.value === 'deferred') lostInARow++;
          } else if (outcome.ok) {
            lostInARow = 0;
            res.succeeded.add(id);
            for (const d of dependents.get(id) ?? []) {
              const left = (waiting.get(d) ?? 1) - 1;
              waiting.set(d, left);
              if (left === 0 && !res.blocked.has(d)) makeReady(d);
            }
          } else {
            res.failed.set(id, outcome.error);
            block(id);
          }
        });
      running.set(id, p);
    }
    if (running.size === 0) break;
    await Promise.race(running.values());
  }
  res.interrupted = env.signal.aborted;
  return res;
}

/** Claims the task when workers share the graph, runs it if won, and gives the claim back. */
async function runClaimed(
  step: RunStep,
  env: ExecEnv,
  cfg: StageConfig | undefined,
  bodies: Map<TaskId, MarkerBody>,
  res: ExecResult,
): Promise<Result<'ran' | 'deferred' | 'held' | Redo>> {
  if (env.claims === undefined) {
    const r = await runOne(step, env, cfg, bodies, res, undefined);
    return r.ok ? ok(r.value ?? 'ran') : r;
  }
  if (heldElsewhere(env, step.task)) return ok('held');
  const task = env.graph.tasks.get(step.task);
  const fp = env.fingerprints.get(step.task);
  if (task === undefined || fp === undefined)
    throw new Error(`Internal error: ${step.task} unknown`);
  const c = await env.claims.claim(task, fp);
  if (!c.ok) {
    if (c.error.reason !== 'transient') return c;
    env.emit({ type: 'warning', message: `claiming ${task.id}: ${c.error.message}; will retry` });
    return ok('deferred');
  }
  if (c.value.kind === 'held' && c.value.seen === true) return ok('held');
  if (c.value.kind !== 'won') return ok('deferred');
  const claim = c.value.claim;
  let outcome: 'done' | 'failed' = 'failed';
  try {
    const r = await runOne(step, env, cfg, bodies, res, claim);
    if (!r.ok && claim.signal.aborted && !env.signal.aborted) return ok('deferred');
    if (r.ok && r.value === undefined) outcome = 'done';
    return r.ok ? ok(r.value ?? 'ran') : r;
  } finally {
    await claim.release(outcome);
  }
}

/** Whether the plan's fingerprint of `id` is held by another worker (see ExecEnv). */
function heldElsewhere(env: ExecEnv, id: TaskId): boolean {
  const fp = env.fingerprints.get(id);
  return fp !== undefined && env.heldElsewhere?.has(heldKey(id, fp.hash)) === true;
}

/** Dependencies to run again first: their markers were damaged or gone (see upstreamOutputs). */
interface Redo {
  redo: TaskId[];
}

async function runOne(
  step: RunStep,
  env: ExecEnv,
  cfg: StageConfig | undefined,
  bodies: Map<TaskId, MarkerBody>,
  res: ExecResult,
  claim: HeldClaim | undefined,
): Promise<Result<Redo | undefined>> {
  const task = env.graph.tasks.get(step.task);
  const fp = env.fingerprints.get(step.task);
  if (task === undefined || fp === undefined)
    throw new Error(`Internal error: ${step.task} unknown`);
  const def = env.registry[task.kind];
  const upstream = await upstreamOutputs(task, env, bodies);
  if (upstream.ok && upstream.value.damaged.length > 0) return ok({ redo: upstream.value.damaged });
  const startedAt = new Date();
  /** 1 + the transient failures retried: recorded in the marker or the failure record. */
  let attempts = 1;
  // A lost claim stops the task like an interrupt, but only this task.
  const signal = claim ? AbortSignal.any([env.signal, claim.signal]) : env.signal;
  env.emit({
    type: 'task-started',
    task: task.id,
    stage: task.stage,
    reason: step.reason,
    attempt: 1,
  });
  const fail = async (f: Failure): Promise<Result<never>> => {
    if (claim?.signal.aborted === true && !env.signal.aborted) {
      env.emit({
        type: 'note',
        task: task.id,
        message: 'stopped: its lease went to another worker',
      });
      return err({ reason: 'aborted', message: 'lease lost' });
    }
    if (f.reason !== 'aborted') {
      await recordFailure(env.stores.state, task, f, {
        host: hostName(),
        worker: env.worker ?? workerId(),
        startedAt: startedAt.toISOString(),
        attempts,
      });
    }
    env.emit({ type: 'task-failed', task: task.id, stage: task.stage, failure: f });
    return err(f);
  };
  // The old markers go first: a crash from here on leaves the task visibly unfinished. So does
  // its failure record: one that exists means nobody is trying the task (shards rely on it).
  const old = [
    ...(env.markers.get(task.id) ?? []).map((m) => m.key),
    ...(env.failures?.has(task.id) === true ? [taskFailureKey(task)] : []),
  ];
  const dropped = await deleteKeys(env.stores.state, old);
  if (!dropped.ok) return fail(dropped.error);
  if (!upstream.ok) return fail(upstream.error);
  // With its owner's pid, host and start time, so that a later run sweeps it if this one is killed.
  const scratch = await makeScratch(env.cacheDir, task.id);
  const recorded = recordPuts(env.stores);
  const parts = new PartLedger(env.stores.state, task, fp, (message) => {
    env.emit({ type: 'note', task: task.id, message });
  });
  try {
    const shell = await import('./io/process/shell.js');
    // Forced: nothing of an earlier attempt is resumed.
    if (step.reason === 'forced') {
      const cleared = await parts.clear({ always: true });
      if (!cleared.ok) return await fail(cleared.error);
    }
    const ctx: TaskContext = {
      task,
      fingerprint: fp,
      pipeline: {
        dir: join(env.pipeline.file, '..'),
        repo: env.pipeline.dataset.repo,
        revision: env.pipeline.dataset.revision,
        contentSource: env.pipeline.content.source,
        bucketUrl: env.pipeline.bucket,
        s3: env.pipeline.s3,
      },
      stores: recorded.stores,
      hub: env.hub,
      content: env.content,
      upstream: upstream.value.outputs,
      $: shell.makeShell({ cwd: scratch, signal }),
      signal,
      scratch,
      parts,
      progress: (d) => {
        env.emit({
          type: 'progress',
          task: task.id,
          stage: task.stage,
          rows: d.rows ?? 0,
          bytes: d.bytes ?? 0,
        });
      },
      note: (message) => {
        env.emit({ type: 'note', task: task.id, message });
      },
      onRetry: () => env.onRequestRetry?.(),
    };
    // Each attempt gets its own signal, `$` and time limits (lib/attempt.ts).
    const result = await runAttempts(def, ctx, {
      retries: cfg?.retries ?? 2,
      signal,
      makeShell: (s, onOutput) => shell.makeShell({ cwd: scratch, signal: s, onOutput }),
      ...(cfg?.timeoutMs !== undefined ? { timeoutMs: cfg.timeoutMs } : {}),
      ...(cfg?.stallTimeoutMs !== undefined ? { stallTimeoutMs: cfg.stallTimeoutMs } : {}),
      onRetry: (attempt, f, waitMs) => {
        res.retries++;
        attempts++;
        env.emit({ type: 'task-retry', task: task.id, attempt, reason: f.message, waitMs });
      },
    });
    if (!result.ok) return await fail(result.error);
    if (signal.aborted) return await fail({ reason: 'aborted', message: 'interrupted' });
    const verified = await verifyOutputs(env.stores, result.value.outputs, recorded.written);
    if (!verified.ok) return await fail(verified.error);
    const body: MarkerBody = {
      schema: 1,
      task: task.id,
      fingerprint: fp.hash,
      fingerprintData: fp.data,
      outputs: result.value.outputs,
      counts: result.value.counts,
      host: hostName(),
      worker: env.worker ?? workerId(),
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      attempts,
      stackflowVersion: STACKFLOW_VERSION,
    };
    await archiveParams(
      env.stores.state,
      task.stage,
      fp.components.params,
      redactSecrets(cfg !== undefined ? stageKeyedParams(cfg, env.registry) : {}),
    );
    // The marker is written last, after every output is published and verified, and only by
    // the holder of the task's claim.
    if (claim !== undefined) {
      const still = await claim.confirm();
      if (!still.ok) return await fail(still.error);
    }
    const written = await writeMarker(env.stores.state, task, fp, body);
    if (!written.ok) return await fail(written.error);
    bodies.set(task.id, body);
    if (result.value.manifest && task.language !== undefined) {
      res.manifests.set(task.language, result.value.manifest);
    }
    await ctx.parts.clear();
    if (env.failures === undefined || env.failures.has(task.id)) {
      await env.stores.state.delete(objectKey(taskFailureKey(task)));
    }
    env.emit({
      type: 'task-succeeded',
      task: task.id,
      stage: task.stage,
      ms: Date.now() - startedAt.getTime(),
      counts: result.value.counts,
    });
    return ok(undefined);
  } finally {
    await dropScratch(scratch);
  }
}

/**
 * The task's view of the stores: the same stores, with every successful put remembered (by
 * store name and key), so outputs the task wrote itself are verified without a read.
 */
function recordPuts(stores: Stores): { stores: Stores; written: Map<string, ObjectInfo> } {
  const written = new Map<string, ObjectInfo>();
  const wrap = (name: StoreName, store: ObjectStore): ObjectStore =>
    new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'put') {
          const put: ObjectStore['put'] = async (key, body, opts) => {
            const r = await target.put(key, body, opts);
            if (r.ok) written.set(`${name}\0${key}`, r.value);
            else written.delete(`${name}\0${key}`);
            return r;
          };
          return put;
        }
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  return {
    stores: {
      work: wrap('work', stores.work),
      bucket: wrap('bucket', stores.bucket),
      state: wrap('state', stores.state),
    },
    written,
  };
}

/** Every output exists with the size and sha256 the task reported. */
export async function verifyOutputs(
  stores: Stores,
  outputs: readonly OutputRecord[],
  written: ReadonlyMap<string, ObjectInfo> = new Map(),
): Promise<Result<void>> {
  for (const o of outputs) {
    // Written by this task: the store hashed the bytes as they went in, so comparing with what
    // the put reported catches a wrong report without reading the object back.
    const put = written.get(`${o.store}\0${o.key}`);
    if (put?.sha256 !== undefined && put.size === o.size) {
      if (put.sha256 === o.sha256) continue;
      return err({
        reason: 'checksum-mismatch',
        key: o.key,
        expected: o.sha256,
        actual: put.sha256,
        message: `output ${stores[o.store].url}/${o.key} does not have the sha256 the task reported`,
      });
    }
    const store = stores[o.store satisfies StoreName];
    const h = await store.head(objectKey(o.key));
    if (!h.ok || h.value.size !== o.size) {
      return err({
        reason: 'output-missing',
        key: o.key,
        message: `output ${store.url}/${o.key} is ${h.ok ? `${h.value.size} bytes, expected ${o.size}` : 'missing'} after the task ran`,
      });
    }
    const sha = h.value.sha256 ?? (await digestObject(store, o.key));
    const actual = typeof sha === 'string' ? sha : sha.ok ? sha.value.sha256 : '';
    if (actual !== o.sha256) {
      return err({
        reason: 'checksum-mismatch',
        key: o.key,
        expected: o.sha256,
        actual,
        message: `output ${store.url}/${o.key} does not have the sha256 the task wrote`,
      });
    }
  }
  return ok(undefined);
}

/** Where and when the failed attempt ran, for `status` and `report`. */
interface FailureContext {
  host: string;
  worker: string;
  startedAt: string;
  attempts: number;
}

async function recordFailure(
  state: ObjectStore,
  t: TaskInstance,
  f: Failure,
  where: FailureContext,
): Promise<void> {
  const { stack: _stack, ...rest } = f as Failure & { stack?: string };
  await state.put(
    objectKey(taskFailureKey(t)),
    JSON.stringify({ task: t.id, failure: rest, at: new Date().toISOString(), ...where }) + '\n',
  );
}
