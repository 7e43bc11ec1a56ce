/**
 * `stackflow run`: options checked once, the pipeline loaded, then a dry run's plan, or the
 * rounds (lib/commands/run-rounds.ts) alone under the state lock, as a lease worker or as a
 * static shard, and the closing summary. Owns the run's signals and the printer for its events.
 */
import { hostname } from 'node:os';
import { relative, resolve } from 'node:path';
import type { Failure } from '../errors.js';
import { RunStopped, unreachable } from '../errors.js';
import { SILENT } from '../epoch-holder.js';
import type { Claims } from '../leases.js';
import { defaultWorkerId, LeaseClaims, ShardClaims } from '../leases.js';
import type { FetchSummary, RunEvent } from '../events.js';
import { globMatcher, parseTaskId } from '../graph.js';
import { FailureLedger, shellWord } from '../keep-going.js';
import type { TaskId } from '../model.js';
import { plan } from '../planner.js';
import { makePrinter, renderPlan, renderSizing } from '../report.js';
import type { SizingDecision } from '../sizing.js';
import { sizeForHost } from '../host.js';
import type { Session } from '../session.js';
import { resolveLanguages, snapshot } from '../session.js';
import { cachedProbe, leaseSupport } from '../io/stores/probe.js';
import type { RunLock } from '../run-lock.js';
import { acquireRunLock } from '../run-lock.js';
import type { Common } from './common.js';
import { debugOn, EXIT, exitFor, failureLine, load, say, unknownTargets } from './common.js';
import type { RunMode, RunOpts } from './run-options.js';
import { runMode } from './run-options.js';
import { runRounds } from './run-rounds.js';
import { catchInterrupts } from './interrupt.js';
import type { Interrupts } from './interrupt.js';
import { preflight, renderPreflight } from '../preflight.js';
import { sweepScratch } from '../scratch.js';
import { processFetchCounts, sharedFetchWindow } from '../util/fetch-window.js';

export type { RunOpts } from './run-options.js';

/** How long a plain run's state lock survives its holder's silence (heartbeats every TTL/8: lib/epoch-holder.ts). */
const LOCK_TTL_MS = 60_000;

export async function cmdRun(targetsIn: string[], o: Common & RunOpts): Promise<number> {
  // Signals are honoured from here on, while loading and checking too (lib/commands/interrupt.ts).
  const interrupts = catchInterrupts();
  try {
    const code = await runTargets(targetsIn, o, interrupts);
    return interrupts.signal.aborted ? EXIT.interrupted : code;
  } finally {
    interrupts.dispose();
  }
}

async function runTargets(
  targetsIn: string[],
  o: Common & RunOpts,
  interrupts: Interrupts,
): Promise<number> {
  const { signal } = interrupts;
  // A function, not a narrowed property: the signal aborts behind the compiler's back.
  const stopped = (): boolean => signal.aborted;
  const processStart = Date.now();
  // Flags first: a dry run refuses exactly what a real run refuses, before reading anything.
  const mode = runMode(o, process.env);
  if (!mode.ok) {
    say(failureLine(mode.error));
    return EXIT.usage;
  }
  let sizing: SizingDecision | undefined;
  const loaded = await load(o, {
    record: o.dryRun !== true,
    signal,
    prepare: async (p) => {
      const flags = { packs: o.packs, lineWorkers: o.lineWorkers, window: o.window, jobs: o.jobs };
      const sized = await sizeForHost(p, resolve(o.cacheDir), flags);
      sizing = sized.decision;
      return sized.pipeline;
    },
  });
  if (typeof loaded === 'number') return loaded;
  if (stopped()) return EXIT.interrupted;
  const { pipeline, session } = loaded;
  // Before any task: sources exist, stores and the cache dir can be written (lib/preflight.ts).
  const problems = await preflight(pipeline, {
    cacheDir: session.cacheDir,
    writes: o.dryRun !== true,
  });
  if (problems.length > 0) {
    say(await renderPreflight(pipeline, problems));
    return EXIT.usage;
  }
  if (stopped()) return EXIT.interrupted;
  const targets = targetsIn.length > 0 ? targetsIn : pipeline.stages.map((s) => s.name as string);
  const langs = await resolveLanguages(session, o.only);
  if (!langs.ok) {
    say(failureLine(langs.error));
    return exitFor(langs.error);
  }
  const forced = forcedMatcher(o.force);
  if (o.dryRun === true) {
    const snap = await snapshot(session, langs.value, targets, { preview: true });
    if (!snap.ok) {
      say(failureLine(snap.error));
      return exitFor(snap.error);
    }
    if (snap.value.unknownTargets.length > 0) return unknownTargets(snap.value.unknownTargets);
    const p = plan({ ...snap.value.plannerInput, forced });
    process.stdout.write(
      o.json === true
        ? JSON.stringify(sizing ? { ...p, sizing } : p, null, 2) + '\n'
        : (sizing ? renderSizing(sizing) : '') + renderPlan(p),
    );
    return EXIT.ok;
  }

  // Stops the rounds: an interrupt (cmdRun, lib/commands/interrupt.ts) or a lost state lock.
  const ac = new AbortController();
  const onInterrupt = (): void => {
    ac.abort();
  };
  signal.addEventListener('abort', onInterrupt);
  if (signal.aborted) ac.abort();
  // Scratch dirs that killed runs left behind (their owner is gone): lib/scratch.ts.
  const swept = await sweepScratch(session.cacheDir);
  if (swept.removed.length > 0) {
    const n = swept.removed.length;
    say(`removed ${String(n)} scratch dir${n === 1 ? '' : 's'} left by killed runs`);
  }
  const printer = makePrinter(process.stdout, process.stderr, {
    json: o.json === true,
    debug: debugOn(o),
  });
  const ledger = new FailureLedger();
  const emit = (e: RunEvent): void => {
    if (e.type === 'task-blocked') ledger.recordBlocked(e.task, e.because);
    printer.emit(e);
  };
  session.requestRetries.notify = (n) => {
    emit({ type: 'retry', ...n });
  };
  if (sizing) {
    emit({ type: 'sizing', summary: sizing.summary, reasons: sizing.reasons });
    // The window's ceiling is the decision just printed (and what `--dry-run` shows).
    sharedFetchWindow().setCeiling(sizing.window.max);
  }
  const started = Date.now();
  const worker = o.workerId ?? defaultWorkerId(hostname());
  let lock: RunLock | undefined;
  try {
    if (mode.value.kind === 'worker') {
      // Dynamic claiming is only as safe as the store's create-only puts: check them (cached).
      const probe = await cachedProbe(session.stores.state, session.cacheDir);
      if (!probe.ok) {
        say(failureLine(probe.error));
        return EXIT.failed;
      }
      const support = leaseSupport(probe.value);
      if (!support.dynamic) {
        say(`❌ ${support.reason}`);
        return EXIT.usage;
      }
    }
    if (mode.value.kind === 'alone') {
      const taken = await acquireRunLock(session.stores.state, {
        worker,
        ttlMs: LOCK_TTL_MS,
        pollMs: o.poll ?? 1000,
        signal: ac.signal,
        onWait: (h) => {
          emit({
            type: 'state-locked',
            holder: h.worker,
            host: h.host,
            pid: h.pid,
            since: h.since,
          });
        },
        onEvent: (message) => {
          emit({ type: 'warning', message });
        },
      });
      if (!taken.ok) {
        say(failureLine(taken.error));
        return EXIT.failed;
      }
      if (taken.value === undefined) return EXIT.interrupted;
      lock = taken.value;
      // A lost lock (taken over, or heartbeats not landing) stops the run like an interrupt, but
      // the tasks it stops say so (lockLostFailure), not "interrupted".
      const held = lock;
      held.signal.addEventListener('abort', () => {
        ac.abort(new RunStopped(lockLostFailure(held.signal.reason)));
      });
    }
    const r = await runRounds({
      session,
      languages: langs.value,
      targets,
      forced,
      claims: claimsFor(session, mode.value, worker, emit),
      worker,
      jobs: o.jobs ?? sizing?.jobs ?? 2,
      pollMs: o.poll ?? 500,
      failFast: o.failFast === true,
      emit,
      printer,
      signal: ac.signal,
      ledger,
      tasksRunning: (running) => {
        interrupts.tasksRunning(running);
      },
      ...(mode.value.kind === 'shard'
        ? {
            shard: {
              index: mode.value.index,
              count: mode.value.count,
              startedAt: processStart,
            },
          }
        : {}),
    });
    if (r.exit !== undefined) return r.exit;
    const lockLost = lock?.signal.aborted === true;
    const interrupted = r.interrupted && !lockLost;
    emit({
      type: 'run-finished',
      ok: r.failed === 0 && ledger.elsewhere === 0 && !r.interrupted,
      interrupted,
      succeeded: r.succeeded,
      failed: r.failed,
      skipped: r.skipped,
      blocked: ledger.blocked + r.awaiting,
      retries: r.retries,
      requestRetries: session.requestRetries.count,
      ms: Date.now() - started,
      // maxRSS is in KiB on Linux and macOS.
      peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      outputs: whereOutputsAre(pipeline.bucket),
      failures: ledger.summary((task) => retryCommand(task, o)),
      notStarted: r.notStarted,
      ...fetchSummary(),
    });
    if (interrupted) return EXIT.interrupted;
    // Failed elsewhere (another shard's task this one waited on): the targets are not complete.
    return r.failed > 0 || ledger.elsewhere > 0 || lockLost ? EXIT.failed : EXIT.ok;
  } finally {
    printer.close();
    await lock?.release();
    signal.removeEventListener('abort', onInterrupt);
  }
}

/**
 * The failure of a task stopped because the run lost its state lock: why (the lock's abort
 * reason, lib/run-lock.ts) and what to do about it.
 */
export function lockLostFailure(reason: unknown): Failure {
  const why = (reason instanceof Error ? reason.message : String(reason)).replace(
    /^state lock lost: /,
    '',
  );
  const silent = why === SILENT;
  const cause = silent ? `${why}: the state store was unreachable or too slow to answer` : why;
  const next = silent
    ? 'check that the state store answers (`stackflow doctor`), then rerun `stackflow run`: it waits for any run that holds the state by then'
    : 'another run holds the state now: let it finish (`stackflow status` shows what is done), then rerun `stackflow run` for what is left';
  return {
    reason: 'lock-lost',
    message: `stopped: this run lost the state lock (${cause}), so nothing of this task was recorded; ${next}`,
  };
}

/** How this process shares the graph: alone (undefined), through leases, or as a static shard. */
function claimsFor(
  session: Session,
  mode: RunMode,
  worker: string,
  emit: (e: RunEvent) => void,
): Claims | undefined {
  switch (mode.kind) {
    case 'alone':
      return undefined;
    case 'shard':
      return new ShardClaims(mode.index, mode.count);
    case 'worker':
      return new LeaseClaims(session.stores.state, {
        worker,
        host: hostname(),
        ttlMs: mode.ttlMs,
        onEvent: (message) => {
          emit({ type: 'warning', message });
        },
      });
    default:
      return unreachable(mode);
  }
}

/** The bucket for people: a local one as a path relative to the working dir. */
function whereOutputsAre(bucket: string): string {
  if (!bucket.startsWith('file://')) return bucket;
  // Normalized by the parser to file://<absolute path> (not percent-encoded).
  return relative(process.cwd(), bucket.slice('file://'.length)) || '.';
}

/** The command that runs one task (and what it needs) again, with this run's -f/--cache-dir. */
function retryCommand(task: TaskId, o: Common): string {
  const file = relative(process.cwd(), resolve(o.file)) || o.file;
  return [
    'stackflow run',
    shellWord(task),
    ...(file !== 'pipeline.yaml' ? ['-f', shellWord(file)] : []),
    ...(o.cacheDir !== 'cache' ? ['--cache-dir', shellWord(o.cacheDir)] : []),
  ].join(' ');
}

function forcedMatcher(force: boolean | string | undefined): (id: TaskId) => boolean {
  if (force === undefined || force === false) return () => false;
  if (force === true) return () => true;
  const m = globMatcher(force);
  return (id) => m(id) || parseTaskId(id).stage === force;
}

/**
 * The fetch figures for `run-finished`, when a pack fetched: the GETs of every window of the
 * process (the shared adaptive one and packs' fixed ones), the adaptive window's state.
 */
function fetchSummary(): { fetch?: FetchSummary } {
  const w = sharedFetchWindow();
  const all = processFetchCounts();
  if (!w.used && all.requests === 0) return {};
  const st = w.stats();
  return {
    fetch: {
      ceiling: Number.isFinite(st.ceiling) ? st.ceiling : null,
      max: st.max,
      limit: st.limit,
      requests: all.requests,
      peakInFlight: all.peakInFlight,
      throttles: all.throttled,
      decreases: st.decreases,
      peakHeldBytes: st.peakHeldBytes,
      hedged: all.hedged,
      fixedWindows: all.fixedWindows,
    },
  };
}
