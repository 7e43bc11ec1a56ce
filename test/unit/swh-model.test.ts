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
