/**
 * The S3 client's retry strategy (lib/io/stores/s3-retry.ts): a server's retry-after hint is
 * honoured up to a cap, and a call's retry budget (retryScope) bounds the SDK's retries too.
 */
import type { RetryErrorInfo } from '@smithy/types';
import { describe, expect, it } from 'vitest';
import { BoundedRetryStrategy, MAX_HINT_MS } from '../../lib/io/stores/s3-retry.js';
import type { RetryNotice } from '../../lib/util/retry.js';

const info = (hintMs?: number): RetryErrorInfo => ({
  errorType: 'THROTTLING',
  error: Object.assign(new Error('slow down'), {
    name: 'SlowDown',
    $metadata: { httpStatusCode: 503 },
  }) as RetryErrorInfo['error'],
  ...(hintMs !== undefined ? { retryAfterHint: new Date(Date.now() + hintMs) } : {}),
});

describe('BoundedRetryStrategy', () => {
  it('waits what the server asks, but never longer than the cap', async () => {
    const s = new BoundedRetryStrategy({ retries: 3, baseMs: 1, maxMs: 10, random: () => 0 });
    const first = await s.acquireInitialRetryToken();
    // An hour asked: capped at the default (30 s), not an hour.
    const t = await s.refreshRetryTokenForRetry(first, info(3_600_000));
    expect(t.getRetryDelay()).toBe(MAX_HINT_MS);
    // A modest hint is honoured as asked (to within the clock's tick).
    const t2 = await s.refreshRetryTokenForRetry(first, info(2_000));
    expect(t2.getRetryDelay()).toBeGreaterThan(1_900);
    expect(t2.getRetryDelay()).toBeLessThanOrEqual(2_000);
    const capped = new BoundedRetryStrategy({
      retries: 3,
      baseMs: 1,
      maxMs: 10,
      maxHintMs: 500,
      random: () => 0,
    });
    expect((await capped.refreshRetryTokenForRetry(first, info(60_000))).getRetryDelay()).toBe(500);
  });

  it("spends the call's budget, names the call in its notice, and stops when it is spent", async () => {
    const notices: RetryNotice[] = [];
    const s = new BoundedRetryStrategy({
      retries: 8,
      baseMs: 1,
      maxMs: 10,
      onRetry: (n) => notices.push(n),
    });
    const scope = { what: 'GET s3://b/k', left: 1 };
    const id = s.openBudget(scope);
    // The SDK passes the request's token scope (its context.partition_id) to the strategy.
    const t0 = await s.acquireInitialRetryToken(id);
    const t1 = await s.refreshRetryTokenForRetry(t0, info());
    expect(scope.left).toBe(0);
    await expect(s.refreshRetryTokenForRetry(t1, info())).rejects.toThrow();
    s.closeBudget(id);
    // A request outside any budget keeps the strategy's own bound.
    const u0 = await s.acquireInitialRetryToken('');
    expect((await s.refreshRetryTokenForRetry(u0, info())).getRetryCount()).toBe(1);
    expect(notices).toEqual([
      {
        what: 'GET s3://b/k',
        attempt: 1,
        reason: 'SlowDown (503)',
        waitMs: expect.any(Number) as unknown,
      },
      {
        what: 'S3 request',
        attempt: 1,
        reason: 'SlowDown (503)',
        waitMs: expect.any(Number) as unknown,
      },
    ]);
  });

  it('never retries a client error', async () => {
    const s = new BoundedRetryStrategy({ retries: 3, baseMs: 1, maxMs: 10 });
    const t0 = await s.acquireInitialRetryToken();
    await expect(
      s.refreshRetryTokenForRetry(t0, { ...info(), errorType: 'CLIENT_ERROR' }),
    ).rejects.toThrow();
  });
});
