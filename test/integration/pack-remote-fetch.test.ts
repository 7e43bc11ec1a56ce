/**
 * pack's line workers fetching remote blobs themselves (tasks/pack/remote-fetch.ts through
 * line-pool.ts), against the synthetic Software Heritage on loopback with the real SDK in the
 * worker threads:
 * - the lines are those of the blobs fetched on the main thread (missing rows recorded, not lost);
 * - every GET of every worker takes a slot of the main thread's window: the server never sees
 *   more in flight than the window allows, and no slot is left held afterwards;
 * - retries happen in the workers and are reported; a straggling GET is hedged;
 * - a cancelled batch stops fetching and gives its slots back.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Store } from '../../lib/io/stores/s3-store.js';
import { resolveS3Location } from '../../lib/io/stores/s3-location.js';
import { objectKey } from '../../lib/model.js';
import { FetchWindow } from '../../lib/util/fetch-window.js';
import { LinePool, windowId as windowIdOf } from '../../tasks/pack/line-pool.js';
import type { LineBatch, LineBatchResult } from '../../tasks/pack/lines.js';
import { buildLines } from '../../tasks/pack/lines.js';
import type { SwhTestServer } from '../servers/swh/harness.js';
import { startSwhServer } from '../servers/swh/harness.js';

let swh: SwhTestServer;
let pool: LinePool;

beforeAll(async () => {
  swh = await startSwhServer({
    config: {
      latency: { medianMs: 5, p99Ms: 40, stragglerRate: 0 },
      size: { medianBytes: 2048, maxBytes: 256 << 10 },
      missingRate: 0.1,
    },
  });
  pool = new LinePool(2);
}, 60_000);

afterAll(async () => {
  await pool.close();
  await swh.stop();
});

const ids = (n: number, salt: string): string[] =>
  Array.from({ length: n }, (_, i) =>
    createHash('sha1')
      .update(`${salt}-${String(i)}`)
      .digest('hex'),
  );

function store(): S3Store {
  const loc = resolveS3Location(
    swh.contentUrl,
    { [swh.bucket]: { endpoint: swh.endpoint, path_style: true, unsigned: true } },
    {},
  );
  if (!loc.ok) throw new Error(loc.error.message);
  return new S3Store(loc.value, { retries: 0 });
}

function remoteBatch(blobIds: string[], window: FetchWindow): LineBatch {
  return {
    contentKey: '"content"',
    heads: blobIds.map((id) => JSON.stringify({ blob_id: id })),
    encodings: blobIds.map(() => 'UTF-8'),
    blobs: {
      kind: 'remote',
      ids: blobIds,
      store: store().threadSpec(),
      window: windowIdOf(window),
    },
  };
}

function fixedWindow(n: number): FetchWindow {
  const w = new FetchWindow({ min: n, initial: n });
  w.join(n);
  return w;
}

/** The same rows built from blobs fetched here, on the main thread, one at a time. */
async function builtHere(blobIds: string[]): Promise<LineBatchResult> {
  const s = store();
  const gz: Uint8Array[] = [];
  const missing = new Set<number>();
  for (const [i, id] of blobIds.entries()) {
    const r = await s.get(objectKey(id));
    if (r.ok) gz.push(r.value);
    else if (r.error.reason === 'not-found') {
      missing.add(i);
      gz.push(new Uint8Array());
    } else throw new Error(r.error.message);
  }
  const gzEnds = new Uint32Array(gz.length);
  gz.reduce((end, g, i) => (gzEnds[i] = end + g.byteLength), 0);
  const res = buildLines({
    contentKey: '"content"',
    heads: blobIds.map((id) => JSON.stringify({ blob_id: id })),
    encodings: blobIds.map(() => 'UTF-8'),
    blobs: { kind: 'bytes', gz: Buffer.concat(gz), gzEnds },
  });
  // An empty gzip body is "corrupt" here; the worker knows it as missing (a 404).
  return {
    ...res,
    failed: res.failed.map((f) =>
      missing.has(f.at) ? { at: f.at, error: { reason: 'missing', detail: 'no such blob' } } : f,
    ),
  };
}

const text = (r: LineBatchResult) => Buffer.from(r.lines).toString('utf8');

describe('line workers fetching remote blobs', () => {
  it('build the lines of the blobs, every GET within the main thread window', async () => {
    await swh.resetStats();
    const window = fixedWindow(3);
    const a = ids(120, 'a');
    const b = ids(80, 'b');
    const signal = new AbortController().signal;
    const [ra, rb] = await Promise.all([
      pool.build(remoteBatch(a, window), { window, signal }),
      pool.build(remoteBatch(b, window), { window, signal }),
    ]);
    const [ea, eb] = [await builtHere(a), await builtHere(b)];
    for (const [got, want] of [
      [ra, ea],
      [rb, eb],
    ] as const) {
      expect(text(got)).toBe(text(want));
      expect([...got.chars]).toEqual([...want.chars]);
      expect(got.failed).toEqual(want.failed);
      expect(got.fatal).toEqual([]);
    }
    expect(ra.failed.length + rb.failed.length).toBeGreaterThan(5);
    const stats = await swh.stats();
    // 200 by the workers, 200 more by builtHere (one at a time).
    expect(stats.requests).toBe(400);
    expect(stats.maxInFlight).toBeLessThanOrEqual(3);
    expect(window.stats().inFlight).toBe(0);
    expect(window.stats().requests).toBe(200);
  }, 60_000);

  it('retry transient failures in the worker and report them', async () => {
    await swh.setConfig({ fault503Rate: 0.15 });
    try {
      const window = fixedWindow(8);
      const blobIds = ids(150, 'retry');
      const failures: string[] = [];
      const got = await pool.build(remoteBatch(blobIds, window), {
        window,
        signal: new AbortController().signal,
        onRetry: (f) => failures.push(f.reason),
      });
      await swh.setConfig({ fault503Rate: 0 });
      expect(got.fatal).toEqual([]);
      expect(text(got)).toBe(text(await builtHere(blobIds)));
      expect(failures.length).toBeGreaterThan(5);
      expect(new Set(failures)).toEqual(new Set(['transient']));
      expect(window.stats().inFlight).toBe(0);
    } finally {
      await swh.setConfig({ fault503Rate: 0 });
    }
  }, 60_000);

  it('hedge a GET that straggles, and keep the bytes', async () => {
    // 5% of requests take 3-4 s; a hedge goes out after 200 ms at these latencies.
    await swh.setConfig({
      latency: { stragglerRate: 0.05, stragglerMinMs: 3000, stragglerMaxMs: 4000 },
    });
    try {
      await swh.resetStats();
      const window = fixedWindow(16);
      const blobIds = ids(200, 'hedge');
      const started = performance.now();
      const got = await pool.build(remoteBatch(blobIds, window), {
        window,
        signal: new AbortController().signal,
      });
      const ms = performance.now() - started;
      await swh.setConfig({ latency: { stragglerRate: 0 } });
      const hedged = window.stats().hedged;
      // ~10 stragglers among 200: each hedged once (a hedge may straggle too, rarely).
      expect(hedged).toBeGreaterThan(2);
      expect(hedged).toBeLessThan(40);
      expect((await swh.stats()).requests).toBe(200 + hedged);
      // Not waiting for the stragglers: well under their 3 s (a loose bound, not a timing target).
      expect(ms).toBeLessThan(2900);
      expect(got.fatal).toEqual([]);
      expect(text(got)).toBe(text(await builtHere(blobIds)));
      expect(window.stats().inFlight).toBeLessThanOrEqual(hedged);
    } finally {
      await swh.setConfig({ latency: { stragglerRate: 0 } });
    }
  }, 60_000);

  it('stop fetching a cancelled batch and give its slots back', async () => {
    await swh.setConfig({ latency: { medianMs: 100, p99Ms: 200 } });
    try {
      await swh.resetStats();
      const window = fixedWindow(4);
      const ac = new AbortController();
      const built = pool.build(remoteBatch(ids(400, 'cancel'), window), {
        window,
        signal: ac.signal,
      });
      setTimeout(() => {
        ac.abort();
      }, 300);
      await expect(built).rejects.toThrow(/aborted/);
      // The GETs in flight end on their own; nothing new starts.
      for (let i = 0; i < 50 && window.stats().inFlight > 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(window.stats().inFlight).toBe(0);
      const sent = (await swh.stats()).requests;
      expect(sent).toBeLessThan(100);
      await new Promise((r) => setTimeout(r, 500));
      expect((await swh.stats()).requests).toBe(sent);
    } finally {
      await swh.setConfig({ latency: { medianMs: 5, p99Ms: 40 } });
    }
  }, 60_000);
});
