/**
 * pack's adaptive fetch window against a store with a request-rate limit, through the CLI: the
 * synthetic Software Heritage answers 503 SlowDown above R GETs/s, and R is raised mid-run. The
 * same run with `window: fixed` at the same `concurrency` hammers the store, so no fixed window
 * passes both this and the raised limit (a smaller one cannot use R2).
 *
 * The targets (≥ 0.9 R, < 5% SlowDown) are asserted exactly by the deterministic
 * simulation in test/unit/aimd.test.ts and measured by bench/scale.ts; here, on a shared 2-core
 * machine where the CLI's own CPU share varies by the second, the bounds have a margin
 * (≥ 0.85 R before the raise and > 1.3 R1 after it, < 10% SlowDown over the run and < 15% in
 * each phase) that a fixed window still
 * misses by far.
 */
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SwhStats, SwhTestServer } from '../servers/swh/harness.js';
import { startSwhServer } from '../servers/swh/harness.js';
import { Rig } from '../helpers/rig.js';
import { makeSwhShard, swhPipeline } from '../helpers/swh-shard.js';

const ROWS = 2400;
const R1 = 40;
const R2 = 80;
/** The limit is raised once this many GETs were answered 200. */
const RAISE_AFTER_OK = 900;

let dir: string;
let swh: SwhTestServer;

beforeAll(async () => {
  dir = makeSwhShard('adaptive', ROWS);
  swh = await startSwhServer({
    config: {
      // Small blobs and no stragglers: the client's CPU and head-of-line waits stay out of it.
      // A long round trip, so that R is a window of ~16 (a window of 1 or 2 cannot express a
      // rate between them: that is not what a real store's limit looks like at 20 ms, where
      // 5,500 GETs/s is a window of ~110), at a rate a busy 2-core machine can pack.
      size: { medianBytes: 300, sigma: 0.5, maxBytes: 4096 },
      latency: { medianMs: 400, p99Ms: 800, stragglerRate: 0 },
    },
  });
});

afterAll(async () => {
  await swh.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs pack with the rate limit at R1, raised to R2 mid-run; the per-second timeline back. */
async function packUnderLimit(window: 'adaptive' | 'fixed') {
  const rig = new Rig();
  rig.writePipeline(
    swhPipeline(dir, swh, [
      `  pack: { kind: pack, needs: [fetch], params: { concurrency: 256, window: ${window} } }`,
    ]),
  );
  await swh.setConfig({ rateLimit: { perSecond: R1, burst: R1 / 2 } });
  await swh.resetStats();
  const run = rig.run(['run', 'pack', '--cache-dir', 'cache', '-j', '1']);
  let raisedAt: number | undefined;
  const state = { done: false };
  void run.finally(() => {
    state.done = true;
  });
  while (!state.done) {
    await sleep(200);
    const st = await swh.stats();
    if (raisedAt === undefined && st.byOutcome.ok >= RAISE_AFTER_OK) {
      await swh.setConfig({ rateLimit: { perSecond: R2, burst: R2 / 2 } });
      raisedAt = st.elapsedMs / 1000;
    }
  }
  const result = await run;
  const stats = await swh.stats();
  rig.cleanup();
  return { result, stats, raisedAt: raisedAt ?? Infinity };
}

/** OK GETs per second and the SlowDown share over whole seconds [from, to). */
function over(st: SwhStats, from: number, to: number) {
  const cells = st.timeline.slice(Math.ceil(from), Math.floor(to));
  const ok = cells.reduce((a, c) => a + c.ok, 0);
  const slow = cells.reduce((a, c) => a + c.slowDown, 0);
  return {
    seconds: cells.length,
    rate: ok / Math.max(1, cells.length),
    slowShare: slow / Math.max(1, ok + slow),
  };
}

/** The seconds where the pack was fetching: the first and last second with requests. */
function activeSeconds(st: SwhStats): [number, number] {
  const busy = st.timeline.filter((t) => t.requests > 0).map((t) => t.second);
  return [Math.min(...busy), Math.max(...busy)];
}

describe('adaptive fetch window (pack through the CLI, store rate-limited)', () => {
  it('keeps to the limit with few SlowDowns, and uses a raised limit', async () => {
    const { result, stats, raisedAt } = await packUnderLimit('adaptive');
    expect(result.code, result.stderr).toBe(0);
    const [first, last] = activeSeconds(stats);
    // The first seconds are slow start (which overshoots, as TCP's does, until the first
    // SlowDown); the last, the tail of the part.
    const before = over(stats, first + 4, raisedAt - 1);
    const after = over(stats, raisedAt + 2, last);
    expect(before.seconds).toBeGreaterThanOrEqual(5);
    expect(after.seconds).toBeGreaterThanOrEqual(2);
    expect(before.rate).toBeGreaterThanOrEqual(0.85 * R1);
    // Per phase a wider margin than over the whole run: a CI run under load measured 10.1%
    // before the raise (a fixed window: > 30%).
    expect(before.slowShare).toBeLessThan(0.15);
    // The raised limit is used: more than the old limit allowed (how much more depends on the
    // CPU this shared machine leaves the CLI; the simulation asserts ≥ 0.9 R2).
    expect(after.rate).toBeGreaterThanOrEqual(1.3 * R1);
    expect(after.slowShare).toBeLessThan(0.15);
    expect(stats.byOutcome['slow-down'] / stats.requests).toBeLessThan(0.1);
  });

  it('a fixed window of the same concurrency hammers the limited store', async () => {
    const { stats } = await packUnderLimit('fixed');
    // Whether or not the pack got through its retries, most of its requests were refused.
    expect(stats.byOutcome['slow-down'] / stats.requests).toBeGreaterThan(0.3);
  });
});
