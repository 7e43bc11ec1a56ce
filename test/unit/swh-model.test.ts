import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CONFIG,
  Rng,
  TokenBucket,
  applyPatch,
  checkConfig,
  classBytes,
  decide,
  latencyMs,
  normalQuantile,
  planBlob,
  sizeAt,
  sizeClass,
} from '../servers/swh/model.js';

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};
const hexId = (i: number) => i.toString(16).padStart(40, '0');

describe('synthetic SWH model', () => {
  it('normalQuantile matches known values', () => {
    expect(normalQuantile(0.5)).toBeCloseTo(0, 9);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 5);
    expect(normalQuantile(0.01)).toBeCloseTo(-2.326348, 5);
    expect(normalQuantile(0.999)).toBeCloseTo(3.090232, 5);
  });

  it('sizes: median ~4 KB, mean ~20 KB, a tail past 1 MB, clamped to maxBytes', () => {
    const rng = new Rng(3);
    const xs = Array.from({ length: 40_000 }, () => sizeAt(DEFAULT_CONFIG.size, rng.float()));
    expect(quantile(xs, 0.5)).toBeGreaterThan(4096 * 0.93);
    expect(quantile(xs, 0.5)).toBeLessThan(4096 * 1.07);
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean).toBeGreaterThan(14_000);
    expect(mean).toBeLessThan(26_000);
    expect(xs.filter((x) => x > 1 << 20).length).toBeGreaterThan(5);
    expect(Math.max(...xs)).toBeLessThanOrEqual(DEFAULT_CONFIG.size.maxBytes);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(DEFAULT_CONFIG.size.minBytes);
  });

  it('size classes are within ~5% of the drawn size', () => {
    for (const bytes of [16, 100, 4096, 123_456, 3_000_000]) {
      const served = classBytes(DEFAULT_CONFIG.size, sizeClass(DEFAULT_CONFIG.size, bytes));
      expect(Math.abs(served - bytes) / bytes).toBeLessThan(0.05);
    }
  });

  it('latency: lognormal with the configured median and p99, plus stragglers', () => {
    const rng = new Rng(5);
    const m = { ...DEFAULT_CONFIG.latency, stragglerRate: 0.01 };
    const xs = Array.from({ length: 50_000 }, () => latencyMs(m, rng));
    const ordinary = xs.filter((x) => x < m.stragglerMinMs);
    const stragglers = xs.filter((x) => x >= m.stragglerMinMs);
    expect(quantile(ordinary, 0.5)).toBeGreaterThan(19);
    expect(quantile(ordinary, 0.5)).toBeLessThan(21);
    expect(quantile(ordinary, 0.99)).toBeGreaterThan(135);
    expect(quantile(ordinary, 0.99)).toBeLessThan(165);
    expect(stragglers.length / xs.length).toBeGreaterThan(0.008);
    expect(stragglers.length / xs.length).toBeLessThan(0.012);
    expect(Math.max(...stragglers)).toBeLessThanOrEqual(m.stragglerMaxMs);
    expect(latencyMs({ ...m, medianMs: 0 }, rng)).toBe(0);
  });

  it('token bucket: admits the rate plus the burst, refuses above it', () => {
    const b = new TokenBucket({ perSecond: 1000, burst: 100 }, 0);
    // 5,000 requests a second for 10 s.
    let admitted = 0;
    for (let t = 0; t < 10_000; t += 0.2) if (b.take(t)) admitted++;
    expect(admitted).toBeGreaterThanOrEqual(10_000 + 100 - 2);
    expect(admitted).toBeLessThanOrEqual(10_000 + 100 + 2);
    // Under the rate: every request admitted.
    const c = new TokenBucket({ perSecond: 1000, burst: 10 }, 0);
    let refused = 0;
    for (let t = 0; t < 10_000; t += 1.1) if (!c.take(t)) refused++;
    expect(refused).toBe(0);
  });

  it('token bucket: a raised limit takes effect at once; null means no limit', () => {
    const b = new TokenBucket({ perSecond: 100, burst: 1 }, 0);
    let admitted = 0;
    for (let t = 0; t < 1000; t += 1) if (b.take(t)) admitted++;
    expect(admitted).toBeGreaterThan(95);
    expect(admitted).toBeLessThan(105);
    b.setLimit({ perSecond: 400, burst: 5 }, 1000);
    admitted = 0;
    for (let t = 1000; t < 2000; t += 1) if (b.take(t)) admitted++;
    expect(admitted).toBeGreaterThan(390);
    expect(admitted).toBeLessThan(410);
    b.setLimit({ perSecond: null }, 2000);
    for (let t = 2000; t < 2010; t += 0.001) expect(b.take(t)).toBe(true);
  });

  it('default burst is a quarter second of the rate', () => {
    const b = new TokenBucket({ perSecond: 400 }, 0);
    let admitted = 0;
    while (b.take(0)) admitted++;
    expect(admitted).toBe(100);
  });

  it('ids: the same id is always the same blob, and missingRate of ids are missing', () => {
    const c = applyPatch(DEFAULT_CONFIG, { missingRate: 0.1 });
    expect(planBlob(c, hexId(7))).toEqual(planBlob(c, hexId(7)));
    const missing = Array.from({ length: 20_000 }, (_, i) => planBlob(c, hexId(i))).filter(
      (p) => p.kind === 'missing',
    ).length;
    expect(missing / 20_000).toBeGreaterThan(0.09);
    expect(missing / 20_000).toBeLessThan(0.11);
    // Another seed is another dataset.
    const other = applyPatch(c, { seed: 2 });
    const same = Array.from({ length: 200 }, (_, i) => hexId(i)).filter(
      (id) => JSON.stringify(planBlob(c, id)) === JSON.stringify(planBlob(other, id)),
    ).length;
    expect(same).toBeLessThan(100);
  });

  it('decide: the rate limit refuses first, then faults, then the key', () => {
    const c = applyPatch(DEFAULT_CONFIG, {
      missingRate: 1,
      fault500Rate: 0.5,
      fault503Rate: 0.5,
      rateLimit: { perSecond: 10, burst: 1 },
    });
    const b = new TokenBucket(c.rateLimit, 0);
    const rng = new Rng(1);
    const first = decide(c, b, rng, hexId(1), 0);
    expect(['internal-error', 'unavailable']).toContain(first.outcome);
    expect(decide(c, b, rng, hexId(1), 1).outcome).toBe('slow-down');
    const noFaults = applyPatch(c, {
      fault500Rate: 0,
      fault503Rate: 0,
      rateLimit: { perSecond: null },
    });
    const got = decide(noFaults, new TokenBucket(noFaults.rateLimit, 0), rng, hexId(1), 0);
    expect(got.outcome).toBe('missing');
    expect(got.delayMs).toBeGreaterThan(0);
  });

  it('decide: fault shares and the missing share over many requests, each within its bounds', () => {
    const c = applyPatch(DEFAULT_CONFIG, {
      missingRate: 0.05,
      fault500Rate: 0.02,
      fault503Rate: 0.03,
    });
    const b = new TokenBucket(c.rateLimit, 0);
    const rng = new Rng(11);
    const n = 60_000;
    const count: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const o = decide(c, b, rng, hexId(i), i).outcome;
      count[o] = (count[o] ?? 0) + 1;
    }
    const share = (o: string) => (count[o] ?? 0) / n;
    // Binomial: 5 standard deviations of each share is < 0.005 here; deterministic seed anyway.
    expect(share('internal-error')).toBeGreaterThan(0.015);
    expect(share('internal-error')).toBeLessThan(0.025);
    expect(share('unavailable')).toBeGreaterThan(0.024);
    expect(share('unavailable')).toBeLessThan(0.036);
    // Missing is drawn per id, faults per request: 5% of what the faults left.
    expect(share('missing')).toBeGreaterThan(0.95 * 0.05 - 0.006);
    expect(share('missing')).toBeLessThan(0.95 * 0.05 + 0.006);
    expect(share('slow-down')).toBe(0);
    expect(share('ok') + share('missing') + share('internal-error') + share('unavailable')).toBe(1);
  });

  it('decide: a missing id answers 404 on every request, a fault on some requests only', () => {
    const c = applyPatch(DEFAULT_CONFIG, { missingRate: 0.3, fault500Rate: 0.5 });
    const b = new TokenBucket(c.rateLimit, 0);
    const rng = new Rng(2);
    let id = 0;
    while (planBlob(c, hexId(id)).kind !== 'missing') id++;
    const outcomes = new Set(
      Array.from({ length: 200 }, (_, t) => decide(c, b, rng, hexId(id), t).outcome),
    );
    expect([...outcomes].sort()).toEqual(['internal-error', 'missing']);
  });

  it('decide: delays follow the latency model (median, p99, no straggler beyond its bound)', () => {
    const c = applyPatch(DEFAULT_CONFIG, {
      latency: { medianMs: 5, p99Ms: 37.5, stragglerRate: 0.002 },
    });
    const b = new TokenBucket(c.rateLimit, 0);
    const rng = new Rng(4);
    const xs = Array.from({ length: 40_000 }, (_, i) => decide(c, b, rng, hexId(i), i).delayMs);
    const ordinary = xs.filter((x) => x < c.latency.stragglerMinMs);
    expect(quantile(ordinary, 0.5)).toBeGreaterThan(4.7);
    expect(quantile(ordinary, 0.5)).toBeLessThan(5.3);
    expect(quantile(ordinary, 0.99)).toBeGreaterThan(33);
    expect(quantile(ordinary, 0.99)).toBeLessThan(42);
    expect(Math.min(...xs)).toBeGreaterThan(0);
    expect(Math.max(...xs)).toBeLessThanOrEqual(c.latency.stragglerMaxMs);
    const stragglers = xs.length - ordinary.length;
    expect(stragglers).toBeGreaterThan(40);
    expect(stragglers).toBeLessThan(130);
  });

  it('token bucket: bursty arrivals above the rate are admitted at the rate, SlowDown for the rest', () => {
    // 60 requests every 100 ms (600/s) against 400/s with a depth of 100, for 20 s.
    const b = new TokenBucket({ perSecond: 400, burst: 100 }, 0);
    let admitted = 0;
    let refused = 0;
    for (let t = 0; t < 20_000; t += 100) {
      for (let k = 0; k < 60; k++) {
        if (b.take(t)) admitted++;
        else refused++;
      }
    }
    // 400/s × 19.9 s of refill plus the initial depth, within a request.
    expect(admitted).toBeGreaterThanOrEqual(400 * 19.9 + 100 - 1);
    expect(admitted).toBeLessThanOrEqual(400 * 19.9 + 100 + 1);
    expect(admitted + refused).toBe(12_000);
  });

  it('token bucket: a lowered limit cuts what the bucket holds to the new depth', () => {
    const b = new TokenBucket({ perSecond: 1000, burst: 500 }, 0);
    b.setLimit({ perSecond: 100, burst: 10 }, 0);
    let admitted = 0;
    while (b.take(0)) admitted++;
    expect(admitted).toBe(10);
    // From an unlimited bucket, a limit starts full at its depth.
    const u = new TokenBucket({ perSecond: null }, 0);
    u.setLimit({ perSecond: 40 }, 5);
    admitted = 0;
    while (u.take(5)) admitted++;
    expect(admitted).toBe(10);
  });

  it('checkConfig lists every error', () => {
    const bad = applyPatch(DEFAULT_CONFIG, {
      missingRate: 2,
      prefix: 'content',
      latency: { medianMs: 50, p99Ms: 10 },
      rateLimit: { perSecond: -1 },
    });
    expect(checkConfig(bad)).toEqual([
      'prefix must be empty or end in /',
      'latency.p99Ms must be ≥ medianMs',
      'missingRate must be in [0, 1], got 2',
      'rateLimit.perSecond must be > 0, got -1',
    ]);
    expect(checkConfig(DEFAULT_CONFIG)).toEqual([]);
  });
});
