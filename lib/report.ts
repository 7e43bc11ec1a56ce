/**
 * The one printer: events, plans and diagnostics to text. On a TTY a live per-stage display
 * (tasks done/total, rows/s, MB/s); off a TTY one JSON object per line. Nothing else in the
 * engine writes to the console.
 */
import { clearScreenDown, moveCursor } from 'node:readline';
import type { Writable } from 'node:stream';
import type { RunEvent, StageTotals } from './events.js';
import type { Plan, StageName } from './model.js';
import { summarizePlan } from './planner.js';

export interface Printer {
  /** Sets the per-stage totals of the plan being executed. */
  start(totals: StageTotals[]): void;
  emit(e: RunEvent): void;
  /** Stops any live display. */
  close(): void;
}

interface StageLine {
  total: number;
  done: number;
  failed: number;
  /** Not run because something they need failed or was stopped. */
  blocked: number;
  /** Stopped by an interrupt (or a lost lease): neither done nor failed. */
  stopped: number;
  running: number;
  rows: number;
  bytes: number;
  /** First task start and last event of the stage: rates are over its active time. */
  firstAt: number | undefined;
  lastAt: number;
}

const fmtRate = (n: number, secs: number, unit: string, scale = 1): string =>
  secs <= 0 ? `0 ${unit}` : `${(n / scale / secs).toFixed(n / scale / secs < 10 ? 1 : 0)} ${unit}`;

/** Human-readable failure line. */
const failureText = (e: Extract<RunEvent, { type: 'task-failed' }>): string =>
  `✗ ${e.task} failed (${e.failure.reason}): ${e.failure.message}`;

/**
 * A failure event as printed: without its stack (an internal error's, kept for `--debug`), so
 * events and logs never carry stack traces unless asked to.
 */
function shown<E extends RunEvent>(e: E, debug: boolean): E {
  if (debug || e.type !== 'task-failed' || !('stack' in e.failure)) return e;
  const { stack: _stack, ...failure } = e.failure;
  return { ...e, failure };
}

export function makePrinter(
  out: Writable & { isTTY?: boolean },
  err: Writable,
  opts: { json?: boolean; debug?: boolean } = {},
): Printer {
  const debug = opts.debug === true;
  return out.isTTY === true && opts.json !== true
    ? new TtyPrinter(out, err, debug)
    : new JsonPrinter(out, err, debug);
}

/** Failures shown in the closing summary; the rest are counted (all are in the JSON event). */
const SUMMARY_MAX = 20;

/**
 * The closing summary of a run that had failures: per failed task its reason, last error, what
 * it blocked and the command that retries it; then what to do. Empty when nothing failed.
 */
export function renderFailureSummary(e: Extract<RunEvent, { type: 'run-finished' }>): string {
  const lines: string[] = [];
  const n = e.failures.length;
  if (n > 0) {
    lines.push(`${String(n)} task${n === 1 ? '' : 's'} failed:`);
    for (const f of e.failures.slice(0, SUMMARY_MAX)) {
      const where = f.elsewhere !== undefined ? `, in ${f.elsewhere}` : '';
      lines.push(`  ✗ ${f.task} (${f.reason}${where}): ${f.message}`);
      lines.push(
        `      ${f.blocked > 0 ? `blocked ${String(f.blocked)} task${f.blocked === 1 ? '' : 's'} · ` : ''}retry: ${f.retry}`,
      );
    }
    if (n > SUMMARY_MAX) {
      lines.push(
        `  … and ${String(n - SUMMARY_MAX)} more (\`stackflow status\` or --json lists them all)`,
      );
    }
  }
  if (e.notStarted > 0) {
    lines.push(
      `stopped at the first failure (--fail-fast): ${String(e.notStarted)} ready task${e.notStarted === 1 ? '' : 's'} not started`,
    );
  }
  if (n > 0) {
    lines.push(
      'Fix the cause and run the same command again: finished tasks are skipped, failed and blocked ones run. `stackflow reset <task>` makes a task start from scratch.',
    );
  }
  return lines.length > 0 ? lines.join('\n') + '\n' : '';
}

/**
 * One JSON event per line; progress is throttled to one line per task per second, and a task's
 * totals not yet written go out as one last progress line before its end event.
 */
class JsonPrinter implements Printer {
  /**
   * Per running task: its totals so far, when a progress line last went out (ms), and whether
   * that line showed them all.
   */
  private tasks = new Map<string, { rows: number; bytes: number; at: number; shown: boolean }>();
  constructor(
    private readonly out: Writable,
    /** Gets the failure summary as text too, for whoever reads the log (stdout stays JSON). */
    private readonly err: Writable,
    private readonly debug: boolean,
  ) {}
  start(totals: StageTotals[]): void {
    this.write({ type: 'stages', stages: totals });
  }
  emit(e: RunEvent): void {
    if (e.type === 'progress') {
      const t = this.tasks.get(e.task) ?? { rows: 0, bytes: 0, at: 0, shown: false };
      t.rows += e.rows;
      t.bytes += e.bytes;
      this.tasks.set(e.task, t);
      const now = Date.now();
      t.shown = now - t.at >= 1000;
      if (!t.shown) return;
      t.at = now;
      this.write({ ...e, rows: t.rows, bytes: t.bytes });
      return;
    }
    if (e.type === 'task-succeeded' || e.type === 'task-failed') {
      const t = this.tasks.get(e.task);
      if (t !== undefined && !t.shown) {
        this.write({
          type: 'progress',
          task: e.task,
          stage: e.stage,
          rows: t.rows,
          bytes: t.bytes,
        });
      }
      this.tasks.delete(e.task);
    }
    this.write(shown(e, this.debug));
    if (e.type === 'run-finished') this.err.write(renderFailureSummary(e));
  }
  close(): void {
    /* nothing to stop */
  }
  private write(o: object): void {
    this.out.write(JSON.stringify({ time: new Date().toISOString(), ...o }) + '\n');
  }
}

/** A redrawn block with one line per stage, and permanent lines above it for notable events. */
class TtyPrinter implements Printer {
  private stages = new Map<StageName, StageLine>();
  /** Lengths of the lines of the block on screen (empty: none drawn). */
  private drawn: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly out: Writable,
    private readonly err: Writable,
    private readonly debug: boolean,
  ) {}
  start(totals: StageTotals[]): void {
    for (const t of totals) {
      this.stages.set(t.stage, {
        total: t.total,
        done: t.skipped,
        failed: 0,
        blocked: 0,
        stopped: 0,
        running: 0,
        rows: 0,
        bytes: 0,
        firstAt: undefined,
        lastAt: Date.now(),
      });
    }
    this.timer ??= setInterval(() => {
      this.draw();
    }, 250);
    this.timer.unref();
  }
  emit(e: RunEvent): void {
    const s = 'stage' in e ? this.stages.get(e.stage) : undefined;
    if (s !== undefined) {
      s.lastAt = Date.now();
      if (e.type === 'task-started' || e.type === 'verified') s.firstAt ??= s.lastAt;
    }
    switch (e.type) {
      case 'task-started':
        if (s) s.running++;
        return;
      case 'task-succeeded':
        if (s) {
          s.running--;
          s.done++;
        }
        return;
      case 'task-failed':
        if (s) s.running = Math.max(0, s.running - 1);
        if (e.failure.reason === 'aborted') {
          if (s) s.stopped++;
          return;
        }
        if (s) s.failed++;
        this.line(failureText(e));
        if (this.debug && 'stack' in e.failure && e.failure.stack !== undefined) {
          this.line(e.failure.stack);
        }
        return;
      case 'task-blocked':
        if (s) s.blocked++;
        return;
      case 'progress':
        if (s) {
          s.rows += e.rows;
          s.bytes += e.bytes;
        }
        return;
      case 'note':
        this.line(`• ${e.message}`);
        return;
      case 'verified':
        if (s) {
          s.done++;
          if (e.problems.length > 0) s.failed++;
        }
        if (e.problems.length > 0) {
          this.line(`✗ ${e.task}: ${e.problems.map((p) => `${p.key} ${p.kind}`).join(', ')}`);
        }
        return;
      case 'warning':
        this.line(`⚠ ${e.message}`);
        return;
      case 'sizing':
        this.line(`host: ${e.summary}`);
        return;
      case 'retry':
        return;
      case 'plan':
        return;
      case 'state-locked':
        this.line(
          `⏳ another run holds this state: ${e.holder} (pid ${String(e.pid ?? '?')} on host ${e.host}, since ${e.since}); waiting for it to finish (Ctrl-C to stop; --worker on every run shares the work instead)`,
        );
        return;
      case 'run-finished':
        this.draw();
        this.drawn = [];
        this.out.write(renderFailureSummary(e));
        this.out.write(
          `${e.interrupted ? 'interrupted' : e.ok ? 'done' : 'failed'}: ${e.succeeded} ran, ${e.skipped} up to date, ${e.failed} failed, ${e.blocked} blocked` +
            (e.retries > 0 ? `, ${e.retries} task retries` : '') +
            (e.requestRetries > 0 ? `, ${e.requestRetries} request retries` : '') +
            ` in ${(e.ms / 1000).toFixed(1)}s (peak RSS ${e.peakRssMb} MB)\n` +
            (e.outputs !== undefined ? `outputs: ${e.outputs}\n` : ''),
        );
        return;
    }
  }
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
  private line(text: string): void {
    this.clear();
    this.err.write(text + '\n');
    this.draw();
  }
  private clear(): void {
    if (this.drawn.length > 0) {
      // Rows the block takes now: a terminal narrowed since the draw re-wraps its lines.
      const cols = this.columns();
      const rows = this.drawn.reduce((n, len) => n + Math.max(1, Math.ceil(len / cols)), 0);
      moveCursor(this.out, -cols, -rows);
      clearScreenDown(this.out);
      this.drawn = [];
    }
  }
  private columns(): number {
    const c = (this.out as { columns?: number }).columns;
    return c !== undefined && c > 0 ? c : 80;
  }
  private draw(): void {
    this.clear();
    // Each line is cut to the width (one column spare, so no terminal wraps it early): the
    // block is then exactly one row per stage and is redrawn in place.
    const width = Math.max(1, this.columns() - 1);
    const lines = [...this.stages].map(([name, s]) => fit(stageLine(name, s), width));
    this.out.write(lines.map((l) => l + '\n').join(''));
    this.drawn = lines.map((l) => Array.from(l).length);
  }
}

/** One stage of the live display. */
function stageLine(name: string, s: StageLine): string {
  const end = s.running > 0 ? Date.now() : s.lastAt;
  const secs = s.firstAt === undefined ? 0 : (end - s.firstAt) / 1000;
  const bar = s.total === 0 ? 1 : s.done / s.total;
  const filled = Math.round(bar * 20);
  return (
    `${name.padEnd(10)} [${'#'.repeat(filled)}${'.'.repeat(20 - filled)}] ${s.done}/${s.total}` +
    (s.running > 0 ? ` running ${s.running}` : '') +
    (s.failed > 0 ? ` failed ${s.failed}` : '') +
    (s.blocked > 0 ? ` blocked ${s.blocked}` : '') +
    (s.stopped > 0 ? ` stopped ${s.stopped}` : '') +
    (s.rows > 0 ? `  ${fmtRate(s.rows, secs, 'rows/s')}` : '') +
    (s.bytes > 0 ? `  ${fmtRate(s.bytes, secs, 'MB/s', 1e6)}` : '')
  );
}

/** `text` cut to `width` code points, with an ellipsis where it was cut. */
function fit(text: string, width: number): string {
  const cps = Array.from(text);
  return cps.length <= width ? text : cps.slice(0, width - 1).join('') + '…';
}

/** The dry-run table: stage × reason counts, then the first tasks in run order. */
/** The host's sizing decision for `run --dry-run`: the summary, then why. */
export function renderSizing(d: { summary: string; reasons: readonly string[] }): string {
  return [`host: ${d.summary}`, ...d.reasons.map((r) => `  ${r}`), ''].join('\n') + '\n';
}

export function renderPlan(p: Plan, first = 20): string {
  const summary = summarizePlan(p);
  const cols = [...new Set([...summary.values()].flatMap((m) => [...m.keys()]))];
  const order = [
    'missing',
    'input-changed',
    'params-changed',
    'code-changed',
    'output-missing',
    'state-damaged',
    'forced',
    'fresh',
    'blocked',
  ];
  cols.sort((a, b) => order.indexOf(a) - order.indexOf(b));
  const width = Math.max(5, ...[...summary.keys()].map((s) => s.length));
  const lines = [
    ['stage'.padEnd(width), ...cols.map((c) => c.padStart(Math.max(c.length, 6)))].join('  '),
  ];
  for (const [stage, m] of summary) {
    lines.push(
      [
        stage.padEnd(width),
        ...cols.map((c) => String(m.get(c) ?? 0).padStart(Math.max(c.length, 6))),
      ].join('  '),
    );
  }
  const runs = p.steps.filter((s) => s.action !== 'skip');
  lines.push('');
  lines.push(
    runs.length === 0
      ? 'Everything is up to date.'
      : `First tasks in run order (${runs.length} to run or blocked):`,
  );
  for (const s of runs.slice(0, first)) {
    const why =
      s.action === 'run' ? s.reason + (s.detail ? ` (${s.detail})` : '') : `blocked: ${s.detail}`;
    lines.push(`  ${s.action.padEnd(7)} ${s.task}  ${why}`);
  }
  if (runs.length > first) lines.push(`  … and ${runs.length - first} more (--json for all)`);
  return lines.join('\n') + '\n';
}
