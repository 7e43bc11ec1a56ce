/**
 * Composition root: argv → options → real adapters → run → exit code. The only module that
 * touches process.argv, signals and exit codes.
 *
 * Exit codes: 0 ok · 1 some task failed · 2 usage or config error · 130 interrupted.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { relative, resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { registry } from '../tasks/index.js';
import type { Failure, Result } from './errors.js';
import { err, ok } from './errors.js';
import type { Claims } from './leases.js';
import { defaultWorkerId, LeaseClaims, parseShard, ShardClaims } from './leases.js';
import { checkFreeSpace } from './io/disk.js';
import type { Graph } from './graph.js';
import { parsePipeline } from './config/parse.js';
import { renderDiagnostics } from './config/diagnostics.js';
import type { RunEvent } from './events.js';
import { execute } from './executor.js';
import { globMatcher, parseTaskId, renderGraph } from './graph.js';
import type { ManifestEntry, Pipeline, Plan, StageName, TaskId } from './model.js';
import { plan } from './planner.js';
import { makePrinter, renderPlan } from './report.js';
import type { Session } from './session.js';
import { openSession, pinRevision, resolveLanguages, snapshot } from './session.js';
import { statusOf, renderStatus } from './status.js';
import { resetTasks, unlockStale } from './admin.js';
import { doctor } from './doctor.js';
import { cmdSubmitSlurm } from './slurm.js';
import { cachedProbe, leaseSupport } from './io/probe.js';
import { explain, renderExplanation } from './explain.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

interface Common {
  file: string;
  cacheDir: string;
}

export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  const program = new Command('stackflow')
    .description('Content-hashed, resumable pipelines for packaging bigcode/the-stack-v2')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  const common = (c: Command): Command =>
    c
      .option('-f, --file <path>', 'pipeline file', 'pipeline.yaml')
      .option('--cache-dir <dir>', 'local cache: work files, default state and bucket', 'cache');

  common(program.command('run'))
    .description(
      'run targets (stage names, task ids or globs like "pack:C++/*"); all stages by default',
    )
    .argument('[targets...]', 'what to run')
    .option('-n, --dry-run', 'print the plan; write nothing')
    .option(
      '--json',
      'JSON: the full plan with --dry-run, else one event per line even on a terminal',
    )
    .option('-j, --jobs <n>', 'tasks at once', (v) => positiveInt(v, '--jobs'), 2)
    .addOption(
      new Option(
        '--force [pattern]',
        'rerun tasks even if up to date (all targeted, or those matching)',
      ),
    )
    .option('--only <languages>', 'comma-separated languages to restrict to', (v) =>
      v
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    )
    .option(
      '--worker',
      'one of many workers on a shared state: claim tasks through leases, wait for tasks others hold, exit when the targets are complete',
    )
    .option(
      '--worker-id <id>',
      'name of this worker in markers, leases and status (default host-pid)',
    )
    .option(
      '--shard [i/N]',
      'static sharding without leases: run only shard i of N (0-based), waiting for other shards as needed; without a value, from SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT',
    )
    .option('--lease-ttl <seconds>', 'with --worker: how long a silent worker keeps a task', (v) =>
      positiveInt(v, '--lease-ttl'),
    )
    .option('--poll <ms>', 'with --worker/--shard: pause between plans while others work', (v) =>
      positiveInt(v, '--poll'),
    )
    .action(async (targets: string[], o: Common & RunOpts) => {
      code = await cmdRun(targets, o);
    });

  common(program.command('status'))
    .description('per stage: done / running / stale / pending / failed, and per worker')
    .option('--json', 'machine-readable')
    .action(async (o: Common & { json?: boolean }) => {
      code = await cmdStatus(o);
    });

  common(program.command('graph'))
    .description('print the task graph')
    .addOption(
      new Option('--format <format>', 'output format')
        .choices(['mermaid', 'dot'])
        .default('mermaid'),
    )
    .action(async (o: Common & { format: 'mermaid' | 'dot' }) => {
      code = await cmdGraph(o);
    });

  common(program.command('explain'))
    .description(
      'why a task would run: its stored fingerprint against the current one, field by field',
    )
    .argument('<task>', 'a task id, e.g. pack:C++/train-00000-of-00002')
    .option('--json', 'machine-readable')
    .action(async (task: string, o: Common & { json?: boolean }) => {
      code = await cmdExplain(task, o);
    });

  program
    .command('doctor')
    .description(
      'probe a store: which conditional writes it really enforces, its clock, and whether workers can claim tasks dynamically there',
    )
    .argument('<store-url>', 's3://bucket/prefix or file:///dir')
    .option(
      '-f, --file <path>',
      'pipeline file whose s3: block gives endpoints (if it exists)',
      'pipeline.yaml',
    )
    .option('--cache-dir <dir>', 'where the report is cached for runs', 'cache')
    .option('--json', 'machine-readable')
    .action(async (url: string, o: Common & { json?: boolean }) => {
      code = await cmdDoctor(url, o);
    });

  const submit = program.command('submit').description('start workers on a cluster engine');
  common(submit.command('slurm'))
    .description(
      'submit an sbatch array of workers on the shared state; prints the job id (logs: <cache-dir>/slurm-logs/)',
    )
    .argument('[targets...]', 'what the workers run (default: every stage)')
    .requiredOption('--workers <n>', 'array tasks (workers)', (v) => positiveInt(v, '--workers'))
    .option(
      '--sbatch-arg <arg>',
      'extra #SBATCH line, e.g. --sbatch-arg=--partition=cpu (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--log-dir <dir>', 'where each array task logs (default <cache-dir>/slurm-logs)')
    .option('-n, --dry-run', 'print the script; submit nothing')
    .action(
      async (
        targets: string[],
        o: Common & { workers: number; sbatchArg: string[]; logDir?: string; dryRun?: boolean },
      ) => {
        code = await cmdSubmitSlurm(targets, {
          workers: o.workers,
          sbatchArg: o.sbatchArg,
          dryRun: o.dryRun === true,
          file: o.file,
          cacheDir: o.cacheDir,
          ...(o.logDir !== undefined ? { logDir: o.logDir } : {}),
        });
      },
    );

  common(program.command('unlock'))
    .description('drop leases whose holder stopped heartbeating past its TTL (store clock)')
    .option('--stale', 'required: only stale leases are ever dropped')
    .action(async (o: Common & { stale?: boolean }) => {
      code = await cmdUnlock(o);
    });

  common(program.command('reset'))
    .description('forget the completion markers of matching tasks so they run again')
    .argument('<patterns...>', 'task ids, globs such as "pack:C++/*", or stage names')
    .action(async (patterns: string[], o: Common) => {
      code = await cmdReset(patterns, o);
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      const fine = ['commander.helpDisplayed', 'commander.version', 'commander.help'];
      return fine.includes(e.code) ? EXIT.ok : EXIT.usage;
    }
    // A bug, not bad input: one line for the user, the stack only on request.
    const message = e instanceof Error ? e.message : String(e);
    say(`❌ internal error: ${message} (please report it; STACKFLOW_DEBUG=1 shows the stack)`);
    if (process.env.STACKFLOW_DEBUG && e instanceof Error && e.stack) say(e.stack);
    return EXIT.failed;
  }
  return code;
}

interface RunOpts {
  dryRun?: boolean;
  json?: boolean;
  jobs: number;
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

/** Option parser: commander prints `option '--x <n>' argument '0' is invalid. …` and we exit 2. */
function positiveInt(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    throw new InvalidArgumentError(`${name} must be a positive integer`);
  }
  return n;
}

const say = (s: string): void => {
  process.stderr.write(s.endsWith('\n') ? s : s + '\n');
};

const failureLine = (f: Failure): string => `❌ ${f.message}`;

/** Reads and parses the pipeline; prints diagnostics and returns undefined on error. */
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
  await mkdir(session.cacheDir, { recursive: true });
  const r = await checkFreeSpace(
    session.cacheDir,
    bytes,
    `the ${String(files.length)} parquet file${files.length === 1 ? '' : 's'} this run downloads`,
  );
  return r.ok ? ok(undefined) : r;
}

/** Parses the pipeline, opens its stores and sources, and pins the dataset revision. */
async function load(o: Common): Promise<{ pipeline: Pipeline; session: Session } | number> {
  const path = resolve(o.file);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    say(`❌ cannot read pipeline file ${o.file}`);
    return EXIT.usage;
  }
  const display = relative(process.cwd(), path) || o.file;
  const parsed = parsePipeline(text, { path, displayName: display, cacheDir: resolve(o.cacheDir) });
  if (!parsed.ok) {
    say(renderDiagnostics(parsed.error, new Map([[display, text]])));
    const n = parsed.error.length;
    say(`${n} error${n === 1 ? '' : 's'} in ${display}`);
    return EXIT.usage;
  }
  const session = openSession(parsed.value, resolve(o.cacheDir), registry);
  if (!session.ok) {
    say(failureLine(session.error));
    return EXIT.usage;
  }
  const pinned = await pinRevision(session.value);
  if (!pinned.ok) {
    say(failureLine(pinned.error));
    return pinned.error.reason === 'transient' ? EXIT.failed : EXIT.usage;
  }
  const { from, to } = pinned.value;
  if (from !== to)
    say(
      `revision ${from} is commit ${to}: pinned for this run (write it in ${display} to keep it)`,
    );
  return { pipeline: pinned.value.session.pipeline, session: pinned.value.session };
}

async function cmdRun(targetsIn: string[], o: Common & RunOpts): Promise<number> {
  const loaded = await load(o);
  if (typeof loaded === 'number') return loaded;
  const { pipeline, session } = loaded;
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
    process.stdout.write(o.json === true ? JSON.stringify(p, null, 2) + '\n' : renderPlan(p));
    return EXIT.ok;
  }

  const ac = new AbortController();
  const onSigint = (): void => {
    if (ac.signal.aborted) process.exit(EXIT.interrupted);
    say('\ninterrupt: stopping running tasks (press Ctrl-C again to quit at once)');
    ac.abort();
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  const printer = makePrinter(process.stdout, process.stderr, { json: o.json === true });
  const emit = (e: RunEvent): void => {
    printer.emit(e);
  };
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
        if (count('blocked') === 0 || ac.signal.aborted) break;
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
        jobs: o.jobs,
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
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
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
  });
  printer.close();
  if (interrupted) return EXIT.interrupted;
  return totals.failed > 0 ? EXIT.failed : EXIT.ok;
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

function unknownTargets(names: string[]): number {
  say(
    `❌ unknown target${names.length > 1 ? 's' : ''}: ${names.join(', ')} (use a stage name, a task id or a glob such as "pack:C++/*")`,
  );
  return EXIT.usage;
}

async function cmdStatus(o: Common & { json?: boolean }): Promise<number> {
  const loaded = await load(o);
  if (typeof loaded === 'number') return loaded;
  const st = await statusOf(loaded.session);
  if (!st.ok) {
    say(failureLine(st.error));
    return EXIT.failed;
  }
  process.stdout.write(
    o.json === true ? JSON.stringify(st.value, null, 2) + '\n' : renderStatus(st.value),
  );
  return EXIT.ok;
}

async function cmdDoctor(url: string, o: Common & { json?: boolean }): Promise<number> {
  let s3Settings: Pipeline['s3'] = {};
  try {
    const path = resolve(o.file);
    const text = await readFile(path, 'utf8');
    const parsed = parsePipeline(text, {
      path,
      displayName: o.file,
      cacheDir: resolve(o.cacheDir),
    });
    if (parsed.ok) s3Settings = parsed.value.s3;
  } catch {
    // no pipeline file: endpoints come from the environment
  }
  const r = await doctor(url, { s3Settings, cacheDir: resolve(o.cacheDir), json: o.json === true });
  process.stdout.write(r.out);
  return r.code;
}

async function cmdUnlock(o: Common & { stale?: boolean }): Promise<number> {
  if (o.stale !== true) {
    say(
      '❌ unlock needs --stale: only leases whose holder stopped heartbeating are dropped (dropping a live one would let two workers run one task)',
    );
    return EXIT.usage;
  }
  const loaded = await load(o);
  if (typeof loaded === 'number') return loaded;
  const r = await unlockStale(loaded.session);
  if (!r.ok) {
    say(failureLine(r.error));
    return EXIT.failed;
  }
  for (const l of r.value.dropped) {
    process.stdout.write(`dropped the lease of ${l.task} held by ${l.worker} on ${l.host}\n`);
  }
  process.stdout.write(
    `${String(r.value.dropped.length)} stale lease${r.value.dropped.length === 1 ? '' : 's'} dropped; ${String(r.value.live)} live left alone\n`,
  );
  return EXIT.ok;
}

async function cmdReset(patterns: string[], o: Common): Promise<number> {
  const loaded = await load(o);
  if (typeof loaded === 'number') return loaded;
  const r = await resetTasks(loaded.session, patterns);
  if (!r.ok) {
    say(failureLine(r.error));
    return r.error.reason === 'invalid-input' ? EXIT.usage : EXIT.failed;
  }
  for (const t of r.value.tasks) process.stdout.write(`reset ${t}\n`);
  process.stdout.write(
    `${String(r.value.tasks.length)} task${r.value.tasks.length === 1 ? '' : 's'} reset (${String(r.value.markers)} marker${r.value.markers === 1 ? '' : 's'}, ${String(r.value.leases)} lease${r.value.leases === 1 ? '' : 's'} removed); they run again next time\n`,
  );
  return EXIT.ok;
}

async function cmdExplain(task: string, o: Common & { json?: boolean }): Promise<number> {
  const loaded = await load(o);
  if (typeof loaded === 'number') return loaded;
  const r = await explain(loaded.session, task);
  if (!r.ok) {
    say(failureLine(r.error));
    return r.error.reason === 'invalid-input' ? EXIT.usage : EXIT.failed;
  }
  process.stdout.write(
    o.json === true ? JSON.stringify(r.value, null, 2) + '\n' : renderExplanation(r.value),
  );
  return EXIT.ok;
}

async function cmdGraph(o: Common & { format: 'mermaid' | 'dot' }): Promise<number> {
  const loaded = await load(o);
  if (typeof loaded === 'number') return loaded;
  const langs = await resolveLanguages(loaded.session, undefined);
  if (!langs.ok) {
    say(failureLine(langs.error));
    return EXIT.usage;
  }
  const snap = await snapshot(
    loaded.session,
    langs.value,
    loaded.pipeline.stages.map((s) => s.name),
    { preview: true },
  );
  if (!snap.ok) {
    say(failureLine(snap.error));
    return EXIT.failed;
  }
  process.stdout.write(renderGraph(snap.value.graph, o.format));
  return EXIT.ok;
}
