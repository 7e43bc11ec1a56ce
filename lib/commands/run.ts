/**
 * `stackflow run`: the plan → execute → re-plan round loop, alone, as a lease worker or as a
 * static shard. Owns the run's signals and the printer for its events.
 */
import { hostname } from 'node:os';
import { relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Result } from '../errors.js';
import { err, ok } from '../errors.js';
import type { Claims } from '../leases.js';
import { defaultWorkerId, LeaseClaims, parseShard, ShardClaims } from '../leases.js';
import { checkFreeSpace } from '../io/disk.js';
import type { Graph } from '../graph.js';
import type { RunEvent } from '../events.js';
import { execute } from '../executor.js';
import { globMatcher, parseTaskId } from '../graph.js';
import type { ManifestEntry, Pipeline, Plan, StageName, TaskId } from '../model.js';
import { plan } from '../planner.js';
import { makePrinter, renderPlan, renderSizing } from '../report.js';
import type { SizingDecision } from '../sizing.js';
import { sizeForHost } from '../host.js';
import type { Session } from '../session.js';
import { resolveLanguages, snapshot } from '../session.js';
import { cachedProbe, leaseSupport } from '../io/probe.js';
import type { Common } from './common.js';
import { EXIT, failureLine, load, say, unknownTargets } from './common.js';
import { catchInterrupts } from './interrupt.js';
import { ensureDir } from '../io/mkdirs.js';
import { preflight, renderPreflight } from '../preflight.js';
import { sweepScratch } from '../scratch.js';

/** `run`'s own options (commander camel-cases the flags). */
export interface RunOpts {
  dryRun?: boolean;
  json?: boolean;
  jobs?: number;
  packs?: number;
  lineWorkers?: number;
  window?: number;
  force?: boolean | string;
  only?: string[];
  worker?: boolean;
  workerId?: string;
  shard?: boolean | string;
  leaseTtl?: number;
  poll?: number;
}

/** How this process shares the graph: alone, through leases, or as a static shard. */
function claimsFor(
  session: Session,
  o: RunOpts,
  emit: (e: RunEvent) => void,
): Result<{ claims: Claims | undefined; worker: string }> {
  const worker = o.workerId ?? defaultWorkerId(hostname());
  if (o.shard !== undefined && o.shard !== false) {
    if (o.worker === true) {
      return err({ reason: 'invalid-input', message: '--worker and --shard exclude each other' });
    }
    const spec =
      o.shard === true
        ? process.env.SLURM_ARRAY_TASK_ID !== undefined &&
          process.env.SLURM_ARRAY_TASK_COUNT !== undefined
          ? `${process.env.SLURM_ARRAY_TASK_ID}/${process.env.SLURM_ARRAY_TASK_COUNT}`
          : undefined
        : o.shard;
    if (spec === undefined) {
      return err({
        reason: 'invalid-input',
        message: '--shard without i/N needs SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT',
      });
    }
    const sh = parseShard(spec);
    if (!sh.ok) return sh;
    return ok({ claims: new ShardClaims(sh.value.index, sh.value.count), worker });
  }
  if (o.worker !== true) return ok({ claims: undefined, worker });
  if (o.force !== undefined && o.force !== false) {
    // Each worker would force the tasks again, or none would: a finished claim stays as the
    // record of its fingerprint (lib/leases.ts). Forgetting markers is reset's job, done once.
    return err({
      reason: 'invalid-input',
      message:
        '--force does not combine with --worker: run `stackflow reset <pattern>` once, then start the workers',
    });
  }
  return ok({
    claims: new LeaseClaims(session.stores.state, {
      worker,
      host: hostname(),
      ttlMs: (o.leaseTtl ?? 60) * 1000,
      onEvent: (message) => {
        emit({ type: 'warning', message });
      },
    }),
    worker,
  });
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
 * A worker's plan without what failed in this process (and what depends on it, directly or by
 * awaiting its manifest): it tried those already, and other workers decide for themselves.
 */
function withoutFailed(p: Plan, graph: Graph, failed: ReadonlySet<TaskId>): Plan {
  if (failed.size === 0) return p;
  const out = new Set<TaskId>(failed);
  const awaiting = new Map(graph.pending.map((x) => [x.id, x.awaiting]));
  const steps = p.steps.filter((st) => {
    const deps = graph.tasks.get(st.task)?.deps ?? [];
    const waitsOn = st.action === 'blocked' ? awaiting.get(st.task) : undefined;
    const dead =
      out.has(st.task) ||
      deps.some((d) => out.has(d)) ||
      (waitsOn !== undefined && out.has(waitsOn));
    if (dead) out.add(st.task);
    return !dead;
  });
  return { steps };
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

export async function cmdRun(targetsIn: string[], o: Common & RunOpts): Promise<number> {
  // Signals are honoured from here on, while loading and checking too (lib/commands/interrupt.ts).
  const interrupts = catchInterrupts();
  try {
    const code = await runTargets(targetsIn, o, interrupts.signal);
    return interrupts.signal.aborted ? EXIT.interrupted : code;
  } finally {
    interrupts.dispose();
  }
}

async function runTargets(
  targetsIn: string[],
  o: Common & RunOpts,
  signal: AbortSignal,
): Promise<number> {
  // A function, not a narrowed property: the signal aborts behind the compiler's back.
  const stopped = (): boolean => signal.aborted;
  let sizing: SizingDecision | undefined;
  const loaded = await load(o, {
    record: o.dryRun !== true,
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
    return EXIT.usage;
  }
  const forced = forcedMatcher(o.force);
  if (o.dryRun === true) {
    const snap = await snapshot(session, langs.value, targets, { preview: true });
    if (!snap.ok) {
      say(failureLine(snap.error));
      return EXIT.usage;
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

  // Interrupts: cmdRun (lib/commands/interrupt.ts).
  const ac = { signal };
  // Scratch dirs that killed runs left behind (their owner is gone): lib/scratch.ts.
  const swept = await sweepScratch(session.cacheDir);
  if (swept.removed.length > 0) {
    const n = swept.removed.length;
    say(`removed ${String(n)} scratch dir${n === 1 ? '' : 's'} left by killed runs`);
  }
  const printer = makePrinter(process.stdout, process.stderr, { json: o.json === true });
  const emit = (e: RunEvent): void => {
    printer.emit(e);
  };
  if (sizing) emit({ type: 'sizing', summary: sizing.summary, reasons: sizing.reasons });
  const started = Date.now();
  const totals = { succeeded: 0, failed: 0, skipped: 0, blocked: 0, retries: 0 };
  let interrupted = false;
  const shared = claimsFor(session, o, emit);
  if (!shared.ok) {
    say(failureLine(shared.error));
    return EXIT.usage;
  }
  if (o.worker === true) {
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
  const { claims, worker } = shared.value;
  /** Tasks that failed in this process: not tried again by it, and what they block. */
  const failedHere = new Set<TaskId>();
  const pollMs = o.poll ?? 500;
  try {
    for (let round = 1; ; round++) {
      const snap = await snapshot(session, langs.value, targets, { preview: false });
      if (!snap.ok) {
        say(failureLine(snap.error));
        return EXIT.failed;
      }
      if (round === 1 && snap.value.unknownTargets.length > 0)
        return unknownTargets(snap.value.unknownTargets);
      const full = plan({ ...snap.value.plannerInput, forced: round === 1 ? forced : () => false });
      const p = claims ? withoutFailed(full, snap.value.graph, failedHere) : full;
      const count = (a: string): number => p.steps.filter((s) => s.action === a).length;
      emit({
        type: 'plan',
        round,
        run: count('run'),
        skip: count('skip'),
        blocked: count('blocked'),
      });
      // Tasks that ran in earlier rounds show up as fresh now: they are not "up to date" skips.
      totals.skipped = count('skip') - totals.succeeded;
      totals.blocked = count('blocked');
      if (claims !== undefined && count('run') === 0) {
        // A worker is done when nothing is left to run or wait for.
        if (count('blocked') === 0 || stopped()) break;
        await pause(pollMs, ac.signal);
        continue;
      }
      const pre = await preflightDownloads(session, p, snap.value.graph);
      if (!pre.ok) {
        say(failureLine(pre.error));
        return pre.error.reason === 'transient' ? EXIT.failed : EXIT.usage;
      }
      printer.start(stageTotals(p.steps, pipeline));
      const held = claims?.held ? await claims.held() : undefined;
      const res = await execute(p, {
        pipeline,
        graph: snap.value.graph,
        fingerprints: snap.value.fingerprints,
        markers: snap.value.markers,
        stores: session.stores,
        hub: session.hub,
        content: session.content,
        registry: session.registry,
        cacheDir: session.cacheDir,
        emit,
        signal: ac.signal,
        jobs: o.jobs ?? sizing?.jobs ?? 2,
        worker,
        failures: snap.value.failures,
        ...(held?.ok === true ? { heldElsewhere: held.value } : {}),
        ...(claims ? { claims } : {}),
      });
      totals.succeeded += res.succeeded.size;
      totals.failed += res.failed.size;
      totals.retries += res.retries;
      totals.blocked = res.blocked.size + count('blocked');
      interrupted = res.interrupted;
      if (res.interrupted) break;
      if (claims !== undefined) {
        for (const id of res.failed.keys()) failedHere.add(id);
        // Others hold what is left: give them time before planning again.
        if (res.succeeded.size === 0 && res.failed.size === 0) await pause(pollMs, ac.signal);
        continue;
      }
      if (res.failed.size > 0) break;
      // New manifests: expand what was waiting for them and go again (what just ran is skipped).
      if (res.manifests.size === 0 || snap.value.graph.pending.length === 0 || round >= 8) break;
    }
  } finally {
    // Interrupt handlers are removed by cmdRun.
  }
  emit({
    type: 'run-finished',
    ok: totals.failed === 0 && !interrupted,
    interrupted,
    ...totals,
    requestRetries: session.requestRetries.count,
    ms: Date.now() - started,
    // maxRSS is in KiB on Linux and macOS.
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    outputs: whereOutputsAre(pipeline.bucket),
  });
  printer.close();
  if (interrupted) return EXIT.interrupted;
  return totals.failed > 0 ? EXIT.failed : EXIT.ok;
}

/** The bucket for people: a local one as a path relative to the working dir. */
function whereOutputsAre(bucket: string): string {
  if (!bucket.startsWith('file://')) return bucket;
  // Normalized by the parser to file://<absolute path> (not percent-encoded).
  return relative(process.cwd(), bucket.slice('file://'.length)) || '.';
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

function forcedMatcher(force: boolean | string | undefined): (id: TaskId) => boolean {
  if (force === undefined || force === false) return () => false;
  if (force === true) return () => true;
  const m = globMatcher(force);
  return (id) => m(id) || parseTaskId(id).stage === force;
}
