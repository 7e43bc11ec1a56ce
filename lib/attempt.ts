/**
 * EFFECTS. One task's attempts: each runs under its own Watchdog (lib/util/watchdog.ts) with the
 * stage's `timeout` and `stall_timeout`, a `$` and a signal of its own, and is retried while its
 * failure is transient. A limit that fires stops the attempt (its signal aborts, its shell
 * commands are killed) and becomes the attempt's failure: `timeout`, or a transient "stalled".
 *
 * An attempt that ignores its abort is waited for `graceMs`, then abandoned: it may still be
 * running in the background, so it is not retried (a second attempt would race with it).
 */
import type { Failure, Result } from './errors.js';
import { convertExceptionToFailure, err, isTransient } from './errors.js';
import type { Shell } from './io/process/shell.js';
import type { TaskContext, TaskDefinition, TaskResult } from './task-api.js';
import { formatDuration } from './util/duration.js';
import type { RetryNotice } from './util/retry.js';
import { withRetry } from './util/retry.js';
import type { Verdict } from './util/watchdog.js';
import { Watchdog } from './util/watchdog.js';

export interface AttemptOptions {
  /** Retries of transient failures after the first attempt. */
  retries: number;
  /** The stage's limits (absent: none). */
  timeoutMs?: number;
  stallTimeoutMs?: number;
  /** The task's own signal: an interrupt or a lost lease stops every attempt. */
  signal: AbortSignal;
  /** A `$` bound to an attempt's signal; a command's output counts as progress. */
  makeShell: (signal: AbortSignal, onOutput: () => void) => Shell;
  /** Told about each retry (for the `retry` event); the notice names the task. */
  onRetry: (notice: RetryNotice, failure: Failure) => void;
  /** How long a stopped attempt may take to return before it is abandoned (default 15 s). */
  graceMs?: number;
  /** First backoff ceiling between attempts, ms (default withRetry's). */
  baseMs?: number;
}

const ABANDONED = Symbol('abandoned');

/** Runs `def` on `ctx` with per-attempt limits and retries; see the file comment. */
export async function runAttempts(
  def: TaskDefinition,
  ctx: TaskContext,
  o: AttemptOptions,
): Promise<Result<TaskResult>> {
  let abandoned = false;
  return withRetry(
    async (): Promise<Result<TaskResult>> => {
      const dog = new Watchdog({
        parent: o.signal,
        ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
        ...(o.stallTimeoutMs !== undefined ? { stallTimeoutMs: o.stallTimeoutMs } : {}),
      });
      const attempt: TaskContext = {
        ...ctx,
        signal: dog.signal,
        $: o.makeShell(dog.signal, () => {
          dog.progress();
        }),
        progress: (d) => {
          if ((d.rows ?? 0) > 0 || (d.bytes ?? 0) > 0) dog.progress();
          ctx.progress(d);
        },
      };
      try {
        const run = (async (): Promise<Result<TaskResult>> => {
          try {
            return await def.run(attempt);
          } catch (e) {
            return err(convertExceptionToFailure(e, dog.signal));
          }
        })();
        const r = await settleOrAbandon(run, dog.signal, o.graceMs ?? 15_000);
        if (r === ABANDONED) abandoned = true;
        const verdict = dog.verdict;
        if (r !== ABANDONED && (r.ok || verdict === undefined)) return r;
        if (verdict === undefined) return err({ reason: 'aborted', message: 'interrupted' });
        return err(limitFailure(ctx.task.id, verdict, abandoned, o.graceMs ?? 15_000));
      } finally {
        dog.stop();
      }
    },
    {
      retries: o.retries,
      what: ctx.task.id,
      signal: o.signal,
      onRetry: o.onRetry,
      shouldRetry: (f) => !abandoned && isTransient(f),
      ...(o.baseMs !== undefined ? { baseMs: o.baseMs } : {}),
    },
  );
}

/** The failure a fired limit stands for, with the numbers a user needs to judge it. */
export function limitFailure(
  task: string,
  v: Verdict,
  abandoned: boolean,
  graceMs: number,
): Failure {
  const tail = abandoned
    ? `; it did not stop within ${formatDuration(graceMs)} of being told to and was abandoned`
    : '';
  if (v.reason === 'timeout') {
    return {
      reason: 'timeout',
      message: `${task}: timeout: still running after ${formatDuration(v.limitMs)} (the stage's timeout); stopped${tail}`,
    };
  }
  return {
    reason: 'transient',
    message: `${task}: stalled: no progress for ${formatDuration(v.idleMs)} (the stage's stall_timeout is ${formatDuration(v.limitMs)}); stopped${tail}`,
  };
}

/** `p`'s value, or ABANDONED when `signal` aborted and `p` did not settle within `graceMs`. */
function settleOrAbandon<T>(
  p: Promise<T>,
  signal: AbortSignal,
  graceMs: number,
): Promise<T | typeof ABANDONED> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = (): void => {
      timer = setTimeout(() => {
        resolve(ABANDONED);
      }, graceMs);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
