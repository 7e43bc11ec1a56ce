/**
 * `stackflow submit slurm`: one Slurm job array whose tasks are `stackflow run --worker`
 * processes sharing one state store.
 *
 *   read (options, paths) → slurmScript (PURE: the sbatch script) → submitSlurm (writes it, runs
 *   `sbatch --parsable`) → job id
 *
 * The array size is only a concurrency level: workers claim ready tasks through leases in the
 * state store, so any number of them cover the graph once and none runs a task twice. Each array
 * task writes its JSON event lines to `<logDir>/<jobId>_<taskIndex>.out`.
 */
import { access, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Failure, Result } from './errors.js';
import { err, ok } from './errors.js';
import type { Shell } from './io/process/shell.js';
import { ensureDir } from './io/fs/mkdirs.js';

/** Everything the sbatch script depends on; paths must be absolute (the job may start anywhere). */
export interface SlurmScriptOptions {
  /** Array size: how many `run --worker` processes Slurm may run at once (`--array=0-(N-1)`). */
  workers: number;
  /** Targets passed to `stackflow run` (stage names, task ids, globs); empty = every stage. */
  targets: string[];
  /** The pipeline file; the job cds to its directory so relative `file://` URLs resolve alike. */
  pipelineFile: string;
  /** The shared cache dir: where the default state store (markers, leases) lives. */
  cacheDir: string;
  /** Where each array task's stdout+stderr goes, as `<logDir>/<jobId>_<taskIndex>.out`. */
  logDir: string;
  /** `--job-name`: what `squeue` shows. */
  jobName: string;
  /** Extra sbatch arguments, one token each (`--partition=debug`), as `#SBATCH` lines after ours. */
  sbatchArgs: string[];
  /** The node binary (process.execPath): the job must not depend on the batch node's PATH. */
  node: string;
  /** Absolute path of bin/stackflow.js. */
  bin: string;
  /** Extra arguments for `stackflow run` (e.g. `-j`, `--only`), after ours. */
  extraArgs?: string[];
}

/** Characters that mean the same unquoted to bash and to sbatch's `#SBATCH` line parser. */
const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** POSIX single quoting for bash: nothing inside is expanded, `'` is closed, escaped, reopened. */
export function shellQuote(s: string): string {
  return SAFE.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * Quoting for a `#SBATCH` line, which sbatch tokenizes itself, not bash: measured on Slurm 22.05,
 * it drops a backslash even inside single quotes, but inside double quotes `\\` and `\"` are
 * escapes and `$`, `'`, `#` and spaces are literal. A newline cannot be represented at all.
 */
export function sbatchQuote(s: string): string {
  return SAFE.test(s) ? s : `"${s.replace(/[\\"]/g, '\\$&')}"`;
}

/**
 * Everything that would make the script mean something other than what was asked, as messages
 * for the user. `slurmScript` refuses options with problems, so callers check first.
 */
export function slurmScriptProblems(o: SlurmScriptOptions): string[] {
  const problems: string[] = [];
  if (!Number.isInteger(o.workers) || o.workers < 1)
    problems.push(`--workers must be a positive integer (got ${String(o.workers)})`);
  const paths = { pipeline: o.pipelineFile, 'cache dir': o.cacheDir, 'log dir': o.logDir };
  for (const [what, p] of Object.entries({ ...paths, node: o.node, bin: o.bin }))
    if (!isAbsolute(p)) problems.push(`Internal error: the ${what} path must be absolute: ${p}`);
  // Slurm reads a backslash anywhere in --output as "expand no %A/%a", and drops it: every array
  // task would write one file that does not exist where we say.
  if (o.logDir.includes('\\'))
    problems.push(`the log dir cannot contain a backslash (Slurm strips it): ${o.logDir}`);
  // `#SBATCH` lines end at a newline; bash single quotes could carry one, sbatch lines cannot.
  const headerValues = [o.logDir, o.jobName, ...o.sbatchArgs];
  for (const v of headerValues)
    if (/[\n\r\0]/.test(v)) problems.push(`sbatch arguments cannot contain line breaks: ${v}`);
  for (const v of [...o.targets, ...Object.values(paths), o.node, o.bin, ...(o.extraArgs ?? [])])
    if (v.includes('\0')) problems.push('arguments cannot contain NUL bytes');
  for (const t of o.targets)
    if (t.startsWith('-')) problems.push(`a target cannot start with "-": ${t}`);
  if (o.jobName === '') problems.push('the job name cannot be empty');
  return [...new Set(problems)];
}

/**
 * The sbatch script: a job array of `stackflow run --worker`, one log per array task.
 *
 * PURE. Every interpolated value is quoted for whoever reads it (bash below, sbatch above the
 * first command), so paths with spaces, `C++` and `$` arrive as given.
 */
export function slurmScript(o: SlurmScriptOptions): string {
  const problems = slurmScriptProblems(o);
  if (problems.length > 0) throw new Error(`Internal error: invalid Slurm options: ${problems[0]}`);
  // `%` would be a Slurm filename pattern; `%%` is a literal one.
  const output = `${o.logDir.replaceAll('%', '%%')}/%A_%a.out`;
  const header = [
    `--job-name=${o.jobName}`,
    `--array=0-${String(o.workers - 1)}`,
    `--output=${output}`,
    ...o.sbatchArgs,
  ].map((a) => `#SBATCH ${sbatchQuote(a)}`);
  const run = [
    shellQuote(o.node),
    shellQuote(o.bin),
    'run',
    ...o.targets.map(shellQuote),
    '--worker',
    // Double quotes on purpose: bash expands these two at run time, per array task.
    '--worker-id',
    '"slurm-${SLURM_ARRAY_JOB_ID}-${SLURM_ARRAY_TASK_ID}"',
    '-f',
    shellQuote(o.pipelineFile),
    '--cache-dir',
    shellQuote(o.cacheDir),
    '--json',
    ...(o.extraArgs ?? []).map(shellQuote),
  ];
  return [
    '#!/bin/bash',
    // sbatch reads #SBATCH lines only up to the first command: they come first.
    ...header,
    '#',
    '# Generated by `stackflow submit slurm`. Each array task is one `stackflow run --worker`: the',
    '# workers claim ready tasks through leases in the state store under --cache-dir, so the array',
    '# size is a concurrency level, not a partition of the work, and no task runs twice.',
    '# The default (file) state store is atomic across processes on ONE machine only: for workers',
    '# on several nodes, point `state:` in the pipeline at S3.',
    '#',
    '# No credentials in this file: sbatch passes the submitting environment to the job (its',
    '# default, --export=ALL), which is how HF_TOKEN and AWS_* reach the workers. An --export=NONE',
    '# (or a site policy that drops the environment) drops them too.',
    'set -euo pipefail',
    `cd ${shellQuote(dirname(o.pipelineFile))}`,
    `exec ${run.join(' ')}`,
    '',
  ].join('\n');
}

/**
 * The job id from `sbatch --parsable` output: `12345`, or `12345;cluster` on a multi-cluster
 * setup. PURE.
 */
export function parseSbatchJobId(stdout: string): Result<{ jobId: string; cluster?: string }> {
  const line = stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .at(-1);
  const m = line === undefined ? null : /^(\d+)(?:;(\S+))?$/.exec(line);
  if (m?.[1] === undefined)
    return err({
      reason: 'invalid-input',
      message: `sbatch printed no job id (expected "<id>" or "<id>;<cluster>"): ${JSON.stringify(stdout.trim())}`,
    });
  return ok(m[2] === undefined ? { jobId: m[1] } : { jobId: m[1], cluster: m[2] });
}

/** How to submit: the script text, where to keep it, and the replaceable effects. */
export interface SubmitSlurmInput {
  /** The sbatch script (see `slurmScript`). */
  script: string;
  /** Created if missing; the script is written here as `submit-<timestamp>.sbatch`. */
  logDir: string;
  /** The shell to run sbatch in (tests pass their own); default: a quiet zx `$` on process.env. */
  $?: Shell;
  /** The sbatch command or path (default `sbatch`, looked up on PATH). */
  sbatch?: string;
  /** Clock for the script's file name. */
  now?: () => Date;
}

/** Controller trouble worth retrying later, as opposed to a request Slurm refuses. */
const TRANSIENT_SBATCH =
  /Socket timed out|Unable to contact slurm controller|Slurm temporarily unable|Resource temporarily unavailable/i;

/**
 * Writes the script next to the logs (so a job's logs and what produced them sit together) and
 * submits it with `sbatch --parsable`. Expected failures (no sbatch, sbatch refusing the job,
 * an unwritable log dir) are values.
 */
export async function submitSlurm(
  input: SubmitSlurmInput,
): Promise<Result<{ jobId: string; scriptPath: string }>> {
  const sbatch = input.sbatch ?? 'sbatch';
  const stamp = (input.now ?? (() => new Date()))().toISOString().replace(/[:.]/g, '-');
  let scriptPath = join(input.logDir, `submit-${stamp}.sbatch`);
  try {
    await ensureDir(input.logDir);
    // Create-only: two submissions in one millisecond get two files, never one overwritten.
    for (let n = 1; ; n++) {
      try {
        await writeFile(scriptPath, input.script, { flag: 'wx', mode: 0o644 });
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || n > 100) throw e;
        scriptPath = join(input.logDir, `submit-${stamp}-${String(n)}.sbatch`);
      }
    }
  } catch (e) {
    return err({
      reason: 'invalid-input',
      message: `cannot write the job script to ${scriptPath}: ${e instanceof Error ? e.message : String(e)}`,
    });
  }
  const $ =
    input.$ ??
    (await import('./io/process/shell.js')).makeShell({
      cwd: process.cwd(),
      signal: new AbortController().signal,
    });
  let out;
  try {
    out = await $`${sbatch} --parsable ${scriptPath}`.nothrow();
  } catch (e) {
    // The shell itself could not start (no bash): the same fix as a missing sbatch.
    return err(notInstalled(sbatch, e instanceof Error ? e.message : String(e), scriptPath));
  }
  const stderr = out.stderr.trim();
  // bash: 127 = command not found, 126 = found but not executable.
  if (out.exitCode === 127 || out.exitCode === 126)
    return err(notInstalled(sbatch, stderr, scriptPath));
  if (out.exitCode !== 0) {
    // sbatch often explains in two lines (the cause, then "Batch job submission failed"): keep
    // both, indented under the first so the message reads as one block after a "❌ ".
    const lines = stderr.split('\n').map((l) => l.trim());
    const message = `sbatch refused the job (exit ${String(out.exitCode)}): ${[
      ...(stderr === '' ? ['(no message)'] : lines.filter(Boolean)),
      `(script: ${scriptPath})`,
    ].join('\n   ')}`;
    return err(
      TRANSIENT_SBATCH.test(stderr)
        ? { reason: 'transient', message }
        : { reason: 'invalid-input', message },
    );
  }
  const id = parseSbatchJobId(out.stdout);
  return id.ok ? ok({ jobId: id.value.jobId, scriptPath }) : id;
}

function notInstalled(sbatch: string, detail: string, scriptPath: string): Failure {
  return {
    reason: 'invalid-input',
    message:
      `cannot run ${sbatch}: the Slurm client is not installed here or not on PATH (${detail || 'not found'}). ` +
      `Submit the script from a Slurm login node: sbatch ${shellQuote(scriptPath)}`,
  };
}

/** `stackflow submit slurm` options, as the CLI parses them. */
export interface SubmitSlurmOptions {
  /** Array size (`--workers N`); validated here, so the CLI may pass any number. */
  workers: number;
  /** `--sbatch-arg ARG`, repeatable, one sbatch token each. */
  sbatchArg: string[];
  /** `--dry-run`: print the script, write and submit nothing. */
  dryRun?: boolean;
  /** `-f, --file`: the pipeline file (resolved against the cwd). */
  file: string;
  /** `--cache-dir`: the shared cache (resolved against the cwd). */
  cacheDir: string;
  /** `--log-dir` (default `<cacheDir>/slurm-logs`). */
  logDir?: string;
}

/** The effects `cmdSubmitSlurm` uses; each has a real default, tests replace them. */
export interface SubmitSlurmDeps {
  $?: Shell;
  sbatch?: string;
  stdout?: (s: string) => void;
  stderr?: (s: string) => void;
  /** Directory that relative paths resolve against (default process.cwd()). */
  cwd?: string;
  /** The CLI entry the workers run (default: this package's bin/stackflow.js). */
  bin?: string;
  /** The node binary the workers run (default process.execPath). */
  node?: string;
}

/**
 * `stackflow submit slurm [targets...]`: prints the job id and where logs go, or the script with
 * --dry-run. Exit codes: 0 submitted (or printed) · 1 submission failed · 2 usage error.
 */
export async function cmdSubmitSlurm(
  targets: string[],
  opts: SubmitSlurmOptions,
  deps: SubmitSlurmDeps = {},
): Promise<number> {
  const stdout = deps.stdout ?? ((s: string) => void process.stdout.write(s));
  const stderr = deps.stderr ?? ((s: string) => void process.stderr.write(s));
  const cwd = deps.cwd ?? process.cwd();
  const cacheDir = resolve(cwd, opts.cacheDir);
  const logDir = resolve(cwd, opts.logDir ?? join(cacheDir, 'slurm-logs'));
  const pipelineFile = resolve(cwd, opts.file);
  const options: SlurmScriptOptions = {
    workers: opts.workers,
    targets,
    pipelineFile,
    cacheDir,
    logDir,
    jobName: 'stackflow',
    sbatchArgs: opts.sbatchArg,
    node: deps.node ?? process.execPath,
    bin: deps.bin ?? defaultBin(),
  };
  const problems = slurmScriptProblems(options);
  try {
    // The workers would all fail on the same missing file, minutes later, in N logs.
    await access(pipelineFile);
  } catch {
    problems.push(`cannot read pipeline file ${opts.file}`);
  }
  if (problems.length > 0) {
    for (const p of problems) stderr(`❌ ${p}\n`);
    return 2;
  }
  const script = slurmScript(options);
  if (opts.dryRun === true) {
    stdout(script);
    return 0;
  }
  const r = await submitSlurm({
    script,
    logDir,
    ...(deps.$ ? { $: deps.$ } : {}),
    ...(deps.sbatch !== undefined ? { sbatch: deps.sbatch } : {}),
  });
  if (!r.ok) {
    stderr(`❌ ${r.error.message}\n`);
    return 1;
  }
  const { jobId, scriptPath } = r.value;
  const last = String(opts.workers - 1);
  stdout(
    [
      `Submitted Slurm job ${jobId}: ${String(opts.workers)} worker${opts.workers === 1 ? '' : 's'} (array 0-${last})`,
      `logs:   ${join(logDir, `${jobId}_<0-${last}>.out`)}`,
      `script: ${scriptPath}`,
      `watch:  squeue -j ${jobId}`,
      '',
    ].join('\n'),
  );
  return 0;
}

/**
 * bin/stackflow.js of this package: two levels up when compiled (dist/lib/slurm.js), one when run
 * from source (lib/slurm.ts under tsx).
 */
function defaultBin(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    resolve(here, '../../bin/stackflow.js'),
    resolve(here, '../bin/stackflow.js'),
  ];
  return candidates.find((p) => existsSync(p)) ?? (candidates[0] as string);
}
