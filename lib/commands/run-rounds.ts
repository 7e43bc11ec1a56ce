/**
 * The rounds of one `run`: plan → execute → plan again, until nothing is left that this process
 * can do. A round's discover tasks expand their languages for the next round; workers and shards
 * also wait here for the tasks others hold. After a failure everything that does not depend on
 * it still runs (the ledger prunes the rest), unless `--fail-fast`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Failure, Result } from '../errors.js';
import { ok } from '../errors.js';
import type { Claims } from '../leases.js';
import { checkFreeSpace } from '../io/fs/disk.js';
import { ensureDir } from '../io/fs/mkdirs.js';
import type { Graph } from '../graph.js';
import type { Emit } from '../events.js';
import { execute } from '../executor.js';
import type { FailureLedger, ForeignFailure } from '../keep-going.js';
import { ForeignFailures } from '../keep-going.js';
import { shardOfTask } from '../leases.js';
import { objectKey } from '../model.js';
import type { ManifestEntry, Pipeline, Plan, StageName, TaskId } from '../model.js';
import { plan } from '../planner.js';
import type { Printer } from '../report.js';
import type { Session } from '../session.js';
import { snapshot } from '../session.js';
import { EXIT, exitFor, failureLine, say, unknownTargets } from './common.js';
import { taskFailureKey } from '../io/state/keys.js';

export interface RoundsInput {
  session: Session;
  languages: string[];
  targets: string[];
  /** Tasks `--force` reruns (first round only). */
  forced: (id: TaskId) => boolean;
  /** Absent: alone, run everything. */
  claims: Claims | undefined;
  worker: string;
  jobs: number;
  pollMs: number;
  failFast: boolean;
  emit: Emit;
  printer: Printer;
  signal: AbortSignal;
  /** What failed in this process and what it blocks; filled in by the rounds. */
  ledger: FailureLedger;
  /** Told when tasks start and stop running (signals are handled differently meanwhile). */
  tasksRunning?: (running: boolean) => void;
  /** A static shard: which one, and when this process started (see `ForeignFailures`). */
  shard?: { index: number; count: number; startedAt: number };
}

/** What the rounds did; `exit` when they stopped before running (bad target, preflight). */
export interface RoundsResult {
  exit?: number;
  succeeded: number;
  failed: number;
  skipped: number;
  /** Still awaiting a manifest (not blocked by a failure: the ledger counts those). */
  awaiting: number;
  retries: number;
  interrupted: boolean;
  /** Ready tasks `--fail-fast` did not start. */
  notStarted: number;
}

/** How long a shard waits for an earlier session's failed task to be retried by its owner. */
const FOREIGN_GRACE_MS = 60_000;

export async function runRounds(i: RoundsInput): Promise<RoundsResult> {
  const { session, claims, emit, signal, ledger } = i;
  const pipeline = session.pipeline;
  const r: RoundsResult = {
    succeeded: 0,
    failed: 0,
    skipped: 0,
    awaiting: 0,
    retries: 0,
    interrupted: false,
    notStarted: 0,
  };
  const foreign = i.shard && new ForeignFailures(i.shard.startedAt, FOREIGN_GRACE_MS);
  for (let round = 1; ; round++) {
    const snap = await snapshot(session, i.languages, i.targets, { preview: false, heal: true });
    if (!snap.ok) {
      say(failureLine(snap.error));
      return { ...r, exit: EXIT.failed };
    }
    // Damaged state found (and treated as absent) while planning: said once, as notes.
    for (const n of snap.value.notes) {
      emit(
        n.task === undefined
          ? { type: 'warning', message: n.message }
          : { type: 'note', task: n.task, message: n.message },
      );
    }
    if (round === 1 && snap.value.unknownTargets.length > 0)
      return { ...r, exit: unknownTargets(snap.value.unknownTargets) };
    const full = plan({ ...snap.value.plannerInput, forced: round === 1 ? i.forced : () => false });
    // What failed in this process is not tried again by it, nor what depends on it.
    let p = ledger.prune(full, snap.value.graph);
    if (foreign !== undefined && i.shard !== undefined) {
      // Another shard's failure: its owner will not try again, so stop waiting for it.
      const records = await foreignRecords(session, {
        plan: p,
        graph: snap.value.graph,
        failures: snap.value.failures,
        shard: i.shard,
      });
      for (const f of foreign.final(records, Date.now())) {
        ledger.recordFailed(
          f.task,
          f.stage,
          f.failure,
          `shard ${String(shardOfTask(f.task, i.shard.count))}/${String(i.shard.count)}`,
        );
      }
      p = ledger.prune(p, snap.value.graph);
    }
    const count = (a: string): number => p.steps.filter((s) => s.action === a).length;
    emit({
      type: 'plan',
      round,
      run: count('run'),
      skip: count('skip'),
      blocked: count('blocked'),
    });
    // Tasks that ran in earlier rounds show up as fresh now: they are not "up to date" skips.
    r.skipped = count('skip') - r.succeeded;
    r.awaiting = count('blocked');
    if (claims !== undefined && count('run') === 0) {
      // A worker is done when nothing is left to run or wait for.
      if (count('blocked') === 0 || signal.aborted) break;
      await pause(i.pollMs, signal);
      continue;
    }
    const pre = await preflightDownloads(session, p, snap.value.graph);
    if (!pre.ok) {
      say(failureLine(pre.error));
      return { ...r, exit: exitFor(pre.error) };
    }
    i.printer.start(stageTotals(p.steps, pipeline));
    const held = claims?.held ? await claims.held() : undefined;
    i.tasksRunning?.(true);
    const res = await execute(p, {
      pipeline,
      graph: snap.value.graph,
      fingerprints: snap.value.fingerprints,
      markers: snap.value.markers,
      stores: session.stores,
      hub: session.hub,
      content: session.content,
      onRequestRetry: () => {
        session.requestRetries.count++;
      },
      registry: session.registry,
      cacheDir: session.cacheDir,
      emit,
      signal,
      jobs: i.jobs,
      worker: i.worker,
      failures: snap.value.failures,
      failFast: i.failFast,
      ...(held?.ok === true ? { heldElsewhere: held.value } : {}),
      ...(claims ? { claims } : {}),
    });
    i.tasksRunning?.(false);
    r.succeeded += res.succeeded.size;
    // Planned as up to date, run after all: a dependent found its marker damaged.
    r.skipped -= p.steps.filter((st) => st.action === 'skip' && res.succeeded.has(st.task)).length;
    r.failed += res.failed.size;
    r.retries += res.retries;
    for (const [id, f] of res.failed) {
      // Stopped by an interrupt or a lost lease: not a failure of the task itself.
      if (f.reason !== 'aborted')
        ledger.recordFailed(id, p.steps.find((s) => s.task === id)?.stage ?? ('' as StageName), f);
    }
    r.interrupted = res.interrupted;
    if (res.interrupted) break;
    if (i.failFast && res.failed.size > 0) {
      const ran = res.succeeded.size + res.failed.size + res.blocked.size + res.deferred.size;
      r.notStarted = Math.max(0, count('run') - ran);
      break;
    }
    if (claims !== undefined) {
      // Others hold what is left: give them time before planning again.
      if (res.succeeded.size === 0 && res.failed.size === 0) await pause(i.pollMs, signal);
      continue;
    }
    // New manifests: expand what was waiting for them and go again (what just ran is skipped).
    if (res.manifests.size === 0 || snap.value.graph.pending.length === 0 || round >= 8) break;
  }
  return r;
}

/** Sleeps `ms` (with ±25% jitter so workers do not plan in lockstep), or until interrupted. */
async function pause(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await sleep(ms * (0.75 + Math.random() / 2), undefined, { signal });
  } catch {
    // interrupted: the caller sees signal.aborted
  }
}

/**
 * Fails before any task starts when the plan's downloads cannot succeed: the source refuses them
 * (a gated dataset without accepted terms) or they do not fit on the disk holding the cache. The
 * alternative is the same error from every fetch, or a disk filling up hours into a run.
 */
async function preflightDownloads(session: Session, p: Plan, graph: Graph): Promise<Result<void>> {
  let bytes = 0;
  const files: ManifestEntry[] = [];
  for (const step of p.steps) {
    const t = step.action === 'run' ? graph.tasks.get(step.task) : undefined;
    if (t?.kind === 'fetch' && t.file !== undefined) {
      bytes += t.file.size;
      files.push(t.file);
    }
  }
  const [first] = files;
  if (first === undefined) return ok(undefined);
  const access = await session.hub.checkAccess(first, session.pipeline.dataset.revision);
  if (!access.ok) return access;
  await ensureDir(session.cacheDir);
  const r = await checkFreeSpace(
    session.cacheDir,
    bytes,
    `the ${String(files.length)} parquet file${files.length === 1 ? '' : 's'} this run downloads`,
  );
  return r.ok ? ok(undefined) : r;
}

function stageTotals(steps: readonly { stage: StageName; action: string }[], pipeline: Pipeline) {
  return pipeline.stages
    .map((st) => ({
      stage: st.name,
      total: steps.filter((s) => s.stage === st.name && s.action !== 'blocked').length,
      skipped: steps.filter((s) => s.stage === st.name && s.action === 'skip').length,
    }))
    .filter((t) => t.total > 0);
}

/**
 * The failure records of tasks this shard waits on but does not own (one read each; only tasks
 * with a record, which the planning listing found). Unreadable records are left for later.
 */
async function foreignRecords(
  session: Session,
  of: {
    plan: Plan;
    graph: Graph;
    /** Tasks with a failure record in the planning listing. */
    failures: ReadonlySet<TaskId>;
    /** This shard: the records read are those of the other shards' tasks. */
    shard: { index: number; count: number };
  },
): Promise<ForeignFailure[]> {
  const { plan: p, graph, failures, shard } = of;
  const theirs = p.steps.filter(
    (st) =>
      st.action === 'run' &&
      failures.has(st.task) &&
      shardOfTask(st.task, shard.count) !== shard.index,
  );
  const out: ForeignFailure[] = [];
  for (const st of theirs) {
    const t = graph.tasks.get(st.task);
    if (t === undefined) continue;
    const r = await session.stores.state.get(objectKey(taskFailureKey(t)));
    if (!r.ok) continue;
    try {
      const body = JSON.parse(r.value.toString('utf8')) as {
        failure?: { reason?: unknown; message?: unknown };
        at?: unknown;
      };
      const at = typeof body.at === 'string' ? Date.parse(body.at) : NaN;
      if (Number.isNaN(at)) continue;
      out.push({
        task: st.task,
        stage: st.stage,
        at,
        failure: {
          reason: (typeof body.failure?.reason === 'string'
            ? body.failure.reason
            : 'internal-error') as Failure['reason'],
          message: typeof body.failure?.message === 'string' ? body.failure.message : 'failed',
        },
      });
    } catch {
      // a damaged record: not a verdict
    }
  }
  return out;
}
