/**
 * The one retry vocabulary of stackflow: the backoff formula (exponential, full jitter), the
 * notice every retrying layer gives (`RetryNotice`: retrying WHAT after WAIT because REASON) and
 * `withRetry`, the loop for operations that return a Result. The S3 client's strategy
 * (stores/s3-retry.ts) and the Hub's fetch (hub/http-retry.ts) use the same formula and notice.
 *
 * `withRetry` retries only while a failure is transient: never 'not-found' or any other
 * non-transient reason.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Failure, Result } from '../errors.js';
import { isTransient } from '../errors.js';

/** One retry about to happen: retrying `what` (attempt n) after `waitMs` because `reason`. */
export interface RetryNotice {
  /** What is retried: `GET s3://bucket/key`, `GET https://host/path`, a task id. Never a secret. */
  what: string;
  /** 1 for the first retry. */
  attempt: number;
  /** Why, e.g. `SlowDown (503)`, `HTTP 429 (rate limited)`, `ECONNRESET`. Never a header value. */
  reason: string;
  /** How long it waits before the retry. */
  waitMs: number;
}

/** Full-jitter exponential backoff: uniform in [0, min(maxMs, baseMs·2^attempt)] (attempt from 0). */
export function backoffMs(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  return Math.round(random() * Math.min(maxMs, baseMs * 2 ** attempt));
}

export interface RetryOptions {
  /** Extra attempts after the first. */
  retries: number;
  /** What is retried, for the notice. */
  what?: string;
  /** First backoff ceiling in ms (doubles each attempt). */
  baseMs?: number;
  /** Largest backoff ceiling in ms. */
  maxMs?: number;
  signal?: AbortSignal;
  /** Told about each retry, with the failure that caused it. */
  onRetry?: (notice: RetryNotice, failure: Failure) => void;
  /** Random source in [0,1), injectable for tests. */
  random?: () => number;
  /** Whether this failure may be retried (default: `isTransient`). */
  shouldRetry?: (failure: Failure) => boolean;
}

export async function withRetry<T>(
  op: () => Promise<Result<T>>,
  opts: RetryOptions,
): Promise<Result<T>> {
  const base = opts.baseMs ?? 200;
  const max = opts.maxMs ?? 20_000;
  const retryable = opts.shouldRetry ?? isTransient;
  for (let attempt = 0; ; attempt++) {
    const r = await op();
    if (r.ok || !retryable(r.error) || attempt >= opts.retries || opts.signal?.aborted === true) {
      return r;
    }
    const wait = backoffMs(attempt, base, max, opts.random);
    opts.onRetry?.(
      {
        what: opts.what ?? 'operation',
        attempt: attempt + 1,
        reason: r.error.message,
        waitMs: wait,
      },
      r.error,
    );
    try {
      await sleep(wait, undefined, opts.signal ? { signal: opts.signal } : {});
    } catch {
      return r;
    }
  }
}
