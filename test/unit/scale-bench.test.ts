/**
 * The pure parts of bench/scale.ts: the adaptive part's analysis of a per-second timeline, the
 * timeline's downsampling, and the README block the summary refreshes.
 */
import { describe, expect, it } from 'vitest';
import { analyzeAdaptive } from '../../bench/lib/scale-adaptive.js';
import { downsample } from '../../bench/lib/scale-run.js';
import type { TimelinePoint } from '../../bench/lib/scale-run.js';
import { calibration, summaryMarkdown, withBlock } from '../../bench/lib/scale-summary.js';

/** A timeline: `admitted` GETs/s answered, `slow` SlowDowns/s, per second. */
const tl = (xs: [admitted: number, slow: number][]): TimelinePoint[] =>
  xs.map(([ok, slow], s) => ({ s, gets: ok + slow, slowDown: slow, inFlight: 10 }));
const repeat = <T>(n: number, x: T): T[] => Array.from({ length: n }, () => x);

describe('analyzeAdaptive', () => {
  it('passes a run at the limit with few SlowDowns that reaches the raised limit', () => {
    const t = tl([
      ...repeat<[number, number]>(5, [50, 10]), // warm-up: overshoot, left out of the rate
      ...repeat<[number, number]>(35, [98, 1]),
      [120, 0],
      [150, 0],
      [185, 2],
      ...repeat<[number, number]>(30, [195, 3]),
      [60, 0],
      [0, 0],
    ]);
    const a = analyzeAdaptive(t, 100, 200, 40, 5);
    expect(a.rate1).toBe(98);
    expect(a.shareOfLimit).toBe(0.98);
    expect(a.recoverySeconds).toBe(2); // 185, 195, 195: the first 3-second mean ≥ 180
    expect(a.rate2).toBe(195);
    expect(a.slowDownShare).toBeLessThan(0.05);
    expect(a.pass).toBe(true);
  });

  it('fails a run below 0.9 R, one with 5% SlowDown or more, and one that never recovers', () => {
    const low = tl(repeat<[number, number]>(80, [85, 0]));
    expect(analyzeAdaptive(low, 100, 200, 40, 5)).toMatchObject({
      shareOfLimit: 0.85,
      recoverySeconds: null,
      pass: false,
    });
    const hammering = tl([
      ...repeat<[number, number]>(40, [100, 20]),
      ...repeat<[number, number]>(40, [200, 0]),
    ]);
    const h = analyzeAdaptive(hammering, 100, 200, 40, 5);
    expect(h.shareOfLimit).toBe(1);
    expect(h.recoverySeconds).toBe(0);
    expect(h.slowDownShare).toBeGreaterThanOrEqual(0.05);
    expect(h.pass).toBe(false);
  });
});

describe('downsample', () => {
  it('keeps a short timeline per second and averages a long one to at most 240 points', () => {
    const sec = (n: number) =>
      Array.from({ length: n }, (_, s) => ({
        second: s,
        requests: s,
        slowDown: 0,
        maxInFlight: s % 7,
      }));
    expect(downsample(sec(100))).toMatchObject({ step: 1 });
    expect(downsample(sec(100)).points).toHaveLength(100);
    const long = downsample(sec(1000));
    expect(long.step).toBe(5);
    expect(long.points).toHaveLength(200);
    expect(long.points[1]).toEqual({ s: 5, gets: 7, slowDown: 0, inFlight: 6 });
  });
});

describe('scale summary', () => {
  const pack = {
    rows: 1000,
    window: 256,
    windowMode: 'fixed',
    getsPerSecond: 400,
    rowsPerSecond: 400,
    coresBusy: 1.5,
    counts: { raw_bytes: 20_000_000, zst_bytes: 3_000_000 },
    server: { requests: 1000, bytes: 5_000_000 },
    cpuSecondsPer1MRows: { total: 1000 },
  };
  const results = {
    machine: { cores: 2, memoryGiB: 24, node: 'v20' },
    sweep: {
      date: '2026-12-06T21:00:00Z',
      inputs: { cellRows: 1000, windowMode: 'fixed' },
      cells: [
        { latencyMs: 20, window: 64, pack, bareGetsPerSecond: 500, ratio: 0.8, pass: true },
        {
          latencyMs: 20,
          window: 256,
          pack,
          bareGetsPerSecond: 800,
          ratio: 0.5,
          pass: false,
          noisy: true,
        },
      ],
    },
  };

  it('takes the calibration from the sweep when there is no full-size run', () => {
    expect(calibration(results)).toMatchObject({
      from: 'sweep: 20 ms × window 256, 1000 rows',
      cpuSecondsPerMillionRows: 1000,
      rowsPerCoreSecond: 1000,
      getsPerRow: 1,
      jsonBytesPerRow: 20_000,
      outputBytesPerRow: 3000,
      gzBytesPerGet: 5000,
    });
  });

  it('prints the sweep as a latency × window matrix, missed and noisy cells marked', () => {
    const md = summaryMarkdown({ ...results, calibration: calibration(results) });
    expect(md).toContain('| 20 ms | 400 / 500 = 0.8× | 400 / 800 = 0.5× ✗ (noisy) |');
    expect(md).toContain('1,000 rows per core-second');
  });

  it('replaces the README block between its markers, and refuses a README without them', () => {
    const readme = 'a\n<!-- scale:begin -->\nold\n<!-- scale:end -->\nb\n';
    expect(withBlock(readme, 'new')).toBe(
      'a\n<!-- scale:begin -->\n\nnew\n\n<!-- scale:end -->\nb\n',
    );
    expect(() => withBlock('a\n', 'new')).toThrow(/no <!-- scale:begin -->/);
  });
});
