/**
 * The ObjectStore contract on the S3 store, against a real S3-protocol server on loopback
 * (s3rver behind the harness that fixes its defects and enforces conditional writes as AWS
 * does), plus what only S3 has: prefixes, multipart uploads, retries under injected faults.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Result } from '../../lib/errors.js';
import { S3Store } from '../../lib/io/stores/s3-store.js';
import type { S3StoreOptions } from '../../lib/io/stores/s3-store.js';
import { objectKey as k } from '../../lib/model.js';
import type { RetryNotice } from '../../lib/util/retry.js';
import { startS3Server } from '../servers/s3/harness.js';
import type { S3TestServer } from '../servers/s3/harness.js';
import { testObjectStore } from './object-store.js';

let server: S3TestServer;
let n = 0;
const credentials = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

beforeAll(async () => {
  server = await startS3Server();
  Object.assign(process.env, credentials);
}, 60_000);
afterAll(async () => {
  await server.stop();
});

/** A fresh bucket (and a prefix inside it, so that rooting at a prefix is exercised too). */
async function freshStore(opts: S3StoreOptions = {}, prefix = 'root/') {
  const bucket = `contract-${String(++n)}`;
  await server.createBucket(bucket);
  return new S3Store(
    {
      bucket,
      prefix,
      endpoint: server.endpoint,
      region: 'us-east-1',
      pathStyle: true,
      unsigned: false,
    },
    opts,
  );
}

testObjectStore('s3', async () => {
  const store = await freshStore();
  return {
    store,
    cleanup: () => {
      store.close();
      return Promise.resolve();
    },
  };
});

function must<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(`expected ok, got ${r.error.reason}: ${r.error.message}`);
  return r.value;
}

describe('S3Store', () => {
  it('keeps its keys under its prefix and lists them without it', async () => {
    const store = await freshStore({}, 'deep/er/');
    must(await store.put(k('a/b.txt'), 'x'));
    const page = must(await store.list('a/'));
    expect(page.objects.map((o) => o.key)).toEqual(['a/b.txt']);
    const raw = await server
      .client()
      .send(new ListObjectsV2Command({ Bucket: store.url.split('/')[2] ?? '', Prefix: '' }));
    expect(raw.Contents?.map((o) => o.Key)).toEqual(['deep/er/a/b.txt']);
    store.close();
  });

  it('uploads large files and streams in parts, with the sha256 of the bytes', async () => {
    const store = await freshStore({ multipartThreshold: 5 << 20, partSize: 5 << 20 });
    const dir = await mkdtemp(join(tmpdir(), 'sf-s3-'));
    const bytes = randomBytes(12 << 20);
    await writeFile(join(dir, 'big.bin'), bytes);
    const before = (await server.stats()).byOp;
    const fromFile = must(await store.put(k('big/file.bin'), { file: join(dir, 'big.bin') }));
    const fromStream = must(
      await store.put(
        k('big/stream.bin'),
        Readable.from([bytes.subarray(0, 7 << 20), bytes.subarray(7 << 20)]),
      ),
    );
    const after = (await server.stats()).byOp;
    expect((after.UploadPart ?? 0) - (before.UploadPart ?? 0)).toBeGreaterThanOrEqual(6);
    for (const info of [fromFile, fromStream]) {
      expect(info.size).toBe(bytes.length);
      expect(must(await store.get(info.key)).equals(bytes)).toBe(true);
    }
    expect(fromFile.sha256).toBe(fromStream.sha256);
    expect(
      (await store.put(k('big/cond.bin'), { file: join(dir, 'big.bin') }, { ifNoneMatch: '*' })).ok,
    ).toBe(false);
    store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('retries 500s, SlowDown, resets and bodies cut mid-stream, counting every retry', async () => {
    let retries = 0;
    const store = await freshStore({ baseMs: 5, onRetry: () => retries++ });
    const blobs = Array.from({ length: 60 }, (_, i) => randomBytes(2048 + i));
    for (const [i, b] of blobs.entries()) must(await store.put(k(`f/${String(i)}`), b));
    await server.setFaults({
      rate: 0.3,
      kinds: ['500', '503', 'reset', 'reset-mid-body'],
      seed: 7,
    });
    try {
      for (const [i, b] of blobs.entries()) {
        expect(must(await store.get(k(`f/${String(i)}`))).equals(b)).toBe(true);
      }
      const faults = Object.values((await server.stats()).faults).reduce((a, b) => a + b, 0);
      expect(faults).toBeGreaterThan(5);
      expect(retries).toBe(faults);
    } finally {
      await server.setFaults(null);
    }
    store.close();
  });

  it('gives up after its bounded retries with a transient failure', async () => {
    const store = await freshStore({ baseMs: 1, retries: 2 });
    must(await store.put(k('x'), 'x'));
    await server.setFaults({ rate: 1, kinds: ['503'] });
    try {
      const before = (await server.stats()).requests;
      const r = await store.head(k('x'));
      expect(r.ok ? 'ok' : r.error.reason).toBe('transient');
      expect((await server.stats()).requests - before).toBe(3);
    } finally {
      await server.setFaults(null);
    }
    store.close();
  });

  it('retries a GET in one layer: at most 1 + retries requests, whatever fails', async () => {
    const notices: RetryNotice[] = [];
    const store = await freshStore({ baseMs: 1, retries: 2, onRetry: (x) => notices.push(x) });
    must(await store.put(k('g'), randomBytes(4096)));
    const mixes = [['503'], ['reset-mid-body'], ['500'], ['reset-mid-body', '503', '500']] as const;
    for (const [i, kinds] of [...mixes, ...mixes.slice(3), ...mixes.slice(3)].entries()) {
      // Every request fails; the mixed ones cut a body, then fail the retried GET's headers.
      await server.setFaults({ rate: 1, kinds: [...kinds], seed: i });
      try {
        const before = (await server.stats()).requests;
        const r = await store.get(k('g'));
        expect(r.ok ? 'ok' : r.error.reason).toBe('transient');
        // The SDK's retries and the store's body retries share one budget (they used to nest:
        // 9 requests here, 81 with the default 8 retries).
        expect((await server.stats()).requests - before).toBe(3);
      } finally {
        await server.setFaults(null);
      }
    }
    // One notice shape: retrying WHAT after WAIT because REASON.
    expect(notices).toHaveLength(12);
    for (const x of notices) {
      expect(x.what).toBe(`GET ${store.url}/g`);
      expect(x.attempt === 1 || x.attempt === 2).toBe(true);
      expect(x.reason).not.toBe('');
      expect(x.waitMs).toBeGreaterThanOrEqual(0);
    }
    store.close();
  });

  it('a multipart upload gives each of its requests a budget: scattered failures of many parts are cured', async () => {
    const notices: RetryNotice[] = [];
    const retries = 8;
    const store = await freshStore({
      baseMs: 1,
      retries,
      multipartThreshold: 5 << 20,
      partSize: 5 << 20,
      onRetry: (x) => notices.push(x),
    });
    const bytes = randomBytes(40 << 20);
    const before = await server.stats();
    // Every part upload fails until the parts in flight have failed 3 or 4 times each in all
    // (more failures than one budget for the whole upload would allow), then none does.
    await server.setFaults({ rate: 1, kinds: ['503', '500'], methods: ['PUT'] });
    let faulted = 0;
    const put = store.put(k('big/cured.bin'), Readable.from([bytes]));
    try {
      for (;;) {
        const st = await server.stats();
        faulted = Object.values(st.faults).reduce((a, b) => a + b, 0);
        faulted -= Object.values(before.faults).reduce((a, b) => a + b, 0);
        if (faulted >= 14) break;
        await new Promise((r) => setTimeout(r, 5));
      }
    } finally {
      await server.setFaults(null);
    }
    const info = must(await put);
    expect(faulted).toBeGreaterThan(retries);
    expect(info.size).toBe(bytes.length);
    expect(must(await store.get(info.key)).equals(bytes)).toBe(true);
    // Each retry says which part of which object it retries.
    expect(notices.length).toBeGreaterThanOrEqual(faulted);
    for (const x of notices) {
      expect(x.what).toMatch(new RegExp(`^PUT ${store.url}/big/cured\\.bin part \\d+$`));
    }
    store.close();
  }, 60_000);

  it('a multipart upload whose part fails for good stops at once: no further part, the upload aborted', async () => {
    const retries = 2;
    const notices: RetryNotice[] = [];
    const store = await freshStore({
      baseMs: 1,
      retries,
      multipartThreshold: 5 << 20,
      partSize: 5 << 20,
      onRetry: (x) => notices.push(x),
    });
    const parts = 16;
    const bytes = randomBytes(parts * (5 << 20));
    // Part 2 fails every time; every other request works.
    await server.setFaults({ rate: 1, kinds: ['503'], partNumbers: [2] });
    let after: Record<string, number> = {};
    const before = (await server.stats()).byOp;
    try {
      const r = await store.put(k('big/dead.bin'), Readable.from([bytes]));
      expect(r.ok ? 'ok' : r.error).toMatchObject({
        reason: 'transient',
        message: expect.stringContaining('big/dead.bin') as unknown,
      });
      after = (await server.stats()).byOp;
    } finally {
      await server.setFaults(null);
    }
    const sent = (op: string) => (after[op] ?? 0) - (before[op] ?? 0);
    // Part 2 had a call's budget; the parts in flight beside it finished, and no other part was
    // sent (the whole file, 15 more parts, went up for nothing when a failure did not stop it).
    expect(notices.map((x) => x.what)).toEqual(
      Array.from({ length: retries }, () => `PUT ${store.url}/big/dead.bin part 2`),
    );
    expect(sent('UploadPart') - (1 + retries)).toBeLessThan(parts - 1);
    expect(sent('UploadPart') - (1 + retries)).toBeLessThanOrEqual(8);
    expect(sent('AbortMultipartUpload')).toBe(1);
    expect(sent('CompleteMultipartUpload')).toBe(0);
    // Nothing of the call goes on after it returned.
    await new Promise((r) => setTimeout(r, 300));
    expect((await server.stats()).byOp).toEqual(after);
    expect((await store.head(k('big/dead.bin'))).ok).toBe(false);
    store.close();
  }, 60_000);

  it('connects once per call (the private send helper)', async () => {
    const store = await freshStore();
    must(await store.put(k('c'), 'c'));
    const spy = vi.spyOn(store as unknown as { connect: () => unknown }, 'connect');
    must(await store.get(k('c')));
    must(await store.head(k('c')));
    must(await store.list(''));
    expect(spy).toHaveBeenCalledTimes(3);
    spy.mockRestore();
    store.close();
  });

  it('does not retry a missing key, a lost race or a missing bucket', async () => {
    const store = await freshStore();
    must(await store.put(k('x'), 'x'));
    const before = (await server.stats()).requests;
    expect((await store.get(k('nope'))).ok).toBe(false);
    expect((await store.put(k('x'), 'y', { ifNoneMatch: '*' })).ok).toBe(false);
    expect((await server.stats()).requests - before).toBe(2);
    const gone = new S3Store({
      bucket: 'no-such-bucket',
      prefix: '',
      endpoint: server.endpoint,
      region: 'us-east-1',
      pathStyle: true,
      unsigned: false,
    });
    const r = await gone.get(k('x'));
    expect(r.ok ? 'ok' : r.error).toMatchObject({
      reason: 'invalid-input',
      message: expect.stringMatching(/bucket no-such-bucket does not exist/) as unknown,
    });
    gone.close();
    store.close();
  });
});
