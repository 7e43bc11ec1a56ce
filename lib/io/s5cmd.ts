/**
 * s5cmd (https://github.com/peak/s5cmd) as a batch downloader: the command file for a batch,
 * the run through a per-task zx `$`, and the classification of its `--json` output.
 *
 * What s5cmd prints with `--json` (peak/s5cmd `log/message.go`, `command/error.go`,
 * `storage/storage.go`; one JSON object per line, written by `fmt.Fprintln`):
 *
 *   stdout, a download that worked (log.InfoMessage; `size` is omitempty, so absent for 0 bytes):
 *     {"operation":"cp","success":true,"source":"s3://b/k","destination":"d/k.gz",
 *      "object":{"type":"file","size":123}}
 *   stderr, a command that failed (log.ErrorMessage; `command` is `<op> <src> <dst>` unquoted;
 *   `error` is the Go error text with newlines and tabs folded into spaces):
 *     {"operation":"cp","command":"cp s3://b/k d/k.gz",
 *      "error":"NoSuchKey: The specified key does not exist. status code: 404, request id: …, host id: …"}
 *
 * The error text of an S3 error is aws-sdk-go's `<Code>: <Message> status code: <N>, request id:
 * …, host id: …` (the message may be empty: `NoSuchKey: status code: 404, …`). A missing key is
 * the only outcome we treat as data (the blob is gone); everything else, including a missing
 * bucket (also a 404) and 403s, fails the batch. The exit code is 1 when any command failed, so
 * it cannot tell a batch of takedowns from an outage: only the lines can.
 *
 * Run files are read line by line: text after ` #` is dropped even inside quotes, and each line
 * is split like a shell line by go-shellquote (single quotes, double quotes, backslashes; no
 * `$'…'`). Paths that cannot survive that are refused rather than mangled.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Result } from '../errors.js';
import { err, ok, unreachable } from '../errors.js';
import type { Shell } from './process/shell.js';

/** Where users get s5cmd. */
export const S5CMD_RELEASES = 'https://github.com/peak/s5cmd/releases';

/** How many s5cmd error lines a failure message quotes. */
const QUOTED_ERRORS = 3;

/** One line of a run file: download `source` (an s3:// URL) to `dest` (a local path). */
export interface S5cmdCopy {
  source: string;
  dest: string;
}

/** Why `s` cannot appear in an s5cmd run file, or undefined when it can. */
export function runFileProblem(s: string): string | undefined {
  if (/[\n\r\0]/.test(s)) return 'contains a line break or NUL';
  // run.go cuts every line at the first " #" (inline comment), quotes or not.
  if (s.includes(' #')) return 'contains " #", which s5cmd run files treat as a comment';
  // url.New splits on "://" and wants exactly two parts.
  if (s.indexOf('://') !== s.lastIndexOf('://')) return 'contains "://" more than once';
  return undefined;
}

/** Quotes one argument for go-shellquote: single quotes, and `'\''` for a quote inside. */
export function quoteRunArg(s: string): string {
  if (/^[\w/.:@=+,%-]+$/.test(s)) return s;
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** s5cmd treats `*` and `?` as wildcards unless `--raw` is given (cp supports it since v2). */
const hasGlob = (s: string): boolean => /[*?]/.test(s);

/** The run-file line for one copy; `--raw` only when a path has glob characters. */
export function copyLine(c: S5cmdCopy): Result<string> {
  for (const [what, v] of [
    ['source', c.source],
    ['destination', c.dest],
  ] as const) {
    const problem = runFileProblem(v);
    if (problem !== undefined) {
      return err({
        reason: 'invalid-input',
        message: `s5cmd ${what} ${JSON.stringify(v)} ${problem}`,
      });
    }
  }
  const raw = hasGlob(c.source) || hasGlob(c.dest) ? '--raw ' : '';
  return ok(`cp ${raw}${quoteRunArg(c.source)} ${quoteRunArg(c.dest)}\n`);
}

/** Writes a run file, streaming (a part's copies never sit in memory as one string). */
export async function writeRunFile(
  path: string,
  copies: Iterable<S5cmdCopy>,
): Promise<Result<number>> {
  const out = createWriteStream(path);
  let n = 0;
  try {
    for (const c of copies) {
      const line = copyLine(c);
      if (!line.ok) return line;
      if (!out.write(line.value)) await once(out, 'drain');
      n++;
    }
  } finally {
    out.end();
    await once(out, 'close');
  }
  return ok(n);
}

/** Global flags (they go before `run`). */
export interface S5cmdFlags {
  /** `--numworkers`: downloads in flight. */
  workers: number;
  /** `--retry-count`: s5cmd's own retries of one request (throttling, 5xx, resets). */
  retryCount: number;
  /** `--no-sign-request`: anonymous requests (public buckets). */
  unsigned: boolean;
  /** `--endpoint-url`: an S3-compatible server; undefined for AWS. */
  endpoint: string | undefined;
}

/** The argv between the executable and `run`. Never holds credentials: s5cmd reads them itself. */
export function globalArgs(f: S5cmdFlags): string[] {
  return [
    '--json',
    '--numworkers',
    String(f.workers),
    '--retry-count',
    String(f.retryCount),
    ...(f.unsigned ? ['--no-sign-request'] : []),
    ...(f.endpoint === undefined ? [] : ['--endpoint-url', f.endpoint]),
  ];
}

/** One classified output line. */
export type S5cmdLine =
  | {
      /** A download landed at `destination`. */
      kind: 'copied';
      source: string;
      destination: string;
      size: number;
    }
  | {
      /** The key does not exist (NoSuchKey / NotFound / any 404 but NoSuchBucket). */
      kind: 'missing';
      /** The s3:// source, when the line names one. */
      source: string | undefined;
      error: string;
    }
  | {
      /** Any other failure: 403, 5xx after retries, network, a bad command, a missing bucket. */
      kind: 'failed';
      source: string | undefined;
      /** The S3 error code (`AccessDenied`, `SlowDown`), when the text has one. */
      code: string | undefined;
      /** The HTTP status, when the text has one. */
      status: number | undefined;
      /** `command: error`, as s5cmd's text mode would print it. */
      error: string;
    }
  | {
      /** Not a JSON message we know (s5cmd prints a few plain-text lines, e.g. "too many open files"). */
      kind: 'unrecognized';
      text: string;
    };

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The source of an error line's `command` (`cp <src> <dst>`, unquoted). Our destinations have no
 * spaces, so the source is everything between the operation and the last space.
 */
function sourceOfCommand(command: unknown): string | undefined {
  if (typeof command !== 'string' || !command.startsWith('cp s3://')) return undefined;
  const end = command.lastIndexOf(' ');
  return end > 3 ? command.slice(3, end) : undefined;
}

/** True when an s5cmd error text means "no such key". */
export function isMissingKeyError(text: string): boolean {
  const code = /^([A-Za-z][\w.]*): /.exec(text)?.[1];
  if (code === 'NoSuchKey' || code === 'NotFound') return true;
  // A bucket that is not there is a configuration problem, not a takedown.
  if (code === 'NoSuchBucket') return false;
  if (/\bstatus code: 404\b/.test(text)) return true;
  // storage.ErrGivenObjectNotFound (a Stat before the copy, with -n/-s/-u flags).
  return /^given object .* not found$/.test(text);
}

/** Classifies one line of s5cmd's `--json` output (stdout or stderr); undefined for blank lines. */
export function parseS5cmdLine(line: string): S5cmdLine | undefined {
  const text = line.trim();
  if (text === '') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { kind: 'unrecognized', text };
  }
  if (!isRecord(v)) return { kind: 'unrecognized', text };
  if (v.success === true) {
    const obj = isRecord(v.object) ? v.object : {};
    if (v.operation === 'cp' && typeof v.source === 'string' && typeof v.destination === 'string') {
      return {
        kind: 'copied',
        source: v.source,
        destination: v.destination,
        size: typeof obj.size === 'number' ? obj.size : 0,
      };
    }
    return { kind: 'unrecognized', text };
  }
  if (typeof v.error === 'string') {
    const source = v.operation === 'cp' ? sourceOfCommand(v.command) : undefined;
    if (isMissingKeyError(v.error)) return { kind: 'missing', source, error: v.error };
    const status = /\bstatus code: (\d{3})\b/.exec(v.error)?.[1];
    return {
      kind: 'failed',
      source,
      code: /^([A-Za-z][\w.]*): /.exec(v.error)?.[1],
      status: status === undefined ? undefined : Number(status),
      error: typeof v.command === 'string' ? `"${v.command}": ${v.error}` : v.error,
    };
  }
  return { kind: 'unrecognized', text };
}

/** What one s5cmd run said, per source. Memory: one entry per source of the batch. */
export interface S5cmdReport {
  /** Sources that landed on disk. */
  copied: Set<string>;
  /** Sources whose key does not exist. */
  missing: Set<string>;
  /** Failures that are not a missing key; the first few kept verbatim. */
  failed: { count: number; first: string[] };
  /** Lines that are not s5cmd JSON messages; the first few kept verbatim. */
  unrecognized: { count: number; first: string[] };
}

export const emptyReport = (): S5cmdReport => ({
  copied: new Set(),
  missing: new Set(),
  failed: { count: 0, first: [] },
  unrecognized: { count: 0, first: [] },
});

/** Adds one line to a report. */
export function addLine(report: S5cmdReport, line: string): void {
  const l = parseS5cmdLine(line);
  if (l === undefined) return;
  const keep = (into: { count: number; first: string[] }, text: string) => {
    into.count++;
    if (into.first.length < QUOTED_ERRORS) into.first.push(text);
  };
  switch (l.kind) {
    case 'copied':
      report.copied.add(l.source);
      return;
    case 'missing':
      // A 404 without a source cannot be tied to a blob: treat it as a failure, not as data.
      if (l.source === undefined) keep(report.failed, l.error);
      else report.missing.add(l.source);
      return;
    case 'failed':
      keep(report.failed, l.error);
      return;
    case 'unrecognized':
      keep(report.unrecognized, l.text);
      return;
    default:
      unreachable(l);
  }
}

/** Reads s5cmd's output files line by line into a report. */
export async function readReport(paths: readonly string[]): Promise<S5cmdReport> {
  const report = emptyReport();
  for (const p of paths) {
    const lines = createInterface({ input: createReadStream(p), crlfDelay: Infinity });
    for await (const line of lines) addLine(report, line);
  }
  return report;
}

/**
 * Decides whether a batch worked: every source accounted for, as copied or missing, and no other
 * failure. Exit code 1 with only missing keys is a normal outcome. Pure.
 * Returns the sources that are missing.
 */
export function judgeBatch(
  exitCode: number | null,
  report: S5cmdReport,
  sources: Iterable<string>,
): Result<Set<string>> {
  const quote = (xs: string[]) => xs.map((x) => `  ${x}`).join('\n');
  if (report.failed.count > 0) {
    return err({
      reason: 'transient',
      message: `s5cmd: ${report.failed.count} download(s) failed (not a missing key); first:\n${quote(report.failed.first)}`,
    });
  }
  let unaccounted = 0;
  let firstUnaccounted: string | undefined;
  for (const s of sources) {
    if (!report.copied.has(s) && !report.missing.has(s)) {
      unaccounted++;
      firstUnaccounted ??= s;
    }
  }
  const noise =
    report.unrecognized.count > 0 ? `; its other output:\n${quote(report.unrecognized.first)}` : '';
  if (unaccounted > 0) {
    return err({
      reason: 'transient',
      message: `s5cmd exited with code ${String(exitCode)} without reporting ${unaccounted} download(s) (first: ${firstUnaccounted ?? '?'})${noise}`,
    });
  }
  if (exitCode !== 0 && !(exitCode === 1 && report.missing.size > 0)) {
    return err({
      reason: 'transient',
      message: `s5cmd exited with code ${String(exitCode)}${noise}`,
    });
  }
  return ok(report.missing);
}

/**
 * Checks that `bin` runs (`s5cmd version`). A missing executable is `invalid-input` (retrying
 * cannot help) with a message that says how to get it. Returns the version text.
 */
export async function checkS5cmd($: Shell, bin: string): Promise<Result<string>> {
  const out = await $`${bin} version`.nothrow();
  const code = out.exitCode;
  if (code === 0) return ok(out.stdout.trim());
  const how = `Install it from ${S5CMD_RELEASES} (a single static binary) and put it on PATH, set the pack param s5cmd_path, or use the default fetcher: sdk, which needs nothing outside npm.`;
  if (code === 127) {
    return err({
      reason: 'invalid-input',
      message: `fetcher: s5cmd, but s5cmd is not installed or not on PATH (${JSON.stringify(bin)} not found). ${how}`,
    });
  }
  if (code === 126) {
    return err({
      reason: 'invalid-input',
      message: `fetcher: s5cmd, but ${JSON.stringify(bin)} is not executable. ${how}`,
    });
  }
  const said = out.stderr.trim().split('\n').slice(0, QUOTED_ERRORS).join(' / ');
  return err({
    reason: 'invalid-input',
    message: `fetcher: s5cmd, but \`${bin} version\` exited with code ${String(code)}${said === '' ? '' : `: ${said}`}. ${how}`,
  });
}

/** One `s5cmd run` of a command file. */
export interface S5cmdRun {
  /** A zx `$` bound to the task's cwd, env and abort signal. */
  $: Shell;
  bin: string;
  flags: S5cmdFlags;
  /** Extra environment for s5cmd only (e.g. AWS_REGION); never credentials. */
  env: Readonly<Record<string, string>>;
  runFile: string;
  /** Where its stdout and stderr go (files: zx would otherwise hold every line in memory). */
  stdoutFile: string;
  stderrFile: string;
  signal: AbortSignal;
}

/** Runs s5cmd and reads its report; the caller judges it (see judgeBatch). */
export async function runS5cmd(
  r: S5cmdRun,
): Promise<Result<{ exitCode: number | null; report: S5cmdReport }>> {
  const assignments = Object.entries(r.env).map(([k, v]) => `${k}=${v}`);
  const argv = [
    ...(assignments.length > 0 ? ['env', ...assignments] : []),
    r.bin,
    ...globalArgs(r.flags),
    'run',
    r.runFile,
  ];
  // `exec` (and env's own exec): s5cmd replaces the shell, so the abort signal's kill reaches it.
  const out = await r.$`exec ${argv} >${r.stdoutFile} 2>${r.stderrFile}`.nothrow();
  if (r.signal.aborted) return err({ reason: 'aborted', message: 'interrupted' });
  if (out.exitCode === 127 || out.exitCode === 126) {
    return err({
      reason: 'invalid-input',
      message: `s5cmd (${JSON.stringify(r.bin)}) could not be started (exit ${out.exitCode}); see ${S5CMD_RELEASES}`,
    });
  }
  const report = await readReport([r.stdoutFile, r.stderrFile]);
  return ok({ exitCode: out.exitCode, report });
}
