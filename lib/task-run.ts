/**
 * EFFECTS. One task's run: claim it (workers sharing a graph), read its upstream outputs, delete
 * its old markers and failure record, run its attempts (lib/attempt.ts) in a scratch dir, verify
 * every output (size + sha256), archive its params and only then write its marker. Failures are
 * recorded for `status`/`report`; a lost lease, an interrupt or a lost state lock stops the task
 * without a failure record (its failure says which: lib/errors.ts `stoppedFailure`). What to
 * run and when is the scheduler's (lib/scheduler.ts); the executor (lib/executor.ts) joins them.
 */
import { join } from 'node:path';
import type { Failure, Result } from './errors.js';
import { err, ok, stoppedFailure } from './errors.js';
import type { ExecEnv, Stores } from './executor.js';
import { redactSecrets, stageKeyedParams } from './fingerprint.js';
import { digestObject } from './io/fs/files.js';
import type { MarkerBody, OutputRecord, StoreName } from './io/state/markers.js';
import {
  archiveParams,
  deleteKeys,
  hostName,
  PartLedger,
  workerId,
  writeMarker,
} from './io/state/markers.js';
import type { ObjectInfo, ObjectStore } from './io/stores/object-store.js';
import type { Manifest, StageConfig, TaskId, TaskInstance } from './model.js';
import { objectKey } from './model.js';
import type { TaskContext } from './task-api.js';
import type { HeldClaim } from './leases.js';
import { heldKey } from './leases.js';
import { runAttempts } from './attempt.js';
import type { RunStep } from './scheduler.js';
import { dropScratch, makeScratch } from './scratch.js';
import { STACKFLOW_VERSION } from './version.js';
import { upstreamOutputs } from './upstream.js';
import { taskFailureKey } from './io/state/keys.js';

/** What one task's run needs. */
export interface TaskRun {
  step: RunStep;
  env: ExecEnv;
  /** Its stage (retries, time limits, keyed params). */
  cfg: StageConfig | undefined;
  /**
   * The run's memo of marker bodies, shared by every task of the run: this run's markers and
   * the upstream ones read so far (a dependency's marker is read once).
   */
  bodies: Map<TaskId, MarkerBody>;
  /** Told of each retried attempt (the run's retry count). */
  onRetry: () => void;
}

/** How a task's run ended (the scheduler's `TaskOutcome`, with what the executor keeps). */
export type TaskRunOutcome =
  | { type: 'succeeded'; manifest?: { language: string; manifest: Manifest } }
  | { type: 'failed'; failure: Failure }
  | { type: 'claim-lost' }
  | { type: 'held-elsewhere' }
  | { type: 'needs-redo'; deps: TaskId[] };

/** Claims the task when workers share the graph, runs it if won, and gives the claim back. */
export async function runTask(run: TaskRun): Promise<TaskRunOutcome> {
  const { step, env } = run;
  if (env.claims === undefined) return outcomeOf(await runAndMark(run, undefined));
  if (heldElsewhere(env, step.task)) return { type: 'held-elsewhere' };
  const task = env.graph.tasks.get(step.task);
  const fp = env.fingerprints.get(step.task);
  if (task === undefined || fp === undefined)
    throw new Error(`Internal error: ${step.task} unknown`);
  // The markers the plan knew: a run replaces them; any other one means another worker finished it.
  const planned = (env.markers.get(step.task) ?? []).map((m) => m.key);
  const c = await env.claims.claim(task, fp, planned);
  if (!c.ok) {
    if (c.error.reason !== 'transient') return { type: 'failed', failure: c.error };
    env.emit({ type: 'warning', message: `claiming ${task.id}: ${c.error.message}; will retry` });
    return { type: 'claim-lost' };
  }
  // Known from the worker's view of the state (held, or finished since the plan), without a
  // request: not a lost race.
  if (c.value.kind !== 'won' && c.value.seen === true) return { type: 'held-elsewhere' };
  if (c.value.kind !== 'won') return { type: 'claim-lost' };
  const claim = c.value.claim;
  let outcome: 'done' | 'failed' = 'failed';
  try {
    const r = await runAndMark(run, claim);
    if (!r.ok && claim.signal.aborted && !env.signal.aborted) return { type: 'claim-lost' };
    if (r.ok && !('redo' in r.value)) outcome = 'done';
    return outcomeOf(r);
  } finally {
    await claim.release(outcome);
  }
}

function outcomeOf(r: Result<Redo | Done>): TaskRunOutcome {
  if (!r.ok) return { type: 'failed', failure: r.error };
  if ('redo' in r.value) return { type: 'needs-redo', deps: r.value.redo };
  return r.value.manifest
    ? { type: 'succeeded', manifest: r.value.manifest }
    : { type: 'succeeded' };
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

/** Ran and marked; a discover task's manifest. */
interface Done {
  manifest?: { language: string; manifest: Manifest };
}

/** Runs the task (`claim`: held by this worker) and writes its marker last; see the file comment. */
async function runAndMark(
  run: TaskRun,
  claim: HeldClaim | undefined,
): Promise<Result<Redo | Done>> {
  const { step, env, cfg, bodies } = run;
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
  // A claim lost before the task starts (its heartbeats stopped landing while the upstream
  // outputs were read): the task is another worker's now, and this one never starts it.
  if (claim?.signal.aborted === true && !env.signal.aborted) {
    return err({ reason: 'aborted', message: 'lease lost before the task started' });
  }
  // A lost claim stops the task like an interrupt, but only this task.
  const signal = claim ? AbortSignal.any([env.signal, claim.signal]) : env.signal;
  env.emit({
    type: 'task-started',
    task: task.id,
    stage: task.stage,
    reason: step.reason,
    attempt: 1,
  });
  const fail = async (failed: Failure): Promise<Result<never>> => {
    if (claim?.signal.aborted === true && !env.signal.aborted) {
      env.emit({
        type: 'note',
        task: task.id,
        message: 'stopped: its lease went to another worker',
      });
      return err({ reason: 'aborted', message: 'lease lost' });
    }
    // Stopped with the run: whatever the task made of its abort (a command killed by SIGTERM, a
    // request cut short), its failure is why the run stopped (an interrupt, a lost state lock).
    const f = env.signal.aborted ? stoppedFailure(env.signal) : failed;
    // A run that lost its state lock writes nothing more to it: it may be another run's now.
    if (f.reason !== 'aborted' && f.reason !== 'lock-lost') {
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
      params: task.params,
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
      onRetry: (n) => {
        run.onRetry();
        attempts++;
        env.emit({ type: 'retry', task: task.id, ...n });
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
    // Results dropped on purpose, after the marker: leftover part records are cleared by the
    // next run of the task (clearOthers / reset), a leftover failure record is display only.
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
    return ok(
      result.value.manifest && task.language !== undefined
        ? { manifest: { language: task.language, manifest: result.value.manifest } }
        : {},
    );
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
  // Result dropped on purpose: the record is for `status`; the failure itself is reported by
  // the run whether or not it could be written.
  await state.put(
    objectKey(taskFailureKey(t)),
    JSON.stringify({ task: t.id, failure: rest, at: new Date().toISOString(), ...where }) + '\n',
  );
}
