import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Failure, Result } from '../../lib/errors.js';
import { err, ok } from '../../lib/errors.js';
import { orderedMap } from '../../lib/util/ordered.js';
import { withRetry } from '../../lib/util/retry.js';

describe('orderedMap', () => {
  it('keeps input order with results finishing out of order, and bounds concurrency', async () => {
    let inFlight = 0;
    let peak = 0;
    const out: number[] = [];
    const items = Array.from({ length: 50 }, (_, i) => i);
    for await (const r of orderedMap(items, 7, async (i) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await sleep((i * 37) % 11);
      inFlight--;
      return i * 2;
    })) {
      out.push(r);
    }
    expect(out).toEqual(items.map((i) => i * 2));
    expect(peak).toBeLessThanOrEqual(7);
    expect(peak).toBeGreaterThan(1);
  });
  it('surfaces a rejection at that item, without unhandled rejections', async () => {
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const r of orderedMap([1, 2, 3, 4], 4, async (i) => {
          await sleep(4 - i);
          if (i === 3) throw new Error('boom');
          return i;
        })) {
          seen.push(r);
        }
      })(),
    ).rejects.toThrow('boom');
    expect(seen).toEqual([1, 2]);
  });
});

describe('withRetry', () => {
  const transient: Failure = { reason: 'transient', message: '503 SlowDown' };
  it('retries transient failures with growing, jittered waits, up to the bound', async () => {
    const waits: number[] = [];
    let calls = 0;
    const r = await withRetry(
      (): Promise<Result<number>> => {
        calls++;
        return Promise.resolve(calls < 4 ? err(transient) : ok(42));
      },
      {
        retries: 5,
        baseMs: 1,
        maxMs: 8,
        random: () => 0.999,
        onRetry: (n) => waits.push(n.waitMs),
      },
    );
    expect(r).toEqual(ok(42));
    expect(calls).toBe(4);
    expect(waits).toEqual([1, 2, 4]);
  });
  it('gives up after the bound and never retries non-transient failures', async () => {
    let calls = 0;
    const r = await withRetry(
      () => {
        calls++;
        return Promise.resolve(err(transient));
      },
      { retries: 2, baseMs: 0 },
    );
    expect(r.ok).toBe(false);
    expect(calls).toBe(3);
    calls = 0;
    const nf = await withRetry(
      () => {
        calls++;
        return Promise.resolve(err<Failure>({ reason: 'not-found', key: 'k', message: 'missing' }));
      },
      { retries: 5, baseMs: 0 },
    );
    expect(nf.ok).toBe(false);
    expect(calls).toBe(1);
  });
});
