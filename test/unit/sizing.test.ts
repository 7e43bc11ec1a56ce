/**
 * The host's sizing decision (lib/sizing.ts): hosts from 2 to 128 cores, low memory, low disk,
 * and what pipeline.yaml or the CLI set.
 */
import { describe, expect, it } from 'vitest';
import type { HostFacts, SizingConfig } from '../../lib/sizing.js';
import {
  applySizing,
  decideSizing,
  LARGEST_PARQUET_BYTES,
  sizingConfigOf,
} from '../../lib/sizing.js';

const GiB = 2 ** 30;
const host = (over: Partial<HostFacts> = {}): HostFacts => ({
  cores: 32,
  memoryBytes: 256 * GiB,
  freeDiskBytes: 3.4e12,
  openFilesLimit: 1 << 20,
  ...over,
});
const local: SizingConfig = { parquetScratchBytes: 0 };
const remote: SizingConfig = { parquetScratchBytes: LARGEST_PARQUET_BYTES };

describe('decideSizing', () => {
  it('a 32-core, 256 GiB host: 6 packs × 3 line workers, window ≤ 2048', () => {
    const d = decideSizing(host(), remote);
    expect(d.summary).toBe(
      '32 cores, 256 GiB, 3.40 TB free → 6 packs × 3 line workers, window ≤ 2048',
    );
    expect(d).toMatchObject({
      packs: 6,
      lineWorkers: 3,
      window: { max: 2048, perPack: 341 },
      jobs: 7,
      limitedBy: { packs: 'cores', lineWorkers: 'cap', window: 'cap' },
    });
    expect(d.reasons).toContain(
      "packs at once by cores: 6 (32 cores / (3 line workers × 1.7 cores: each brings the main thread's, GC's, zstd's share))",
    );
  });

  it('a 128-core host uses all its cores: 25 packs', () => {
    const d = decideSizing(
      host({ cores: 128, memoryBytes: 1024 * GiB, freeDiskBytes: 30e12 }),
      remote,
    );
    expect(d.packs).toBe(25);
    expect(Math.abs(d.packs * d.lineWorkers * 1.7 - 128)).toBeLessThan(1.7);
    expect(d.window).toEqual({ max: 2048, perPack: 81 });
  });

  it('a 2-core host: one pack with two line workers, two tasks at once', () => {
    const d = decideSizing(host({ cores: 2, memoryBytes: 24 * GiB, freeDiskBytes: 80e9 }), local);
    expect(d).toMatchObject({ packs: 1, lineWorkers: 2, jobs: 2, limitedBy: { packs: 'cores' } });
    expect(d.reasons[0]).toBe('line workers per pack: 2 (one per core: 2 cores)');
  });

  it('4 and 8 cores: 3 line workers per pack before a second pack', () => {
    expect(decideSizing(host({ cores: 4 }), local)).toMatchObject({ packs: 1, lineWorkers: 3 });
    expect(decideSizing(host({ cores: 8 }), local)).toMatchObject({ packs: 2, lineWorkers: 3 });
  });

  it('a single core still gets one pack and one line worker', () => {
    const d = decideSizing(host({ cores: 1 }), local);
    expect(d).toMatchObject({ packs: 1, lineWorkers: 1 });
  });

  it('low memory bounds the packs, then the window, and says so', () => {
    const d = decideSizing(host({ memoryBytes: 4 * GiB }), local);
    // 3 GiB budget: window 1/4 → 768 MiB / 64 KiB = 12288 → capped 2048 (128 MiB);
    // (3072 − 256 − 128) MiB / (384 + 3·80) MiB = 4.3 → 4 packs, not 6.
    expect(d.packs).toBe(4);
    expect(d.limitedBy.packs).toBe('memory');
    expect(d.reasons).toContain(
      'packs at once by memory: 4 (2.6 GiB of 4.0 GiB after the process and the window, 0.6 GiB per pack)',
    );
    const tiny = decideSizing(host({ memoryBytes: 0.5 * GiB }), local);
    expect(tiny.packs).toBe(1);
    expect(tiny.limitedBy.window).toBe('memory');
    expect(tiny.window.max).toBe(1024);
    expect(tiny.reasons.some((r) => r.startsWith('packs at once: 1 although memory'))).toBe(true);
  });

  it('low disk bounds the packs: two parts each, plus a parquet copy when the work store is remote', () => {
    const d = decideSizing(host({ freeDiskBytes: 10e9 }), remote);
    // 8 GB usable / (2 × 256 MiB + 3 GB) ≈ 2.3 → 2
    expect(d).toMatchObject({ packs: 2, limitedBy: { packs: 'disk' } });
    expect(decideSizing(host({ freeDiskBytes: 10e9 }), local).packs).toBe(6);
    const none = decideSizing(host({ freeDiskBytes: 1e9 }), remote);
    expect(none.packs).toBe(1);
    expect(none.reasons.some((r) => r.includes('a pack may fail for want of disk space'))).toBe(
      true,
    );
  });

  it('an unknown free disk does not limit, and says so', () => {
    const d = decideSizing(host({ freeDiskBytes: undefined }), remote);
    expect(d.packs).toBe(6);
    expect(d.summary).toContain('free disk unknown');
    expect(d.reasons).toContain(
      'packs at once by disk: not limited (free space of the scratch dir unknown)',
    );
  });

  it('a low open-file limit bounds the window (each GET holds a socket)', () => {
    const d = decideSizing(host({ openFilesLimit: 1024 }), local);
    expect(d.window.max).toBe(512);
    expect(d.limitedBy.window).toBe('open-files');
  });

  it('what the user set wins, with where it was set', () => {
    const d = decideSizing(host(), {
      ...local,
      packs: { value: 2, from: '--packs' },
      lineWorkers: { value: 5, from: 'pipeline.yaml tasks.pack.params.line_workers' },
      windowMax: { value: 300, from: '--window' },
      perPack: { value: 100, from: 'pipeline.yaml tasks.pack.params.concurrency' },
      jobs: { value: 1, from: '-j' },
    });
    expect(d).toMatchObject({
      packs: 2,
      lineWorkers: 5,
      window: { max: 300, perPack: 100 },
      jobs: 1,
    });
    expect(d.reasons).toEqual([
      'line workers per pack: 5, set by pipeline.yaml tasks.pack.params.line_workers',
      'window: ≤ 300 GETs in flight, set by --window',
      'packs at once: 2, set by --packs',
      'each pack fetches ≤ 100 blobs at once, set by pipeline.yaml tasks.pack.params.concurrency',
      'tasks at once: 1, set by -j',
      'so at most 1 packs run at once',
    ]);
  });

  it("pack's concurrency is an upper bound on the host's share, not a floor", () => {
    const d = decideSizing(host(), { ...local, perPack: { value: 4096, from: 'x' } });
    expect(d.window.perPack).toBe(341);
  });
});

describe('sizingConfigOf / applySizing', () => {
  const pipeline = (pack: Record<string, unknown>, limit?: number) => ({
    work: 'file:///tmp/work',
    stages: [
      { name: 'fetch', kind: 'fetch', params: {}, limit: 4 },
      { name: 'pack', kind: 'pack', params: pack, ...(limit !== undefined ? { limit } : {}) },
    ],
  });

  it('no pack stage: nothing to size', () => {
    expect(sizingConfigOf({ work: 'file:///w', stages: [] }, {})).toBeUndefined();
  });

  it('reads pipeline.yaml, and the CLI wins over it', () => {
    const p = pipeline({ line_workers: 2, concurrency: 50 }, 3);
    expect(sizingConfigOf(p, {})).toEqual({
      packs: { value: 3, from: 'pipeline.yaml tasks.pack.limit' },
      lineWorkers: { value: 2, from: 'pipeline.yaml tasks.pack.params.line_workers' },
      perPack: { value: 50, from: 'pipeline.yaml tasks.pack.params.concurrency' },
      parquetScratchBytes: 0,
    });
    expect(sizingConfigOf(p, { packs: 5, lineWorkers: 1, window: 64, jobs: 7 })).toMatchObject({
      packs: { value: 5, from: '--packs' },
      lineWorkers: { value: 1, from: '--line-workers' },
      windowMax: { value: 64, from: '--window' },
      jobs: { value: 7, from: '-j' },
    });
    expect(sizingConfigOf({ ...p, work: 's3://b/w' }, {})?.parquetScratchBytes).toBe(
      LARGEST_PARQUET_BYTES,
    );
  });

  it('sets only the pack stages’ limit and runtime params', () => {
    const p = pipeline({ rows_per_part: 100 });
    const d = decideSizing(host(), sizingConfigOf(p, {}) ?? local);
    const sized = applySizing(p, d, {});
    expect(sized.stages[0]).toBe(p.stages[0]);
    expect(sized.stages[1]).toEqual({
      name: 'pack',
      kind: 'pack',
      limit: 6,
      params: { rows_per_part: 100, line_workers: 3, concurrency: 341 },
    });
  });
});
