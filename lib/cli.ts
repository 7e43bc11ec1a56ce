/**
 * Composition root: argv → options → command → exit code. The only module that touches
 * process.argv; each command's body lives here when it is a few lines, else in lib/commands/
 * (`run` there owns the run's signals). Commands return exit codes, never call process.exit.
 *
 * Exit codes: 0 ok · 1 some task failed · 2 usage or config error · 130 interrupted.
 */
import { resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { renderGraph } from './graph.js';
import { resolveLanguages, snapshot } from './session.js';
import { statusOf, renderStatus } from './status.js';
import { resetTasks, unlockStale } from './admin.js';
import { doctor } from './doctor.js';
import { cmdSubmitSlurm } from './slurm.js';
import { explain, renderExplanation } from './explain.js';
import type { Common } from './commands/common.js';
import {
  debugOn,
  EXIT,
  exitFor,
  failureLine,
  load,
  positiveInt,
  readPipeline,
  revisionFlag,
  say,
} from './commands/common.js';
import type { RunOpts } from './commands/run.js';
import { cmdRun } from './commands/run.js';
import { cmdPin } from './commands/pin.js';
import { revisionSummary } from './revision.js';
import { STACKFLOW_VERSION } from './version.js';
import { configureEstimate } from './commands/estimate.js';
import { runReport } from './report-html/command.js';
import type { VerifyOpts } from './commands/verify.js';
import { cmdVerify } from './commands/verify.js';

export { EXIT } from './commands/common.js';

export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  const program = new Command('stackflow')
    .description('Content-hashed, resumable pipelines for packaging bigcode/the-stack-v2')
    .version(STACKFLOW_VERSION)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  const common = (c: Command): Command =>
    c
      .option('-f, --file <path>', 'pipeline file', 'pipeline.yaml')
      .option('--cache-dir <dir>', 'local cache: work files, default state and bucket', 'cache')
      .option('--debug', 'show stack traces of internal errors (also STACKFLOW_DEBUG=1)');
  /** For commands whose answer depends on the dataset's commit (lib/revision.ts). */
  const withRevision = (c: Command): Command =>
    c.option(
      '--revision <sha-or-ref>',
      "the dataset's commit instead of the pipeline's: a sha (this command only), or a branch or tag, resolved again and (by a run) recorded in the state for every later run",
      revisionFlag,
    );

  withRevision(common(program.command('run')))
    .description(
      'run targets (stage names, task ids or globs like "pack:C++/*"); all stages by default',
    )
    .argument('[targets...]', 'what to run')
    .option('-n, --dry-run', 'print the plan; write nothing')
    .option(
      '--json',
      'JSON: the full plan with --dry-run, else one event per line even on a terminal',
    )
    .option('-j, --jobs <n>', 'tasks at once (default: from the host, see --dry-run)', (v) =>
      positiveInt(v, '--jobs'),
    )
    .option('--packs <n>', 'packs at once (default: from the host)', (v) =>
      positiveInt(v, '--packs'),
    )
    .option('--line-workers <n>', 'line worker threads per pack (default: from the host)', (v) =>
      positiveInt(v, '--line-workers'),
    )
    .option(
      '--window <n>',
      'blob GETs in flight for this process, shared by its packs (default: from the host)',
      (v) => positiveInt(v, '--window'),
    )
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
      'static sharding without leases: run only shard i of N (0-based), waiting for other shards as needed; without a value, inside a Slurm array (from SLURM_ARRAY_TASK_ID and _MIN/_MAX: any --array=a-b works)',
    )
    .option(
      '--fail-fast',
      'stop starting tasks after the first failure (default: keep going with everything that does not depend on it)',
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

  configureEstimate(common(program.command('estimate')), (c) => {
    code = c;
  });

  withRevision(common(program.command('status')))
    .description('per stage: done / running / stale / pending / failed, and per worker')
    .option('--json', 'machine-readable')
    .action(async (o: Common & { json?: boolean }) => {
      code = await cmdStatus(o);
    });

  withRevision(common(program.command('report')))
    .description(
      'one self-contained HTML page of the run from the state store: totals, progress, timeline, throughput, errors, graph',
    )
    .option('-o, --output <file>', 'where to write the page', 'report.html')
    .option('--watch <seconds>', 'rewrite it every N seconds until interrupted', (v) =>
      positiveInt(v, '--watch'),
    )
    .action(async (o: Common & { output: string; watch?: number }) => {
      code = await cmdReport(o);
    });

  withRevision(common(program.command('graph')))
    .description('print the task graph')
    .addOption(
      new Option('--format <format>', 'output format')
        .choices(['mermaid', 'dot'])
        .default('mermaid'),
    )
    .action(async (o: Common & { format: 'mermaid' | 'dot' }) => {
      code = await cmdGraph(o);
    });

  withRevision(common(program.command('explain')))
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
    .action(async (url: string, o: Common & { json?: boolean }, cmd: Command) => {
      code = await cmdDoctor(url, { ...o, fileGiven: cmd.getOptionValueSource('file') === 'cli' });
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

  withRevision(common(program.command('pin')))
    .description(
      "write the dataset's commit into the pipeline file in place of a branch or tag (comments kept): the commit recorded in the state, else the Hub's",
    )
    .action(async (o: Common) => {
      code = await cmdPin(o);
    });

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

  common(program.command('verify'))
    .description(
      're-read every finished output that markers list and check size and sha256; exit 1 if any is damaged or missing',
    )
    .argument('[targets...]', 'task ids, globs such as "pack:C++/*", or stage names (default: all)')
    .option('--deep', 'hash every output, even where the store keeps its sha256 (S3: re-download)')
    .option('--repair', 'reset exactly the damaged tasks, so the next run redoes them')
    .option('--json', 'machine-readable')
    .option('-j, --jobs <n>', 'outputs checked at once', (v) => positiveInt(v, '--jobs'), 8)
    .action(async (targets: string[], o: Common & VerifyOpts) => {
      code = await cmdVerify(targets, o);
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
    say(`❌ internal error: ${message} (please report it; --debug shows the stack)`);
    if (debugOn({ debug: argv.includes('--debug') }) && e instanceof Error && e.stack) say(e.stack);
    return EXIT.failed;
  }
  return code;
}

async function cmdStatus(o: Common & { json?: boolean }): Promise<number> {
  const loaded = await load(o);
  if (typeof loaded === 'number') return loaded;
  const st = await statusOf(loaded.session);
  if (!st.ok) {
    say(failureLine(st.error));
    return EXIT.failed;
  }
  const json = { ...st.value, revision: revisionSummary(loaded.revision) };
  process.stdout.write(
    o.json === true ? JSON.stringify(json, null, 2) + '\n' : renderStatus(st.value),
  );
  return EXIT.ok;
}

async function cmdReport(o: Common & { output: string; watch?: number }): Promise<number> {
  const loaded = await load(o);
  if (typeof loaded === 'number') return loaded;
  const ac = new AbortController();
  const stop = (): void => {
    ac.abort();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    const r = await runReport(loaded.session, {
      output: resolve(o.output),
      ...(o.watch !== undefined ? { watchS: o.watch } : {}),
      signal: ac.signal,
      say,
    });
    if (!r.ok) {
      say(failureLine(r.error));
      return EXIT.failed;
    }
    return r.value.interrupted ? EXIT.interrupted : EXIT.ok;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

async function cmdDoctor(
  url: string,
  o: Common & { json?: boolean; fileGiven: boolean },
): Promise<number> {
  // The pipeline's s3: block gives endpoints. No file at the default path: the environment's.
  // A file that does not parse is an error, not a silent probe of the default AWS endpoint.
  const parsed = await readPipeline(o, o.fileGiven ? 'error' : 'absent');
  if (typeof parsed === 'number') return parsed;
  const r = await doctor(url, {
    s3Settings: parsed?.s3 ?? {},
    cacheDir: resolve(o.cacheDir),
    json: o.json === true,
  });
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

const plural = (n: number, what: string): string => `${String(n)} ${what}${n === 1 ? '' : 's'}`;

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
    `${plural(r.value.tasks.length, 'task')} reset (${plural(r.value.markers, 'marker')}, ${plural(r.value.leases, 'lease')}, ${plural(r.value.parts, 'part record')} removed); they run again next time\n`,
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
    return exitFor(langs.error);
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
