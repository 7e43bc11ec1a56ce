/**
 * One task attempt's time limits: an AbortController that fires when the attempt has run longer
 * than `timeoutMs`, or has gone `stallTimeoutMs` without progress, or when its parent signal (an
 * interrupt, a lost lease) aborts. Afterwards `verdict` says which limit fired, so the caller can
 * turn the task's "aborted" into the right failure.
 *
 * Cheap on the hot path: `progress()` only stores a timestamp. The stall timer is lazy: when it
 * fires it compares the last progress with the clock and sleeps again for what is left, so a task
 * reporting thousands of times a second does not reset a timer each time.
 */

/** Why the watchdog stopped an attempt. */
export type Verdict =
  { reason: 'timeout'; limitMs: number } | { reason: 'stalled'; limitMs: number; idleMs: number };

export interface WatchdogOptions {
  /** Longest the attempt may run; absent: no limit. */
  timeoutMs?: number;
  /** Longest the attempt may go without `progress()`; absent: no limit. */
  stallTimeoutMs?: number;
  /** Aborting it aborts the watchdog's signal too (without a verdict). */
  parent?: AbortSignal;
  /** A monotonic clock in ms (default `performance.now`); injectable for tests. */
  now?: () => number;
}

export class Watchdog {
  readonly #ac = new AbortController();
  readonly #now: () => number;
  readonly #opts: WatchdogOptions;
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #onParent = (): void => {
    this.#abort(undefined);
  };
  #last: number;
  #verdict: Verdict | undefined;
  #stopped = false;

  constructor(opts: WatchdogOptions = {}) {
    this.#opts = opts;
    this.#now = opts.now ?? (() => performance.now());
    this.#last = this.#now();
    if (opts.parent?.aborted === true) {
      this.#abort(undefined);
      return;
    }
    opts.parent?.addEventListener('abort', this.#onParent, { once: true });
    const { timeoutMs, stallTimeoutMs } = opts;
    if (timeoutMs !== undefined) {
      this.#after(timeoutMs, () => {
        this.#abort({ reason: 'timeout', limitMs: timeoutMs });
      });
    }
    if (stallTimeoutMs !== undefined) this.#watchStall(stallTimeoutMs, stallTimeoutMs);
  }

  /** Aborted when a limit fires, the parent aborts, or never. */
  get signal(): AbortSignal {
    return this.#ac.signal;
  }

  /** Which limit fired; undefined while none has (or when the parent aborted). */
  get verdict(): Verdict | undefined {
    return this.#verdict;
  }

  /** The attempt made progress: the stall clock starts again. */
  progress(): void {
    this.#last = this.#now();
  }

  /** Ends the watch (the attempt is over): clears the timers; the signal stays as it is. */
  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    this.#opts.parent?.removeEventListener('abort', this.#onParent);
  }

  #watchStall(limitMs: number, waitMs: number): void {
    this.#after(waitMs, () => {
      const idle = this.#now() - this.#last;
      if (idle >= limitMs) this.#abort({ reason: 'stalled', limitMs, idleMs: idle });
      else this.#watchStall(limitMs, limitMs - idle);
    });
  }

  #after(ms: number, fn: () => void): void {
    if (this.#stopped) return;
    const t = setTimeout(
      () => {
        this.#timers.delete(t);
        if (!this.#stopped && !this.#ac.signal.aborted) fn();
      },
      Math.max(1, Math.ceil(ms)),
    );
    this.#timers.add(t);
  }

  #abort(verdict: Verdict | undefined): void {
    if (this.#ac.signal.aborted) return;
    this.#verdict = verdict;
    this.#ac.abort(this.#opts.parent?.reason);
    this.stop();
  }
}
