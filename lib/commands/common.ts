/**
 * What every command shares: exit codes, the pipeline loader and the one-line error printer.
 * Commands return exit codes; only lib/cli.ts and lib/commands/ map failures to them.
 */
import { readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { relative, resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { registry } from '../../tasks/index.js';
import type { Failure, Result } from '../errors.js';
import { err, ok } from '../errors.js';
import { parsePipeline } from '../config/parse.js';
import { renderDiagnostics } from '../config/diagnostics.js';
import type { Pipeline } from '../model.js';
import type { Session } from '../session.js';
import { openSession } from '../session.js';
import type { PinnedRevision } from '../revision.js';
import { pinSessionRevision } from '../revision.js';

/** 0 ok · 1 some task failed · 2 usage or config error · 130 interrupted. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** Options every command takes. */
export interface Common {
  /** The pipeline file (`-f`). */
  file: string;
  /** The local cache: work files, default state and bucket. */
  cacheDir: string;
  /** `--revision`: overrides the pipeline's `dataset.revision` (lib/revision.ts). */
  revision?: string;
  /** Stack traces of internal errors in events and output (`--debug`; also STACKFLOW_DEBUG=1). */
  debug?: boolean;
}

/** Whether stack traces are shown: `--debug` or STACKFLOW_DEBUG set. */
export const debugOn = (o: { debug?: boolean }): boolean =>
  o.debug === true || (process.env.STACKFLOW_DEBUG ?? '') !== '';

/**
 * The exit code of a failure that stops a command before any task runs: 1 when the environment
 * failed (network, permissions, a full disk, a flaky server), 2 for what the user must change in
 * the command or the config.
 */
export function exitFor(f: Failure): number {
  switch (f.reason) {
    case 'transient':
    case 'network-unreachable':
    case 'permission-denied':
    case 'disk-full':
    case 'aborted':
    case 'lock-lost':
    case 'internal-error':
      return EXIT.failed;
    default:
      return EXIT.usage;
  }
}

/** Option parser: commander prints `option '--x <n>' argument '0' is invalid. …` and we exit 2. */
export function positiveInt(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    throw new InvalidArgumentError(`${name} must be a positive integer`);
  }
  return n;
}

/** Option parser for `--revision`: a sha, branch or tag name, never something unprintable. */
export function revisionFlag(v: string): string {
  // eslint-disable-next-line no-control-regex
  if (v === '' || v.length > 256 || /[\u0000-\u0020\u007f-\u009f]/.test(v)) {
    throw new InvalidArgumentError(
      '--revision must be a commit sha, branch or tag name (1–256 characters, no spaces or control characters)',
    );
  }
  return v;
}

export const say = (s: string): void => {
  process.stderr.write(s.endsWith('\n') ? s : s + '\n');
};

export const failureLine = (f: Failure): string => `❌ ${f.message}`;

/** The largest pipeline file read: a real one is kilobytes, even listing every language. */
export const MAX_PIPELINE_BYTES = 1 << 20;

/** The pipeline file's text, refusing an unreadable or implausibly large file (exit 2). */
export async function readPipelineFile(path: string, shown: string): Promise<Result<string>> {
  try {
    const size = (await stat(path)).size;
    if (size > MAX_PIPELINE_BYTES) {
      return err({
        reason: 'invalid-input',
        message: `pipeline file ${shown} is ${(size / (1 << 20)).toFixed(1)} MiB; a pipeline file is at most 1 MiB (is -f pointing at the right file?)`,
      });
    }
    return ok(await readFile(path, 'utf8'));
  } catch (e) {
    const message = `cannot read pipeline file ${shown}`;
    const absent = (e as NodeJS.ErrnoException).code === 'ENOENT';
    return err(
      absent ? { reason: 'not-found', key: path, message } : { reason: 'invalid-input', message },
    );
  }
}

/**
 * Reads and parses the pipeline file; on error prints why (diagnostics located at line:col, all
 * at once) and returns the exit code. `missing: 'absent'` returns undefined for a file that does
 * not exist, for commands that can do without one.
 */
export async function readPipeline(
  o: Common,
  missing: 'error' | 'absent' = 'error',
): Promise<Pipeline | number | undefined> {
  const path = resolve(o.file);
  const read = await readPipelineFile(path, o.file);
  if (!read.ok) {
    if (missing === 'absent' && read.error.reason === 'not-found') return undefined;
    say(failureLine(read.error));
    return EXIT.usage;
  }
  const text = read.value;
  const display = relative(process.cwd(), path) || o.file;
  const parsed = parsePipeline(text, { path, displayName: display, cacheDir: resolve(o.cacheDir) });
  if (!parsed.ok) {
    say(renderDiagnostics(parsed.error, new Map([[display, text]])));
    const n = parsed.error.length;
    say(`${n} error${n === 1 ? '' : 's'} in ${display}`);
    return EXIT.usage;
  }
  return parsed.value;
}

/**
 * Parses the pipeline, opens its stores and sources, and pins the dataset revision: the state's
 * record of it, else the Hub's answer, recorded for the fleet when `record` (a real run, `pin`).
 * `prepare` adjusts the parsed pipeline before its stores open (run: the host's sizing, which
 * also decides how many sockets the content store gets).
 */
export async function load(
  o: Common,
  opts: {
    record?: boolean;
    prepare?: (p: Pipeline) => Promise<Pipeline>;
    /** The run's interrupt, for the stores. */
    signal?: AbortSignal;
  } = {},
): Promise<{ pipeline: Pipeline; session: Session; revision: PinnedRevision } | number> {
  const { prepare } = opts;
  const parsed = await readPipeline(o);
  if (typeof parsed !== 'object') return parsed ?? EXIT.usage;
  const display = relative(process.cwd(), resolve(o.file)) || o.file;
  const pipeline = prepare ? await prepare(parsed) : parsed;
  const session = openSession(
    pipeline,
    resolve(o.cacheDir),
    registry,
    opts.signal ? { signal: opts.signal } : {},
  );
  if (!session.ok) {
    say(failureLine(session.error));
    return EXIT.usage;
  }
  const pinned = await pinSessionRevision(session.value, {
    record: opts.record === true,
    host: hostname(),
    file: display,
    ...(o.revision !== undefined ? { override: o.revision } : {}),
  });
  if (!pinned.ok) {
    say(failureLine(pinned.error));
    return exitFor(pinned.error);
  }
  for (const n of pinned.value.revision.notes) {
    say(`${n.level === 'warning' ? '⚠ ' : ''}${n.message}`);
  }
  const { session: pinnedSession, revision } = pinned.value;
  return { pipeline: pinnedSession.pipeline, session: pinnedSession, revision };
}

export function unknownTargets(names: string[]): number {
  say(
    `❌ unknown target${names.length > 1 ? 's' : ''}: ${names.join(', ')} (use a stage name, a task id or a glob such as "pack:C++/*")`,
  );
  return EXIT.usage;
}
