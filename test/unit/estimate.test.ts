/**
 * The estimator (lib/estimate/): the schedule, the calibration's sources, the model's totals,
 * bounds and requests, and the inverse (hosts for a deadline), on small plans and on the real
 * 917-parquet list with synthetic sizes.
 */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CALIBRATION,
  parseCalibration,
  withMarkers,
} from '../../lib/estimate/calibration.js';
import type { EstimateInput, PlannedParquet, RequestLine } from '../../lib/estimate/model.js';
import {
  DEFAULT_FLEET,
  DEFAULT_PRICES,
  estimate,
  fmtDuration,
  hostsFor,
  parseDuration,
} from '../../lib/estimate/model.js';
import { idealMakespan, scheduleLongestFirst } from '../../lib/estimate/schedule.js';
import { parseListing } from '../../lib/commands/estimate.js';
import { syntheticStackV2 } from '../helpers/stack-v2.js';

const pq = (id: string, rows: number): PlannedParquet => ({
  id,
  bytes: rows * 312,
  rows,
  rowsFrom: 'size',
});
const input = (
  parquets: PlannedParquet[],
  fleet: Partial<typeof DEFAULT_FLEET> = {},
): EstimateInput => ({
  parquets,
  tasksInPlan: parquets.length * 4,
  calibration: { ...DEFAULT_CALIBRATION, cpuSecondsPerMillionRows: 1000 },
  fleet: { ...DEFAULT_FLEET, storeGetsPerSecond: 1e12, hostGbps: 1e6, ...fleet },
  prices: DEFAULT_PRICES,
});
const stackV2 = (): PlannedParquet[] =>
  syntheticStackV2().map((p) => ({
    id: `pack:${p.language}/${p.stem}`,
    bytes: p.bytes,
    rows: Math.round(p.bytes / 312),
    rowsFrom: 'size' as const,
  }));

describe('scheduleLongestFirst', () => {
  it('places longest first on the slot free first', () => {
    expect(scheduleLongestFirst([3, 3, 2, 2, 2], 2).makespan).toBe(7);
    expect(scheduleLongestFirst([5, 1, 1, 1], 2)).toEqual({ makespan: 5, slotEnds: [5, 3] });
    expect(scheduleLongestFirst([], 3).makespan).toBe(0);
  });
  it('the ideal is max(total / slots, longest)', () => {
    expect(idealMakespan([4, 4, 4, 4], 2)).toBe(8);
    expect(idealMakespan([10, 1, 1], 4)).toBe(10);
  });
});

describe('calibration', () => {
  it('reads scale.json’s calibration object, or the object itself', () => {
    const c = parseCalibration(
      {
        name: 'scale',
        calibration: {
          from: 'sweep: 20 ms × 1024',
          cpuSecondsPerMillionRows: 700,
          getsPerRow: 1.01,
          gzBytesPerGet: 5000,
          jsonBytesPerRow: 20000,
          outputBytesPerRow: 5000,
          rowsPerCoreSecond: 1428,
        },
      },
      'scale.json',
    );
    expect(c).toEqual({
      ok: true,
      value: {
        from: 'scale.json (sweep: 20 ms × 1024)',
        cpuSecondsPerMillionRows: 700,
        getsPerRow: 1.01,
        gzBytesPerGet: 5000,
        jsonBytesPerRow: 20000,
        outputBytesPerRow: 5000,
      },
    });
    const part = parseCalibration({ cpuSecondsPerMillionRows: 500 }, 'c.json');
    expect(part.ok && part.value.from).toBe(
      'c.json for cpuSecondsPerMillionRows; defaults for the rest',
    );
    expect(part.ok && part.value.gzBytesPerGet).toBe(DEFAULT_CALIBRATION.gzBytesPerGet);
  });
  it('refuses what is not a calibration, saying what it expected', () => {
    expect(parseCalibration([], 'x.json')).toEqual({
      ok: false,
      message: 'x.json: not a JSON object',
    });
    const none = parseCalibration({ calibration: null, name: 'scale' }, 'x.json');
    expect(!none.ok && none.message).toContain(
      'x.json: no calibration figures (expected a "calibration" object with cpuSecondsPerMillionRows',
    );
    expect(parseCalibration({ getsPerRow: -1 }, 'x.json')).toEqual({
      ok: false,
      message: 'x.json: getsPerRow must be a positive number, got -1',
    });
  });
  it('finished markers replace the byte figures, not the CPU', () => {
    const c = withMarkers(DEFAULT_CALIBRATION, {
      packs: 2,
      rows: 1000,
      rawBytes: 4_000_000,
      zstBytes: 1_000_000,
    });
    expect(c).toMatchObject({
      jsonBytesPerRow: 4000,
      outputBytesPerRow: 1000,
      cpuSecondsPerMillionRows: DEFAULT_CALIBRATION.cpuSecondsPerMillionRows,
    });
    expect(c.from).toContain('bytes per row from 2 finished packs (1000 rows)');
    expect(withMarkers(DEFAULT_CALIBRATION, { packs: 0, rows: 0, rawBytes: 0, zstBytes: 0 })).toBe(
      DEFAULT_CALIBRATION,
    );
  });
});

describe('estimate', () => {
  it('totals follow the calibration', () => {
    const e = estimate(input([pq('pack:A/x', 1_000_000), pq('pack:B/y', 3_000_000)]));
    expect(e.totals).toMatchObject({
      parquets: 2,
      rows: 4e6,
      gets: 4e6,
      bytesOut: 4e6 * 5500,
      parts: 62 + 184,
    });
    expect(e.totals.cpuHours).toBeCloseTo(4000 / 3600, 6);
    expect(e.totals.bytesIn.content).toBe(4e6 * 6000);
  });

  it('one 32-core host: 6 packs of 5.3 cores each, CPU-bound, longest first', () => {
    const rows = Array.from({ length: 12 }, (_, i) => pq(`pack:L/${i}`, 4_000_000));
    const e = estimate(input(rows));
    expect(e.sizing).toMatchObject({ packs: 6, lineWorkers: 3 });
    // a pack: 32/6 cores / 1 ms per row = 5,333 rows/s; 12 packs of 750 s on 6 slots = 1,500 s
    expect(e.makespan.packRowsPerSecond).toBeCloseTo(16_000 / 3, 6);
    expect(e.makespan).toMatchObject({ limitedBy: 'cpu', packLimitedBy: 'cpu' });
    expect(e.makespan.seconds).toBeCloseTo(1500, 6);
    // 12 × 750 s of work, on 2 hosts: 750 s, which the longest pack alone takes
    const two = estimate(input(rows, { hosts: 2 })).makespan;
    expect(two.limitedBy).toBe('longest-task');
    expect(two.seconds).toBeCloseTo(750, 6);
  });

  it('the store’s rate and the network bound the fleet, whatever its hosts', () => {
    const rows = Array.from({ length: 64 }, (_, i) => pq(`pack:L/${i}`, 1_000_000));
    const store = estimate(input(rows, { hosts: 40, storeGetsPerSecond: 5500 }));
    expect(store.makespan.limitedBy).toBe('store-rate');
    expect(store.makespan.seconds).toBeCloseTo(64e6 / 5500, 3);
    const net = estimate(input(rows, { hosts: 1, hostGbps: 0.1 }));
    expect(net.makespan.limitedBy).toBe('network');
  });

  it('a small window at a high latency makes a pack window-bound', () => {
    const e = estimate(
      input([pq('pack:A/x', 1e6)], { latencyMs: 1000, cores: 2, memoryGiB: 0.25 }),
    );
    expect(e.makespan.packLimitedBy).toBe('window');
    expect(e.makespan.limitedBy).toBe('longest-task');
  });

  it('requests by purpose: content GETs dwarf coordination', () => {
    const e = estimate(input(stackV2(), { hosts: 20 }));
    const byPurpose: Record<string, RequestLine | undefined> = Object.fromEntries(
      e.requests.lines.map((l) => [l.purpose.split(' (')[0] ?? '', l]),
    );
    expect(byPurpose['content GETs']?.gets).toBe(e.totals.gets);
    expect(byPurpose['coordination: lease claims']?.putsLists).toBe(Math.round(917 * 1.25));
    expect(byPurpose['coordination: markers and part records']).toMatchObject({
      putsLists: 917 + e.totals.parts,
      deletes: 917,
    });
    expect(e.requests.coordinationShare).toBeGreaterThan(0);
    expect(e.requests.coordinationShare).toBeLessThan(0.01);
    // GETs at $0.0004/1k, the rest at $0.005/1k
    const content = byPurpose['content GETs'];
    expect(content?.usd).toBeCloseTo((e.totals.gets / 1000) * 0.0004, 6);
    expect(e.requests.total.usd).toBeCloseTo(
      e.requests.lines.reduce((a, l) => a + l.usd, 0),
      6,
    );
  });

  it('the real list: 917 parquets, ~2.6B rows; more hosts shorten the packs down to the longest', () => {
    const plan = stackV2();
    expect(plan).toHaveLength(917);
    const rows = plan.reduce((a, p) => a + p.rows, 0);
    expect(rows).toBeGreaterThan(2.4e9);
    expect(rows).toBeLessThan(3e9);
    const at = (hosts: number) =>
      estimate({ ...input(plan, { hosts }), calibration: DEFAULT_CALIBRATION });
    const [h10, h20, h40] = [at(10), at(20), at(40)];
    expect(h20.makespan.bounds.packs).toBeLessThan(h10.makespan.bounds.packs * 0.6);
    expect(h40.makespan.bounds.packs).toBeGreaterThanOrEqual(h40.makespan.bounds.longestTask);
    expect(h10.totals.cpuHours).toBeCloseTo((rows * 1050) / 1e6 / 3600, 3);
  });
});

describe('hostsFor (the inverse)', () => {
  const plan = Array.from({ length: 100 }, (_, i) => pq(`pack:L/${i}`, 4_000_000));
  it('the fewest hosts that meet the deadline', () => {
    // 100 packs of 750 s on 6 slots per host: 17 hosts run them in one wave
    const h = hostsFor(input(plan), 1000);
    expect(h.hosts).toBe(17);
    expect(h.estimate.makespan.seconds).toBeLessThanOrEqual(1000);
    expect(estimate(input(plan, { hosts: 16 })).makespan.seconds).toBeGreaterThan(1000);
  });
  it('none when a bound hosts do not move is past the deadline, saying which', () => {
    const h = hostsFor(input(plan, { storeGetsPerSecond: 1000 }), 3600);
    expect(h.hosts).toBeNull();
    expect('reason' in h && h.reason).toMatch(
      /^no fleet finishes in 60 min: the store's rate \(1000 GETs\/s\) needs 4\.6 days whatever the hosts; \d+ hosts? already reach/,
    );
    const long = hostsFor(input([pq('pack:A/x', 40_000_000)]), 3600);
    expect('reason' in long && long.reason).toContain('the longest pack alone takes 2 h 5 min');
  });
});

describe('durations and listings', () => {
  it('parses and prints durations', () => {
    expect(parseDuration('24h')).toBe(86400);
    expect(parseDuration('90m')).toBe(5400);
    expect(parseDuration('1.5d')).toBe(129600);
    expect(parseDuration('300')).toBe(300);
    expect(parseDuration('soon')).toBeUndefined();
    expect(parseDuration('0h')).toBeUndefined();
    expect(fmtDuration(40)).toBe('40 s');
    expect(fmtDuration(3600 * 25 + 600)).toBe('25 h 10 min');
    expect(fmtDuration(86400 * 5.5)).toBe('5.5 days');
  });
  it('reads a listing; a bad line names its line number', () => {
    const l = parseListing(
      '# comment\nC++/train-00000-of-00002.parquet 3120 7\ndata/Graphviz_(DOT)/train-00000-of-00001.parquet 624\n',
      'l.txt',
    );
    expect(l).toEqual({
      ok: true,
      value: [
        { id: 'pack:C++/train-00000-of-00002', bytes: 3120, rows: 7, rowsFrom: 'listing' },
        { id: 'pack:Graphviz_(DOT)/train-00000-of-00001', bytes: 624, rows: 2, rowsFrom: 'size' },
      ],
    });
    const bad = parseListing('A/x.parquet 10\nA/y.parquet lots\n', 'l.txt');
    expect(!bad.ok && bad.error.message).toBe(
      'l.txt:2: expected "<Language>/<file>.parquet <bytes> [rows]", got "A/y.parquet lots"',
    );
  });
});
