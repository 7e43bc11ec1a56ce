/**
 * The retry policy of every S3 client stackflow builds: bounded attempts, exponential backoff
 * with full jitter (longer for throttling: 503 SlowDown), and a callback per retry so that a run
 * can say how many retries it took. It replaces the SDK's standard strategy, whose shared retry
 * quota stops retrying altogether after a burst of failures across hundreds of requests in
 * flight — exactly the load pack puts on a content bucket.
 *
 * Only throttling, transient (timeouts, resets) and 5xx errors are retried; 4xx never (404 is a
 * missing blob, 412 a lost race, 403 a configuration problem).
 */
import type { RetryErrorInfo, RetryStrategyV2, RetryToken } from '@smithy/types';

/** What one retry was about, for counting and reporting. */
export interface RetryNotice {
  attempt: number;
  /** Error name or code and HTTP status; never a header or credential. */
  reason: string;
  waitMs: number;
}

export interface S3RetryOptions {
  /** Retries after the first attempt. */
  retries: number;
  /** First backoff ceiling in ms (doubles per attempt). */
  baseMs: number;
  /** Largest backoff ceiling in ms. */
  maxMs: number;
  onRetry?: (n: RetryNotice) => void;
  random?: () => number;
}

const token = (count: number, delay: number): RetryToken => ({
  getRetryCount: () => count,
  getRetryDelay: () => delay,
});

export class BoundedRetryStrategy implements RetryStrategyV2 {
  constructor(private readonly opts: S3RetryOptions) {}

  acquireInitialRetryToken(): Promise<RetryToken> {
    return Promise.resolve(token(0, 0));
  }

  refreshRetryTokenForRetry(previous: RetryToken, info: RetryErrorInfo): Promise<RetryToken> {
    const count = previous.getRetryCount();
    if (info.errorType === 'CLIENT_ERROR' || count >= this.opts.retries) {
      // The SDK rethrows the request's own error when this rejects.
      return Promise.reject(new Error('no retry'));
    }
    const base = info.errorType === 'THROTTLING' ? this.opts.baseMs * 5 : this.opts.baseMs;
    const ceiling = Math.min(this.opts.maxMs, base * 2 ** count);
    const hinted = info.retryAfterHint ? info.retryAfterHint.getTime() - Date.now() : 0;
    const wait = Math.max(Math.round((this.opts.random ?? Math.random)() * ceiling), hinted);
    this.opts.onRetry?.({ attempt: count + 1, reason: describeSdkError(info.error), waitMs: wait });
    return Promise.resolve(token(count + 1, wait));
  }

  recordSuccess(): void {
    // No shared quota to refill: every request gets its own bounded attempts.
  }
}

/** `SlowDown (503)`, `ECONNRESET`, …: short, and free of anything secret. */
export function describeSdkError(e: unknown): string {
  if (typeof e !== 'object' || e === null) return String(e);
  const x = e as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = x.$metadata?.httpStatusCode;
  const name = x.code ?? x.name ?? 'Error';
  return status === undefined ? name : `${name} (${String(status)})`;
}
