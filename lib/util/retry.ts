/**
 * Retries an operation that returns a Result, only while its failure is transient, with
 * exponential backoff and full jitter. Never retries 'not-found' or any other non-transient reason.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Failure, Result } from '../errors.js';
import { isTransient } from '../errors.js';

export interface RetryOptions {
  /** Extra attempts after the first. */
  retries: number;
  /** First backoff ceiling in ms (doubles each attempt). */
  baseMs?: number;
  /** Largest backoff ceiling in ms. */
  maxMs?: number;
  signal?: AbortSignal;
  /** Told about each retry (for the `retry` event). */
  onRetry?: (attempt: number, failure: Failure, waitMs: number) => void;
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
  const random = opts.random ?? Math.random;
  const retryable = opts.shouldRetry ?? isTransient;
  for (let attempt = 0; ; attempt++) {
    const r = await op();
    if (r.ok || !retryable(r.error) || attempt >= opts.retries || opts.signal?.aborted === true) {
      return r;
    }
    const wait = Math.round(random() * Math.min(max, base * 2 ** attempt));
    opts.onRetry?.(attempt + 1, r.error, wait);
    try {
      await sleep(wait, undefined, opts.signal ? { signal: opts.signal } : {});
    } catch {
      return r;
    }
  }
}
