import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { AimdController } from '../../lib/util/aimd.js';
import { FetchWindow } from '../../lib/util/fetch-window.js';
import { DEFAULT_CONFIG, Rng, TokenBucket, latencyMs } from '../servers/swh/model.js';

describe('AIMD controller', () => {
  it('slow start doubles per round trip while latency is flat, up to max', () => {
    const c = new AimdController({ initial: 4, max: 100 });
    let t = 0;
    for (let round = 0; round < 3; round++) {
      const n = c.limit;
      for (let i = 0; i < n; i++) c.onAnswer(20, (t += 1));
    }
    expect(c.limit).toBe(32);
    for (let i = 0; i < 200; i++) c.onAnswer(20, (t += 1));
    expect(c.limit).toBe(100);
  });

  it('a throttle cuts once per window: answers to requests sent before the cut do not cut again', () => {
    const c = new AimdController({ initial: 100, max: 100, decrease: 0.8 });
    c.onThrottle(0, 50);
    expect(c.limit).toBe(80);
    c.onThrottle(10, 60); // started before the cut at 50
    c.onThrottle(49, 70);
    expect(c.limit).toBe(80);
    c.onThrottle(55, 90); // started after it
    expect(c.limit).toBe(64);
    expect(c.state()).toMatchObject({ throttles: 4, decreases: 2 });
  });

  it('after a throttle it grows by about one per round trip', () => {
    const c = new AimdController({ initial: 50, max: 1000, decrease: 0.8 });
    c.onThrottle(0, 1);
    expect(c.limit).toBe(40);
    let t = 1;
    for (let i = 0; i < 42; i++) c.onAnswer(20, (t += 0.5));
    expect(c.limit).toBe(41);
  });

  it('does not grow while latency rises above the tolerance of its baseline', () => {
    const c = new AimdController({ initial: 10, max: 1000 });
    let t = 0;
    for (let i = 0; i < 100; i++) c.onAnswer(20, (t += 1));
    const before = c.limit;
    for (let i = 0; i < 2000; i++) c.onAnswer(200, (t += 1));
    const s = c.state();
    expect(s.srttMs).toBeGreaterThan(2 * (s.baselineMs ?? 0));
    expect(c.limit).toBeLessThan(before + 60);
  });

  it('does not grow while the client leaves the window unfilled; a throttle cuts from what was used', () => {
    const c = new AimdController({ initial: 100, max: 1000 });
    let t = 0;
    for (let i = 0; i < 500; i++) c.onAnswer(20, (t += 1), 10);
    expect(c.limit).toBe(100);
    c.onThrottle(t, t + 1, 10);
    expect(c.limit).toBe(8);
  });

  it('probes in slow start again after a quiet spell, and follows max', () => {
    const c = new AimdController({ initial: 100, max: 1000, probeAfterMs: 1000 });
    c.onThrottle(0, 0);
    expect(c.limit).toBe(80);
    for (let i = 0; i < 16; i++) c.onAnswer(20, 1500 + i);
    expect(c.limit).toBe(82);
    c.setMax(50);
    expect(c.limit).toBe(50);
  });
});

/**
 * A store with a token-bucket rate limit R (the synthetic SWH's own model) and lognormal latency
 * with stragglers, driven by a client that keeps `window` GETs in flight: either the adaptive
 * window or a fixed one. Discrete events, simulated time.
 */
function simulate(opts: {
  adaptive: boolean;
  fixed?: number;
  ceiling: number;
  limits: { from: number; perSecond: number }[];
  seconds: number;
}) {
  const rng = new Rng(11);
  const first = opts.limits[0]?.perSecond ?? 1;
  const bucket = new TokenBucket({ perSecond: first }, 0);
  const w = new AimdController({ max: opts.ceiling, initial: 8 });
  const limit = () => (opts.adaptive ? w.limit : (opts.fixed ?? 1));
  const events: { at: number; startedAt: number; ok: boolean }[] = [];
  const push = (e: (typeof events)[number]) => {
    let i = events.length;
    while (i > 0 && (events[i - 1]?.at ?? 0) > e.at) i--;
    events.splice(i, 0, e);
  };
  const perSecond: { ok: number; slow: number }[] = [];
  let inFlight = 0;
  let li = 1;
  const start = (now: number) => {
    while (inFlight < limit()) {
      inFlight++;
      const ok = bucket.take(now);
      push({ at: now + latencyMs(DEFAULT_CONFIG.latency, rng), startedAt: now, ok });
    }
  };
  start(0);
  for (;;) {
    const e = events.shift();
    if (e === undefined || e.at > opts.seconds * 1000) break;
    const next = opts.limits[li];
    if (next !== undefined && e.at >= next.from * 1000) {
      bucket.setLimit({ perSecond: next.perSecond }, e.at);
      li++;
    }
    inFlight--;
    const s = Math.floor(e.at / 1000);
    while (perSecond.length <= s) perSecond.push({ ok: 0, slow: 0 });
    const cell = perSecond[s] ?? { ok: 0, slow: 0 };
    if (e.ok) {
      cell.ok++;
      w.onAnswer(e.at - e.startedAt, e.at);
    } else {
      cell.slow++;
      w.onThrottle(e.startedAt, e.at);
    }
    start(e.at);
  }
  const over = (from: number, to: number) => {
    const cells = perSecond.slice(from, to);
    const ok = cells.reduce((a, c) => a + c.ok, 0);
    const slow = cells.reduce((a, c) => a + c.slow, 0);
    return { rate: ok / (to - from), slowShare: slow / Math.max(1, ok + slow) };
  };
  return { over };
}

describe('adaptive window against a rate-limited store (simulated)', () => {
  const limits = [
    { from: 0, perSecond: 1000 },
    { from: 20, perSecond: 3000 },
  ];

  it('reaches ≥ 0.9 R with < 5% SlowDown, and recovers after R is raised', () => {
    const sim = simulate({ adaptive: true, ceiling: 1024, limits, seconds: 40 });
    const before = sim.over(5, 20);
    expect(before.rate).toBeGreaterThanOrEqual(900);
    expect(before.slowShare).toBeLessThan(0.05);
    const after = sim.over(25, 40);
    expect(after.rate).toBeGreaterThanOrEqual(2700);
    expect(after.slowShare).toBeLessThan(0.05);
  });

  it('no fixed window does both: a small one underuses the store, a large one hammers it', () => {
    const small = simulate({ adaptive: false, fixed: 24, ceiling: 24, limits, seconds: 40 });
    expect(small.over(5, 20).rate).toBeLessThan(900);
    const large = simulate({ adaptive: false, fixed: 128, ceiling: 128, limits, seconds: 40 });
    expect(large.over(5, 20).slowShare).toBeGreaterThan(0.05);
    expect(large.over(25, 40).slowShare).toBeGreaterThan(0.05);
    expect(small.over(25, 40).rate).toBeLessThan(2700);
  });
});

describe('FetchWindow', () => {
  it('holds GETs beyond the limit until a slot is done; the ceiling is the sum of the packs', async () => {
    let now = 0;
    const w = new FetchWindow({ initial: 2, now: () => now });
    const leaveA = w.join(2);
    const leaveB = w.join(2);
    expect(w.stats().max).toBe(4);
    const a = await w.acquire();
    await w.acquire();
    let third = false;
    const p = w.acquire().then((s) => {
      third = true;
      return s;
    });
    await Promise.resolve();
    expect(third).toBe(false);
    now = 20;
    a.done('answered');
    (await p).done('throttled');
    expect(third).toBe(true);
    expect(w.stats()).toMatchObject({ inFlight: 1, peakInFlight: 2, throttles: 1 });
    leaveA();
    expect(w.stats().max).toBe(2);
    leaveB();
  });

  it("the process's ceiling bounds the window whatever the packs add up to", async () => {
    let now = 0;
    const w = new FetchWindow({ initial: 1, now: () => now });
    const leaveA = w.join(64);
    const leaveB = w.join(64);
    expect(w.stats().max).toBe(128);
    w.setCeiling(8);
    expect(w.stats()).toMatchObject({ max: 8, ceiling: 8 });
    // Slow start grows the limit by one per answer of a full window: never past the ceiling.
    for (let i = 0; i < 50; i++) {
      const slots = [];
      for (let k = 0; k < w.stats().limit; k++) slots.push(await w.acquire());
      now += 20;
      for (const s of slots) s.done('answered');
    }
    expect(w.stats()).toMatchObject({ limit: 8, peakInFlight: 8 });
    leaveA();
    expect(w.stats().max).toBe(8);
    leaveB();
    w.noteHeld(1000);
    w.noteHeld(500);
    w.noteHeld(-1500);
    expect(w.stats().peakHeldBytes).toBe(1500);
  });

  it('GETs waiting on one signal share one abort listener; an abort rejects them all', async () => {
    const w = new FetchWindow({ initial: 1 });
    const leave = w.join(1);
    const ac = new AbortController();
    const first = await w.acquire(ac.signal);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    const waiting = Array.from({ length: 50 }, () => w.acquire(ac.signal));
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
    ac.abort();
    for (const p of waiting) await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    first.done('answered');
    const other = await w.acquire();
    other.done('answered');
    leave();
  });

  it('an aborted wait rejects and frees its place', async () => {
    const w = new FetchWindow({ initial: 1 });
    const leave = w.join(1);
    const s = await w.acquire();
    const ac = new AbortController();
    const waiting = w.acquire(ac.signal);
    ac.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
    s.done('failed');
    const next = await w.acquire();
    next.done('answered');
    leave();
  });
});
