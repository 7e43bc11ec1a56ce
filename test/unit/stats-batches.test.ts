/**
 * How the stats kind splits a language's parts into batches (tasks/stats/run.ts `batches`): in
 * key order, at most BATCH_PARTS parts and BATCH_BYTES bytes each (a larger part alone), none
 * empty. The statistics over batches are checked through the CLI in
 * test/integration/stats.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { OutputRecord } from '../../lib/task-api.js';
import { BATCH_BYTES, BATCH_PARTS, batches } from '../../tasks/stats/run.js';

const part = (i: number, size: number): OutputRecord => ({
  store: 'bucket',
  key: `packed/Python/Python-00000-${String(i).padStart(6, '0')}.jsonl.zst`,
  size,
  sha256: '0'.repeat(64),
});

describe('stats batches', () => {
  it('none for no parts; parts in key order, BATCH_PARTS at most', () => {
    expect(batches([])).toEqual([]);
    const parts = Array.from({ length: 2 * BATCH_PARTS + 3 }, (_, i) => part(i, 1000));
    const got = batches([...parts].reverse());
    expect(got.map((b) => b.length)).toEqual([BATCH_PARTS, BATCH_PARTS, 3]);
    expect(got.flat()).toEqual(parts);
  });

  it('BATCH_BYTES at most, and a part larger than that alone', () => {
    const third = Math.floor(BATCH_BYTES / 3);
    const got = batches([
      part(0, third),
      part(1, third),
      part(2, third),
      part(3, third),
      part(4, 3 * BATCH_BYTES),
      part(5, 1),
    ]);
    expect(got.map((b) => b.map((p) => p.size))).toEqual([
      [third, third, third],
      [third],
      [3 * BATCH_BYTES],
      [1],
    ]);
  });
});
