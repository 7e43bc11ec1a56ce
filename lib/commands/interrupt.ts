/**
 * SIGINT and SIGTERM for `run`, from its first line (loading and preflight included, not only
 * while tasks run):
 *
 *   1st signal  the returned signal aborts: running tasks are stopped (no marker is written for
 *               them), nothing new starts, and the run ends with exit 130. If it has not ended
 *               `graceMs` later (something ignores the abort), the process exits 130 anyway.
 *               While no task runs (loading, listing, planning, a pause between rounds) there
 *               is nothing to wait for: the grace is `idleGraceMs`, just long enough for the
 *               code to unwind (give back the state lock) if it can.
 *   2nd signal  exits 130 at once.
 *
 * Either way, shell commands still running are killed with their process group first.
 */
import { killAllGroups } from '../io/process/process-groups.js';
import { EXIT, say } from './common.js';

export interface Interrupts {
  /** Aborts on the first SIGINT/SIGTERM. */
  signal: AbortSignal;
  /** Whether tasks are running now (the first signal then stops them instead of exiting). */
  tasksRunning(running: boolean): void;
  /**
   * The run is over: removes the handlers. After an interrupt they stay, and so does the grace
   * timer (it cannot keep the process alive): a process that lingers still exits in time.
   */
  dispose(): void;
}

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/** Installs the handlers; see the file comment. */
export function catchInterrupts(opts: { graceMs?: number; idleGraceMs?: number } = {}): Interrupts {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  const quit = (why: string): never => {
    say(why);
    killAllGroups();
    process.exit(EXIT.interrupted);
  };
  const onSignal = (name: NodeJS.Signals): void => {
    if (ac.signal.aborted) quit(`${name} again: quitting now`);
    say(`\n${name}: stopping running tasks (send it again to quit at once)`);
    ac.abort(new Error(`interrupted by ${name}`));
    const graceMs = running ? (opts.graceMs ?? 5_000) : (opts.idleGraceMs ?? 1_000);
    timer = setTimeout(() => {
      quit(`still stopping ${String(graceMs / 1000)} s after ${name}: quitting now`);
    }, graceMs);
    // The run ending normally must not wait for this timer.
    timer.unref();
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  return {
    signal: ac.signal,
    tasksRunning: (r) => {
      running = r;
    },
    dispose: () => {
      if (ac.signal.aborted) return;
      for (const s of SIGNALS) process.off(s, onSignal);
    },
  };
}
