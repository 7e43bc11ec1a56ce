/**
 * Time limits, unit by unit: the duration parser, the watchdog (fake timers), per-attempt limits
 * and abandonment (lib/attempt.ts), the stage defaults, and the bounded mkdir -p.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runAttempts } from '../../lib/attempt.js';
import { defaultLimits, stageLimits } from '../../lib/config/limits.js';
import { kindNames } from '../../lib/kinds.js';
import { err, ok } from '../../lib/errors.js';
import type { Result } from '../../lib/errors.js';
import { ensureDir } from '../../lib/io/fs/mkdirs.js';
import type { Shell } from '../../lib/io/process/shell.js';
import type { TaskContext, TaskDefinition, TaskResult } from '../../lib/task-api.js';
import { formatDuration, parseDuration } from '../../lib/util/duration.js';
import { Watchdog } from '../../lib/util/watchdog.js';

describe('parseDuration', () => {
  it.each([
    ['90s', 90_000],
    ['30m', 1_800_000],
    ['2h', 7_200_000],
    ['1h30m', 5_400_000],
    ['500ms', 500],
    ['1.5s', 1_500],
    ['1d', 86_400_000],
    [' 10m ', 600_000],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toEqual({ ok: true, value: ms });
  });
  it.each([
    ['30', 'has no unit (write 30s, 30m or 30h)'],
    ['', 'is not a duration (write e.g. 90s, 30m, 2h or 1h30m)'],
    ['10 minutes', 'is not a duration (write e.g. 90s, 30m, 2h or 1h30m)'],
    ['-5s', 'is not a duration (write e.g. 90s, 30m, 2h or 1h30m)'],
    ['0s', 'must be longer than zero'],
    ['31d', 'is longer than 30 days'],
  ])('%j is refused: %s', (text, message) => {
    expect(parseDuration(text)).toEqual({ ok: false, error: message });
  });
  it('formats for messages', () => {
    expect([500, 1_500, 90_000, 5_400_000, 86_400_000 + 60_000].map(formatDuration)).toEqual([
      '500ms',
      '1.5s',
      '1m30s',
      '1h30m',
      '1d1m',
    ]);
  });
});

describe('stage limits', () => {
  it('defaults by kind; none for pack timeouts and shell; `none` switches a default off', () => {
    expect(stageLimits('fetch', {})).toEqual({ timeoutMs: 7_200_000, stallTimeoutMs: 900_000 });
    expect(stageLimits('pack', {})).toEqual({ stallTimeoutMs: 900_000 });
    expect(stageLimits('shell', {})).toEqual({});
    expect(stageLimits('discover', {})).toEqual({ timeoutMs: 3_600_000 });
    // stats reports a batch of parts read at a time; the largest language takes hours.
    expect(stageLimits('stats', {})).toEqual({ stallTimeoutMs: 1_800_000 });
    expect(stageLimits('stats-merge', {})).toEqual({ timeoutMs: 3_600_000 });
    expect(stageLimits('sync', { timeout: 'none', stall_timeout: '90s' })).toEqual({
      stallTimeoutMs: 90_000,
    });
    expect(stageLimits('pack', { timeout: '12h', stall_timeout: 'off' })).toEqual({
      timeoutMs: 43_200_000,
    });
    for (const d of kindNames().map(defaultLimits)) {
      for (const text of [d.timeout, d.stall]) {
        if (text !== undefined) expect(parseDuration(text).ok).toBe(true);
      }
    }
  });
});

describe('Watchdog', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  const clock = () => Date.now();

  it('fires `timeout` after timeoutMs however much progress is made', () => {
    const dog = new Watchdog({ timeoutMs: 1_000, stallTimeoutMs: 300, now: clock });
    for (let i = 0; i < 9; i++) {
      vi.advanceTimersByTime(100);
      dog.progress();
    }
    expect(dog.signal.aborted).toBe(false);
    vi.advanceTimersByTime(100);
    expect(dog.signal.aborted).toBe(true);
    expect(dog.verdict).toEqual({ reason: 'timeout', limitMs: 1_000 });
  });

  it('fires `stalled` only after stallTimeoutMs without progress', () => {
    const dog = new Watchdog({ stallTimeoutMs: 1_000, now: clock });
    vi.advanceTimersByTime(900);
    dog.progress(); // the lazy timer fires at 1000 and sleeps again until 1900
    vi.advanceTimersByTime(999);
    expect(dog.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(dog.verdict).toEqual({ reason: 'stalled', limitMs: 1_000, idleMs: 1_000 });
  });

  it('a parent abort aborts it without a verdict; stop() ends the watch', () => {
    const parent = new AbortController();
    const dog = new Watchdog({ timeoutMs: 1_000, parent: parent.signal, now: clock });
    parent.abort();
    expect(dog.signal.aborted).toBe(true);
    expect(dog.verdict).toBeUndefined();
    const quiet = new Watchdog({ timeoutMs: 1_000, now: clock });
    quiet.stop();
    vi.advanceTimersByTime(5_000);
    expect(quiet.signal.aborted).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('runAttempts', () => {
  const ctx = (progress: TaskContext['progress'] = () => undefined): TaskContext =>
    ({ task: { id: 'shell:x' }, progress }) as unknown as TaskContext;
  const def = (run: (c: TaskContext) => Promise<Result<TaskResult>>): TaskDefinition => ({
    kind: 'shell',
    version: '1',
    tools: {},
    run,
  });
  const base = {
    signal: new AbortController().signal,
    makeShell: () => (() => undefined) as unknown as Shell,
    baseMs: 1,
  };
  /** Waits for its attempt's signal, like a well-behaved task, and reports nothing. */
  const obedient = (c: TaskContext) =>
    new Promise<Result<TaskResult>>((resolve) => {
      c.signal.addEventListener('abort', () => {
        resolve(err({ reason: 'aborted', message: 'interrupted' }));
      });
    });

  it('a stalled attempt is retried, then fails as transient "stalled"', async () => {
    const retries: string[] = [];
    let attempts = 0;
    const r = await runAttempts(
      def((c) => {
        attempts++;
        return obedient(c);
      }),
      ctx(),
      {
        ...base,
        retries: 2,
        stallTimeoutMs: 20,
        onRetry: (_n, f) => retries.push(f.message),
      },
    );
    expect(attempts).toBe(3);
    expect(retries).toHaveLength(2);
    expect(r).toMatchObject({ ok: false, error: { reason: 'transient' } });
    expect(!r.ok && r.error.message).toMatch(
      /^shell:x: stalled: no progress for \d+ms \(the stage's stall_timeout is 20ms\); stopped$/,
    );
  });

  it('progress keeps an attempt alive; the timeout still ends it with reason timeout', async () => {
    const seen: number[] = [];
    const r = await runAttempts(
      def(async (c) => {
        const tick = setInterval(() => {
          c.progress({ rows: 1 });
        }, 5);
        const out = await obedient(c);
        clearInterval(tick);
        return out;
      }),
      ctx((d) => seen.push(d.rows ?? 0)),
      { ...base, retries: 0, timeoutMs: 150, stallTimeoutMs: 40, onRetry: () => undefined },
    );
    expect(r).toMatchObject({ ok: false, error: { reason: 'timeout' } });
    expect(seen.length).toBeGreaterThan(5); // forwarded to the run's progress too
  });

  it('an attempt that ignores its abort is abandoned after the grace, and not retried', async () => {
    let attempts = 0;
    const r = await runAttempts(
      def(() => {
        attempts++;
        return new Promise(() => undefined); // never settles
      }),
      ctx(),
      { ...base, retries: 3, timeoutMs: 10, graceMs: 30, onRetry: () => undefined },
    );
    expect(attempts).toBe(1);
    expect(r).toMatchObject({ ok: false, error: { reason: 'timeout' } });
    expect(!r.ok && r.error.message).toContain(
      'it did not stop within 30ms of being told to and was abandoned',
    );
  });

  it('success within the limits is success; an interrupt is "aborted", not a limit', async () => {
    const fine = await runAttempts(
      def(() => Promise.resolve(ok({ outputs: [], counts: {} }))),
      ctx(),
      { ...base, retries: 0, timeoutMs: 1_000, onRetry: () => undefined },
    );
    expect(fine.ok).toBe(true);
    const ac = new AbortController();
    setTimeout(() => {
      ac.abort();
    }, 10);
    const stopped = await runAttempts(def(obedient), ctx(), {
      ...base,
      signal: ac.signal,
      retries: 2,
      timeoutMs: 5_000,
      onRetry: () => undefined,
    });
    expect(stopped).toMatchObject({ ok: false, error: { reason: 'aborted' } });
  });
});

describe('ensureDir', () => {
  it.skipIf(process.platform !== 'linux')(
    'gives up on /proc/nope with ENOENT (recursive mkdir spins there forever)',
    async () => {
      await expect(ensureDir('/proc/nope/a/b')).rejects.toMatchObject({ code: 'ENOENT' });
    },
    5_000,
  );
});
