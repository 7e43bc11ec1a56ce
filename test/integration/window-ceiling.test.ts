/**
 * The fetch window's ceiling is the host's sizing decision (lib/sizing.ts `window.max`), through
 * the CLI: what `run --dry-run` prints is what the run uses. Two pack stages of one pipeline run
 * at once in one process, each allowed the whole window (`concurrency`); their bounds add up to
 * twice the decided window, and the shared window still keeps to the decision (the synthetic
 * Software Heritage counts the GETs in flight). `run-finished` reports the window's figures, and
 * those of a pack's own fixed window.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SwhTestServer } from '../servers/swh/harness.js';
import { startSwhServer } from '../servers/swh/harness.js';
import { Rig } from '../helpers/rig.js';
import { makeSwhShard, swhPipeline } from '../helpers/swh-shard.js';

const ROWS = 800;
const WINDOW = 8;

let dir: string;
let swh: SwhTestServer;

beforeAll(async () => {
  dir = makeSwhShard('ceiling', ROWS);
  swh = await startSwhServer({
    config: {
      size: { medianBytes: 300, sigma: 0.5, maxBytes: 4096 },
      // A round trip long enough that both packs keep their GETs in flight at once.
      latency: { medianMs: 30, p99Ms: 45, stragglerRate: 0 },
    },
  });
});

afterAll(async () => {
  await swh.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the fetch window keeps to the sizing decision (through the CLI)', () => {
  it('two packs allowed the whole window each stay within it together', async () => {
    const rig = new Rig();
    try {
      rig.writePipeline(
        swhPipeline(dir, swh, [
          '  pack: { kind: pack, needs: [fetch], params: { concurrency: 64 } }',
          '  pack_b: { kind: pack, needs: [fetch], params: { concurrency: 64, prefix: packed-b/ } }',
        ]),
      );
      const flags = ['--window', String(WINDOW), '--packs', '1', '-j', '3', '--cache-dir', 'cache'];
      const dry = await rig.run(['run', '--dry-run', '--json', ...flags]);
      expect(dry.code, dry.stderr).toBe(0);
      const decided = (JSON.parse(dry.stdout) as { sizing: { window: { max: number } } }).sizing;
      expect(decided.window.max).toBe(WINDOW);

      await swh.resetStats();
      const r = await rig.run(['run', ...flags]);
      expect(r.code, r.stderr).toBe(0);
      const packs = r.events.filter(
        (e) => e.type === 'task-succeeded' && String(e.stage).startsWith('pack'),
      );
      expect(packs).toHaveLength(2);
      const finished = r.events.find((e) => e.type === 'run-finished') as {
        fetch?: { ceiling: number; peakInFlight: number; requests: number };
      };
      // The packs ran at once (else the test shows nothing): each started before the other
      // finished.
      const at = (type: string, stage: string): number => {
        const e = r.events.find((x) => x.type === type && x.stage === stage);
        return Date.parse(String(e?.time));
      };
      expect(at('task-started', 'pack_b')).toBeLessThan(at('task-succeeded', 'pack'));
      expect(at('task-started', 'pack')).toBeLessThan(at('task-succeeded', 'pack_b'));
      const st = await swh.stats();
      expect(st.requests).toBe(2 * ROWS);
      // Each pack alone may have WINDOW in flight: together they would reach 2 × WINDOW.
      expect(st.maxInFlight).toBeLessThanOrEqual(WINDOW);
      expect(finished.fetch).toMatchObject({ ceiling: WINDOW, requests: 2 * ROWS });
      expect(finished.fetch?.peakInFlight).toBeLessThanOrEqual(WINDOW);
    } finally {
      rig.cleanup();
    }
  }, 120_000);

  it('a pack with a fixed window keeps to its `concurrency`, and run-finished counts its GETs', async () => {
    const rig = new Rig();
    const FIXED = 6;
    try {
      rig.writePipeline(
        swhPipeline(dir, swh, [
          `  pack: { kind: pack, needs: [fetch], params: { concurrency: ${String(FIXED)}, window: fixed } }`,
        ]),
      );
      await swh.resetStats();
      const r = await rig.run(['run', '--window', String(WINDOW), '--cache-dir', 'cache']);
      expect(r.code, r.stderr).toBe(0);
      const finished = r.events.find((e) => e.type === 'run-finished') as {
        fetch?: { requests: number; peakInFlight: number; fixedWindows: number; throttles: number };
      };
      const st = await swh.stats();
      expect(st.requests).toBe(ROWS);
      expect(st.maxInFlight).toBeLessThanOrEqual(FIXED);
      // Counted as the server saw them (it was 0 before: a fixed window was not in the figures).
      expect(finished.fetch).toMatchObject({ requests: ROWS, fixedWindows: 1, throttles: 0 });
      expect(finished.fetch?.peakInFlight).toBeGreaterThan(1);
      expect(finished.fetch?.peakInFlight).toBeLessThanOrEqual(FIXED);
    } finally {
      rig.cleanup();
    }
  }, 120_000);
});
