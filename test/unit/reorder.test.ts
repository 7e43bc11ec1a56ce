import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { emptyReorderStats, reorderMap } from '../../tasks/pack/reorder.js';

/** A promise resolved from outside. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve: (v: T) => void = () => undefined;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Waits until `cond` holds (checked every ms), failing after `ms`. */
async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await sleep(1);
  }
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

async function* slowSource(n: number, closed: { value: boolean }): AsyncGenerator<number> {
  try {
    for (let i = 0; i < n; i++) {
      await sleep(0);
      yield i;
    }
  } finally {
    closed.value = true;
  }
}

describe('reorderMap', () => {
  it('yields in input order with calls settling out of order, at most `concurrency` in flight', async () => {
    let inFlight = 0;
    let peak = 0;
    const out: number[] = [];
    const stats = emptyReorderStats();
    const opts = { concurrency: 7, maxBytes: 1 << 20, bytesOf: () => 8 };
    for await (const r of reorderMap(
      range(60),
      opts,
      async (i) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await sleep((i * 37) % 11);
        inFlight--;
        return i * 2;
      },
      stats,
    )) {
      out.push(r);
    }
    expect(out).toEqual(range(60).map((i) => i * 2));
    expect(peak).toBe(7);
    expect(stats.peakInFlight).toBe(7);
  });

  it('keeps the window full while a straggler holds the head', async () => {
    const head = deferred<number>();
    let inFlight = 0;
    let settledBehindHead = 0;
    const inFlightSeen: number[] = [];
    const out: number[] = [];
    const consume = (async () => {
      for await (const r of reorderMap(
        range(200),
        { concurrency: 8, maxBytes: 1 << 20, bytesOf: () => 8 },
        async (i) => {
          inFlight++;
          if (i === 0) return head.promise.finally(() => inFlight--);
          await sleep(1);
          inFlightSeen.push(inFlight);
          inFlight--;
          settledBehindHead++;
          return i;
        },
      )) {
        out.push(r);
      }
    })();
    // orderedMap would stop at 7 calls behind the head; here the others keep flowing.
    await until(() => settledBehindHead >= 150);
    expect(out).toEqual([]);
    // The straggler plus 7 others were in flight whenever a call behind it settled (up to the
    // tail of the source, when fewer are left to start).
    expect(inFlightSeen.slice(0, 140).every((n) => n === 8)).toBe(true);
    head.resolve(0);
    await consume;
    expect(out).toEqual(range(200));
  });

  it('stops starting calls while the results waiting for their turn hold maxBytes', async () => {
    const head = deferred<number>();
    let calls = 0;
    const stats = emptyReorderStats();
    let held = 0;
    const out: number[] = [];
    const consume = (async () => {
      for await (const r of reorderMap(
        range(1000),
        {
          concurrency: 4,
          maxBytes: 1000,
          bytesOf: () => 100,
          onHeld: (d) => {
            held += d;
          },
        },
        async (i) => {
          calls++;
          if (i === 0) return head.promise;
          await sleep(0);
          return i;
        },
        stats,
      )) {
        out.push(r);
      }
    })();
    await until(() => calls >= 10);
    await sleep(30);
    // 10 results reach 1000 bytes; the 3 calls in flight then may bring 300 more.
    expect(calls).toBeLessThanOrEqual(1 + 10 + 3);
    expect(stats.peakHeldBytes).toBeLessThanOrEqual(1000 + 3 * 100);
    expect(stats.peakHeldBytes).toBeGreaterThanOrEqual(1000);
    expect(held).toBe(stats.peakHeldBytes);
    head.resolve(0);
    await consume;
    expect(out).toEqual(range(1000));
    expect(held).toBe(0);
    expect(stats.peakHeldItems).toBeLessThanOrEqual(13);
  });

  it('surfaces a rejection at its turn, not before, without unhandled rejections', async () => {
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const r of reorderMap(
          range(6),
          { concurrency: 6, maxBytes: 1 << 20, bytesOf: () => 1 },
          async (i) => {
            // Item 3 fails first; 0..2 settle after it.
            await sleep(i === 3 ? 0 : 10 + i);
            if (i === 3) throw new Error('boom');
            return i;
          },
        )) {
          seen.push(r);
        }
      })(),
    ).rejects.toThrow('boom');
    expect(seen).toEqual([0, 1, 2]);
  });

  it('surfaces a failing source after the items before it', async () => {
    async function* failing(): AsyncGenerator<number> {
      await sleep(0);
      yield 0;
      yield 1;
      throw new Error('source broke');
    }
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const r of reorderMap(
          failing(),
          { concurrency: 4, maxBytes: 100, bytesOf: () => 1 },
          async (i) => {
            await sleep(5);
            return i;
          },
        )) {
          seen.push(r);
        }
      })(),
    ).rejects.toThrow('source broke');
    expect(seen).toEqual([0, 1]);
  });

  it('on abort: no call starts any more and the consumer gets an AbortError', async () => {
    const ac = new AbortController();
    const head = deferred<number>();
    let calls = 0;
    const closed = { value: false };
    const run = (async () => {
      for await (const _ of reorderMap(
        slowSource(10_000, closed),
        { concurrency: 4, maxBytes: 1 << 20, bytesOf: () => 1, signal: ac.signal },
        async (i) => {
          calls++;
          if (i === 0) return head.promise;
          await sleep(1);
          return i;
        },
      )) {
        // nothing reaches here: the head never settles before the abort
      }
    })();
    await until(() => calls >= 20);
    ac.abort();
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    const after = calls;
    await sleep(20);
    expect(calls).toBe(after);
    await until(() => closed.value);
    head.resolve(0);
  });

  it('closes the source and starts nothing more when the consumer stops early', async () => {
    const closed = { value: false };
    let calls = 0;
    let held = 0;
    const seen: number[] = [];
    for await (const r of reorderMap(
      slowSource(10_000, closed),
      {
        concurrency: 8,
        maxBytes: 1 << 20,
        bytesOf: () => 10,
        onHeld: (d) => {
          held += d;
        },
      },
      async (i) => {
        calls++;
        await sleep(i % 3);
        return i;
      },
    )) {
      seen.push(r);
      if (r === 50) break;
    }
    expect(seen).toEqual(range(51));
    await until(() => closed.value);
    const after = calls;
    await sleep(20);
    expect(calls).toBe(after);
    // Results still waiting when the consumer left are no longer counted as held.
    expect(held).toBe(0);
  });
});
