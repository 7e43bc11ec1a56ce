/**
 * pack against a store with stragglers, through the CLI: the synthetic Software Heritage makes a
 * share of GETs wait hundreds of ms, so a slow GET sits at the head of the part's reorder buffer
 * (tasks/pack/reorder.ts) again and again while later rows arrive. The parts and their errors
 * sidecars are byte-identical to a run against the same store without stragglers.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SwhTestServer } from '../servers/swh/harness.js';
import { startSwhServer } from '../servers/swh/harness.js';
import { Rig } from '../helpers/rig.js';
import { makeSwhShard, swhPipeline } from '../helpers/swh-shard.js';

const ROWS = 1500;

let dir: string;
let swh: SwhTestServer;

beforeAll(async () => {
  dir = makeSwhShard('stragglers', ROWS);
  swh = await startSwhServer({
    config: {
      size: { medianBytes: 2000, sigma: 1.2, maxBytes: 200_000 },
      latency: { medianMs: 2, p99Ms: 10, stragglerRate: 0 },
      missingRate: 0.01,
    },
  });
});

afterAll(async () => {
  await swh.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function packOnce(): Promise<Map<string, string>> {
  const rig = new Rig();
  rig.writePipeline(
    swhPipeline(dir, swh, [
      '  pack: { kind: pack, needs: [fetch], params: { rows_per_part: 400, concurrency: 32, max_missing_rate: 0.2 } }',
    ]),
  );
  await swh.resetStats();
  try {
    const r = await rig.run(['run', 'pack', '--cache-dir', 'cache', '-j', '2']);
    expect(r.code, r.stderr).toBe(0);
    return rig.outputs(['bucket']);
  } finally {
    rig.cleanup();
  }
}

describe('pack with stragglers at the head (through the CLI)', () => {
  it('writes the same bytes as without stragglers', async () => {
    await swh.setConfig({ latency: { medianMs: 2, p99Ms: 10, stragglerRate: 0 } });
    const plain = await packOnce();
    await swh.setConfig({
      latency: {
        medianMs: 2,
        p99Ms: 10,
        stragglerRate: 0.03,
        stragglerMinMs: 200,
        stragglerMaxMs: 600,
      },
    });
    const slow = await packOnce();
    // 4 parts and their errors sidecars (1% of the blobs are missing); ~45 stragglers, each
    // the head of its part's reorder buffer for a while.
    expect([...plain.keys()].filter((k) => k.endsWith('.jsonl.zst'))).toHaveLength(4);
    expect([...plain.keys()].some((k) => k.endsWith('.errors.jsonl'))).toBe(true);
    expect(slow).toEqual(plain);
  }, 120_000);
});
