/**
 * The synthetic Software Heritage through the real @aws-sdk/client-s3, unsigned and path style as
 * stackflow talks to s3://softwareheritage: bodies, 404s, faults, the rate limit and the control API.
 */
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, applyPatch, planBlob } from './swh/model.js';
import { startSwhServer } from './swh/harness.js';
import type { SwhTestServer } from './swh/harness.js';

const hexId = (i: number) => (i * 2654435761).toString(16).padStart(40, '0').slice(-40);

describe('synthetic Software Heritage', () => {
  let swh: SwhTestServer;
  let c: S3Client;
  beforeAll(async () => {
    swh = await startSwhServer({ config: { latency: { medianMs: 0 }, missingRate: 0.2, seed: 9 } });
    // No SDK retries: every answer is seen as the server gave it.
    c = swh.client({ maxAttempts: 1 });
  });
  afterAll(async () => {
    c.destroy();
    await swh.stop();
  });

  const get = async (id: string) => {
    try {
      const out = await c.send(new GetObjectCommand({ Bucket: swh.bucket, Key: `content/${id}` }));
      return {
        ok: true as const,
        bytes: Buffer.from((await out.Body?.transformToByteArray()) ?? []),
        etag: out.ETag,
      };
    } catch (e) {
      const x = e as { name: string; $metadata?: { httpStatusCode?: number } };
      return { ok: false as const, name: x.name, status: x.$metadata?.httpStatusCode };
    }
  };

  it('serves deterministic gzip bodies per id and NoSuchKey for the missing share', async () => {
    await swh.resetStats();
    const config = applyPatch(DEFAULT_CONFIG, { missingRate: 0.2, seed: 9 });
    let missing = 0;
    for (let i = 0; i < 40; i++) {
      const id = hexId(i);
      const a = await get(id);
      const b = await get(id);
      const plan = planBlob(config, id);
      if (plan.kind === 'missing') {
        missing++;
        expect(a).toEqual({ ok: false, name: 'NoSuchKey', status: 404 });
        expect(b).toEqual(a);
      } else {
        expect(a.ok && b.ok).toBe(true);
        if (!a.ok || !b.ok) continue;
        expect(a.bytes.equals(b.bytes)).toBe(true);
        expect(gunzipSync(a.bytes).toString('utf8').length).toBeGreaterThan(0);
      }
    }
    expect(missing).toBeGreaterThan(0);
    const s = await swh.stats();
    expect(s.requests).toBe(80);
    expect(s.byOutcome.missing).toBe(2 * missing);
    expect(s.byOutcome.ok).toBe(80 - 2 * missing);
  });

  it('answers HEAD with the body length and refuses other buckets and bad keys', async () => {
    const config = applyPatch(DEFAULT_CONFIG, { missingRate: 0.2, seed: 9 });
    let n = 1000;
    while (planBlob(config, hexId(n)).kind === 'missing') n++;
    const id = hexId(n);
    const got = await get(id);
    expect(got.ok).toBe(true);
    if (!got.ok) return;
    const head = await c.send(new HeadObjectCommand({ Bucket: swh.bucket, Key: `content/${id}` }));
    expect(head.ContentLength).toBe(got.bytes.length);
    expect(head.ETag).toBe(got.etag);
    await expect(
      c.send(new GetObjectCommand({ Bucket: 'other-bucket', Key: `content/${id}` })),
    ).rejects.toMatchObject({ name: 'NoSuchBucket' });
    await expect(
      c.send(new GetObjectCommand({ Bucket: swh.bucket, Key: 'content/not-a-sha1' })),
    ).rejects.toMatchObject({ name: 'NoSuchKey' });
  });

  it('above the rate limit answers 503 SlowDown, and a raised limit applies at once', async () => {
    // 1 a second after a burst of 5: at most 5 + (seconds the 30 GETs take) are admitted, however
    // slow the machine.
    await swh.setConfig({ missingRate: 0, rateLimit: { perSecond: 1, burst: 5 } });
    await swh.resetStats();
    const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => get(hexId(5000 + i))));
    const slow = burst.filter((r) => !r.ok);
    expect(slow.length).toBeGreaterThanOrEqual(20);
    expect(slow[0]).toEqual({ ok: false, name: 'SlowDown', status: 503 });
    await swh.setConfig({ rateLimit: { perSecond: 100_000, burst: 1000 } });
    const after = await Promise.all(Array.from({ length: 30 }, (_, i) => get(hexId(6000 + i))));
    expect(after.every((r) => r.ok)).toBe(true);
    const s = await swh.stats();
    expect(s.byOutcome['slow-down']).toBe(slow.length);
    expect(s.timeline.reduce((a, t) => a + t.slowDown, 0)).toBe(slow.length);
    await swh.setConfig({ rateLimit: { perSecond: null } });
  });

  it('injects 500 InternalError and 503 ServiceUnavailable', async () => {
    await swh.setConfig({ fault500Rate: 1 });
    expect(await get(hexId(7))).toEqual({ ok: false, name: 'InternalError', status: 500 });
    await swh.setConfig({ fault500Rate: 0, fault503Rate: 1 });
    expect(await get(hexId(7))).toEqual({ ok: false, name: 'ServiceUnavailable', status: 503 });
    await swh.setConfig({ fault503Rate: 0 });
  });

  it('delays answers by the latency model (stragglers included)', async () => {
    await swh.setConfig({
      latency: {
        medianMs: 5,
        p99Ms: 10,
        stragglerRate: 1,
        stragglerMinMs: 300,
        stragglerMaxMs: 300,
      },
    });
    const t0 = performance.now();
    await get(hexId(8));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(295);
    await swh.setConfig({ latency: { medianMs: 0 } });
  });

  it('rejects a bad config with every error and keeps the old one', async () => {
    await expect(swh.setConfig({ missingRate: -1, fault500Rate: 3 })).rejects.toThrow(
      /missingRate must be in \[0, 1\], got -1.*fault500Rate must be in \[0, 1\], got 3/,
    );
    expect((await swh.config()).missingRate).toBe(0);
  });
});
