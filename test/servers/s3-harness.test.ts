/**
 * The S3 test server proves its fixes through the real SDK, one test per defect of s3rver 3.7.1
 * listed in /work/shared/reference/s3-test-servers.md: each would fail against stock s3rver.
 * Plus fault injection, the feature switches and the admin API.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { ListObjectsV2CommandOutput, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startS3Server } from './s3/harness.js';
import type { S3TestServer } from './s3/harness.js';

let s3: S3TestServer;
let c: S3Client;
let n = 0;

beforeAll(async () => {
  s3 = await startS3Server();
  c = s3.client();
}, 60_000);
afterAll(async () => {
  c.destroy();
  await s3.stop();
});
afterEach(async () => {
  await s3.setFaults(null);
  await s3.setFeatures({ ifNoneMatch: true, ifMatch: true, conditionalDelete: true });
});

/** A fresh bucket per test, so tests share nothing. */
async function freshBucket(): Promise<string> {
  const name = `t-${String(++n)}-${randomBytes(3).toString('hex')}`;
  await s3.createBucket(name);
  return name;
}

const md5 = (b: Uint8Array | string) => createHash('md5').update(b).digest('hex');

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The rejection of `p` (fails the test if it resolves), with the SDK's error shape. */
async function failure(p: Promise<unknown>): Promise<SdkError & { status?: number }> {
  try {
    await p;
  } catch (err) {
    const e = err as SdkError;
    return { ...e, name: e.name, message: e.message, status: e.$metadata?.httpStatusCode };
  }
  throw new Error('expected a failure, got success');
}

async function getText(bucket: string, key: string, client = c): Promise<string> {
  const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return (await r.Body?.transformToString()) ?? '';
}

async function put(bucket: string, key: string, body: string | Buffer, extra = {}) {
  return c.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...extra }));
}

/** A multipart upload of one part, completed with the conditions in `cond` (if any). */
async function onePartUpload(
  bucket: string,
  key: string,
  body: string,
  cond: { IfNoneMatch?: string; IfMatch?: string } = {},
) {
  const { UploadId } = await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
  const part = await c.send(
    new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: body }),
  );
  return c.send(
    new CompleteMultipartUploadCommand({
      Bucket: bucket,
      Key: key,
      UploadId,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
      ...cond,
    }),
  );
}

describe('conditional writes, as AWS enforces them', () => {
  it('lets exactly one of 50 concurrent create-only PUTs win; the rest get 412', async () => {
    const b = await freshBucket();
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        put(b, 'lease', `claim-${String(i)}`, { IfNoneMatch: '*' }),
      ),
    );
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as SdkError] : []));
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(49);
    for (const e of lost) {
      expect(e.name).toBe('PreconditionFailed');
      expect(e.$metadata?.httpStatusCode).toBe(412);
    }
    expect(await getText(b, 'lease')).toBe(`claim-${String(won[0])}`);
  });

  it('answers If-None-Match with an ETag (not *) with 501, as AWS does', async () => {
    const b = await freshBucket();
    const e = await failure(put(b, 'k', 'x', { IfNoneMatch: '"abc"' }));
    expect([e.status, e.name]).toEqual([501, 'NotImplemented']);
  });

  it('applies If-Match on PUT with the quoted or unquoted ETag; 412 on a mismatch, 404 if missing', async () => {
    const b = await freshBucket();
    const { ETag: v1 = '' } = await put(b, 'k', 'v1');
    expect(v1).toBe(`"${md5('v1')}"`);
    const { ETag: v2 = '' } = await put(b, 'k', 'v2', { IfMatch: v1 });
    await put(b, 'k', 'v3', { IfMatch: v2.replace(/"/g, '') });
    expect(await getText(b, 'k')).toBe('v3');
    const stale = await failure(put(b, 'k', 'v4', { IfMatch: v1 }));
    expect([stale.status, stale.name]).toEqual([412, 'PreconditionFailed']);
    expect(await getText(b, 'k')).toBe('v3');
    const missing = await failure(put(b, 'nope', 'x', { IfMatch: v1 }));
    expect([missing.status, missing.name]).toEqual([404, 'NoSuchKey']);
  });

  it('applies If-Match / If-None-Match on GET and HEAD', async () => {
    const b = await freshBucket();
    const { ETag = '' } = await put(b, 'k', 'body');
    const got = await c.send(new GetObjectCommand({ Bucket: b, Key: 'k', IfMatch: ETag }));
    expect(await got.Body?.transformToString()).toBe('body');
    const get412 = await failure(
      c.send(new GetObjectCommand({ Bucket: b, Key: 'k', IfMatch: '"0"' })),
    );
    expect(get412.status).toBe(412);
    const head412 = await failure(
      c.send(new HeadObjectCommand({ Bucket: b, Key: 'k', IfMatch: '"0"' })),
    );
    expect(head412.status).toBe(412);
    const notModified = await failure(
      c.send(new GetObjectCommand({ Bucket: b, Key: 'k', IfNoneMatch: ETag })),
    );
    expect(notModified.status).toBe(304);
  });

  it('applies If-None-Match and If-Match on CompleteMultipartUpload', async () => {
    const b = await freshBucket();
    const { ETag: existing = '' } = await put(b, 'k', 'old');
    const complete = (cond: { IfNoneMatch?: string; IfMatch?: string }) =>
      onePartUpload(b, 'k', 'new', cond);
    expect((await failure(complete({ IfNoneMatch: '*' }))).status).toBe(412);
    expect((await failure(complete({ IfMatch: '"0"' }))).status).toBe(412);
    expect(await getText(b, 'k')).toBe('old');
    await complete({ IfMatch: existing });
    expect(await getText(b, 'k')).toBe('new');
  });

  it('applies If-Match on DeleteObject and per-object ETags in DeleteObjects', async () => {
    const b = await freshBucket();
    const { ETag = '' } = await put(b, 'k', 'v');
    const stale = await failure(
      c.send(new DeleteObjectCommand({ Bucket: b, Key: 'k', IfMatch: '"0"' })),
    );
    expect([stale.status, stale.name]).toEqual([412, 'PreconditionFailed']);
    expect(await getText(b, 'k')).toBe('v');
    const missing = await failure(
      c.send(new DeleteObjectCommand({ Bucket: b, Key: 'gone', IfMatch: ETag })),
    );
    expect(missing.status).toBe(404);
    const ok = await c.send(new DeleteObjectCommand({ Bucket: b, Key: 'k', IfMatch: ETag }));
    expect(ok.$metadata.httpStatusCode).toBe(204);
    expect((await failure(getText(b, 'k'))).name).toBe('NoSuchKey');

    await put(b, 'a', 'a');
    await put(b, 'b', 'b');
    const r = await c.send(
      new DeleteObjectsCommand({
        Bucket: b,
        Delete: { Objects: [{ Key: 'a', ETag: '"0"' }, { Key: 'b' }] },
      }),
    );
    expect(r.Deleted?.map((d) => d.Key)).toEqual(['b']);
    expect(r.Errors?.map((e) => [e.Key, e.Code])).toEqual([['a', 'PreconditionFailed']]);
  });
});

describe('atomic writes', () => {
  it('never leaves or serves a torn object under concurrent PUTs to one key', async () => {
    const b = await freshBucket();
    for (let round = 0; round < 10; round++) {
      const bodies = Array.from({ length: 8 }, () => randomBytes(256 << 10));
      const writes = bodies.map((body) => put(b, 'hot', body));
      // Readers race the writers: every body served must be one whole PUT, with its own ETag.
      // (In the first round a reader may come before any PUT has landed.)
      const seen = Array.from({ length: 8 }, async () => {
        try {
          const got = await c.send(new GetObjectCommand({ Bucket: b, Key: 'hot' }));
          const bytes = Buffer.from((await got.Body?.transformToByteArray()) ?? []);
          expect(got.ETag).toBe(`"${md5(bytes)}"`);
          expect(bytes.length).toBe(256 << 10);
        } catch (err) {
          if ((err as SdkError).name !== 'NoSuchKey' || round > 0) throw err;
        }
      });
      await Promise.all([...writes, ...seen]);
      const final = await c.send(new GetObjectCommand({ Bucket: b, Key: 'hot' }));
      const bytes = Buffer.from((await final.Body?.transformToByteArray()) ?? []);
      expect(bodies.some((body) => body.equals(bytes))).toBe(true);
      expect(final.ETag).toBe(`"${md5(bytes)}"`);
    }
  });
});

describe('listing', () => {
  async function listAll(
    b: string,
    input: { Prefix?: string; Delimiter?: string; MaxKeys?: number },
  ) {
    const pages: ListObjectsV2CommandOutput[] = [];
    let token: string | undefined;
    do {
      const page = await c.send(
        new ListObjectsV2Command({ Bucket: b, ...input, ContinuationToken: token }),
      );
      pages.push(page);
      token = page.NextContinuationToken;
      expect(page.IsTruncated).toBe(token !== undefined);
    } while (token !== undefined);
    return pages;
  }

  it('pages one key at a time in UTF-8 byte order without losing any', async () => {
    const b = await freshBucket();
    for (const k of ['p', 'p-1', 'p/x', 'p.a', 'p0']) await put(b, k, k);
    const pages = await listAll(b, { MaxKeys: 1 });
    expect(pages.flatMap((p) => p.Contents?.map((o) => o.Key) ?? [])).toEqual([
      'p',
      'p-1',
      'p.a',
      'p/x',
      'p0',
    ]);
    expect(pages.every((p) => p.KeyCount === 1)).toBe(true);
  });

  it('orders by bytes, not UTF-16 code units', async () => {
    const b = await freshBucket();
    // U+FF5E sorts after U+1F600 in UTF-16 (0xFF5E > 0xD83D) but before it in UTF-8.
    for (const k of ['\u{1F600}', '\uFF5E', 'a']) await put(b, k, 'x');
    const r = await c.send(new ListObjectsV2Command({ Bucket: b }));
    expect(r.Contents?.map((o) => o.Key)).toEqual(['a', '\uFF5E', '\u{1F600}']);
  });

  it('groups common prefixes, counting them in MaxKeys, across pages', async () => {
    const b = await freshBucket();
    for (const k of ['a/1', 'a/2', 'b/1', 'c', 'd/e/f', 'd/g', 'e']) await put(b, k, k);
    const pages = await listAll(b, { Delimiter: '/', MaxKeys: 2 });
    expect(
      pages.map((p) => [
        p.CommonPrefixes?.map((x) => x.Prefix) ?? [],
        p.Contents?.map((o) => o.Key) ?? [],
      ]),
    ).toEqual([
      [['a/', 'b/'], []],
      [['d/'], ['c']],
      [[], ['e']],
    ]);
    expect(pages.map((p) => p.KeyCount)).toEqual([2, 2, 1]);
    const sub = await c.send(new ListObjectsV2Command({ Bucket: b, Prefix: 'd/', Delimiter: '/' }));
    expect([sub.CommonPrefixes?.map((x) => x.Prefix), sub.Contents?.map((o) => o.Key)]).toEqual([
      ['d/e/'],
      ['d/g'],
    ]);
  });

  it('lists 2,500 keys in 3 pages (the second page failed with DES on Node 20)', async () => {
    const b = await freshBucket();
    const keys = Array.from({ length: 2500 }, (_, i) => `k/${String(i).padStart(5, '0')}`);
    const client = s3.client();
    for (let i = 0; i < keys.length; i += 100) {
      await Promise.all(
        keys
          .slice(i, i + 100)
          .map((k) => client.send(new PutObjectCommand({ Bucket: b, Key: k, Body: k }))),
      );
    }
    client.destroy();
    const pages = await listAll(b, { Prefix: 'k/' });
    expect(pages.map((p) => p.Contents?.length)).toEqual([1000, 1000, 500]);
    expect(pages.flatMap((p) => p.Contents?.map((o) => o.Key))).toEqual(keys);
    const after = await c.send(new ListObjectsV2Command({ Bucket: b, StartAfter: 'k/02497' }));
    expect(after.Contents?.map((o) => o.Key)).toEqual(['k/02498', 'k/02499']);
    const v1 = await c.send(new ListObjectsCommand({ Bucket: b, Marker: 'k/00999', MaxKeys: 2 }));
    expect([v1.Contents?.map((o) => o.Key), v1.IsTruncated]).toEqual([
      ['k/01000', 'k/01001'],
      true,
    ]);
  }, 60_000);
});

describe("listing from the key index (kept by the server's own writes)", () => {
  const listed = async (b: string, client = c) => {
    const r = await client.send(new ListObjectsV2Command({ Bucket: b }));
    return (r.Contents ?? []).map((o) => [o.Key, o.Size, o.ETag]);
  };
  const tag = (body: string) => `"${md5(body)}"`;

  it('lists every change made after the first listing, and no failed write', async () => {
    const b = await freshBucket();
    expect(await listed(b)).toEqual([]);
    await put(b, 'a/1', 'x');
    await put(b, 'a/2', 'yy');
    expect(await listed(b)).toEqual([
      ['a/1', 1, tag('x')],
      ['a/2', 2, tag('yy')],
    ]);
    // An overwrite: the new size and ETag, not the ones read before.
    await put(b, 'a/1', 'zzz');
    await c.send(new CopyObjectCommand({ Bucket: b, Key: 'a/0', CopySource: `${b}/a/2` }));
    await onePartUpload(b, 'a/3', 'mp');
    expect((await listed(b)).map((e) => e.slice(0, 2))).toEqual([
      ['a/0', 2],
      ['a/1', 3],
      ['a/2', 2],
      ['a/3', 2],
    ]);
    expect((await listed(b))[1]).toEqual(['a/1', 3, tag('zzz')]);
    await c.send(new DeleteObjectCommand({ Bucket: b, Key: 'a/2' }));
    await c.send(new DeleteObjectsCommand({ Bucket: b, Delete: { Objects: [{ Key: 'a/0' }] } }));
    // Writes that fail store nothing, so list nothing.
    expect((await failure(put(b, 'a/1', 'w', { IfNoneMatch: '*' }))).status).toBe(412);
    await s3.setFaults({ rate: 1, kinds: ['503'], keyPrefix: 'a/9' });
    const once = s3.client({ maxAttempts: 1 });
    expect(
      (await failure(once.send(new PutObjectCommand({ Bucket: b, Key: 'a/9', Body: 'n' })))).status,
    ).toBe(503);
    once.destroy();
    await s3.setFaults(null);
    expect(await listed(b)).toEqual([
      ['a/1', 3, tag('zzz')],
      ['a/3', 2, (await c.send(new HeadObjectCommand({ Bucket: b, Key: 'a/3' }))).ETag],
    ]);
    const sub = await c.send(new ListObjectsV2Command({ Bucket: b, Prefix: 'a/3' }));
    expect(sub.Contents?.map((o) => o.Key)).toEqual(['a/3']);
    // A deleted key leaves no common prefix and takes no place in a page.
    await put(b, 'b/only', 'x');
    await c.send(new DeleteObjectCommand({ Bucket: b, Key: 'b/only' }));
    const grouped = await c.send(new ListObjectsV2Command({ Bucket: b, Delimiter: '/' }));
    expect(grouped.CommonPrefixes?.map((x) => x.Prefix)).toEqual(['a/']);
  });

  it('lists what a server left on disk when another starts on its directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stackflow-s3-restart-'));
    try {
      const first = await startS3Server({ dir, buckets: ['keep'] });
      const one = first.client();
      for (const k of ['d/x', 'd/y', 'e']) {
        await one.send(new PutObjectCommand({ Bucket: 'keep', Key: k, Body: k }));
      }
      one.destroy();
      await first.stop();
      const second = await startS3Server({ dir });
      const two = second.client();
      try {
        expect((await listed('keep', two)).map((e) => e[0])).toEqual(['d/x', 'd/y', 'e']);
        await two.send(new DeleteObjectCommand({ Bucket: 'keep', Key: 'd/x' }));
        await two.send(new PutObjectCommand({ Bucket: 'keep', Key: 'd/w', Body: 'w' }));
        expect((await listed('keep', two)).map((e) => e[0])).toEqual(['d/w', 'd/y', 'e']);
      } finally {
        two.destroy();
        await second.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('bodies', () => {
  it('stores a stream body sent aws-chunked with default SDK checksums verbatim', async () => {
    const b = await freshBucket();
    const client = s3.client();
    const sent: Record<string, string>[] = [];
    client.middlewareStack.add(
      (next) => async (args) => {
        sent.push({ ...(args.request as { headers: Record<string, string> }).headers });
        return next(args);
      },
      { step: 'finalizeRequest' },
    );
    const bytes = randomBytes(300_000);
    const chunks = [bytes.subarray(0, 100_000), bytes.subarray(100_000)];
    const r = await client.send(
      new PutObjectCommand({
        Bucket: b,
        Key: 'stream',
        Body: Readable.from(chunks),
        ContentLength: bytes.length,
      }),
    );
    expect(sent[0]?.['content-encoding']).toBe('aws-chunked');
    expect(sent[0]?.['x-amz-trailer']).toBe('x-amz-checksum-crc32');
    expect(r.ETag).toBe(`"${md5(bytes)}"`);
    const got = await c.send(new GetObjectCommand({ Bucket: b, Key: 'stream' }));
    expect(got.ContentEncoding).toBeUndefined();
    expect(Buffer.from((await got.Body?.transformToByteArray()) ?? []).equals(bytes)).toBe(true);
    client.destroy();
  });

  /** A raw aws-chunked PUT, to reach what the SDK never sends: a wrong trailer checksum. */
  function rawChunkedPut(bucket: string, key: string, data: Buffer, checksum: string) {
    const body = Buffer.concat([
      Buffer.from(`${data.length.toString(16)};chunk-signature=00\r\n`),
      data,
      Buffer.from(`\r\n0;chunk-signature=00\r\nx-amz-checksum-crc32:${checksum}\r\n\r\n`),
    ]);
    return new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(`${s3.endpoint}/${bucket}/${key}`, {
        method: 'PUT',
        headers: {
          'content-encoding': 'aws-chunked',
          'content-length': body.length,
          'x-amz-decoded-content-length': data.length,
          'x-amz-trailer': 'x-amz-checksum-crc32',
        },
      });
      req.on('error', reject);
      req.on('response', (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, text });
        });
      });
      req.end(body);
    });
  }

  it('verifies the trailing checksum of an aws-chunked body and stores nothing on a mismatch', async () => {
    const b = await freshBucket();
    const data = Buffer.from('hello, chunks');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(data));
    const bad = await rawChunkedPut(
      b,
      'k',
      data,
      Buffer.from('AAAAAA==', 'base64').toString('base64'),
    );
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('BadDigest');
    expect((await failure(getText(b, 'k'))).name).toBe('NoSuchKey');
    expect((await rawChunkedPut(b, 'k', data, crc.toString('base64'))).status).toBe(200);
    expect(await getText(b, 'k')).toBe('hello, chunks');
  });

  it('round-trips a 12 MB stream through lib-storage Upload (multipart)', async () => {
    const b = await freshBucket();
    const bytes = randomBytes(12 << 20);
    await s3.resetStats();
    const upload = new Upload({
      client: c,
      params: {
        Bucket: b,
        Key: 'big',
        Body: Readable.from([bytes.subarray(0, 7 << 20), bytes.subarray(7 << 20)]),
      },
      partSize: 5 << 20,
    });
    const done = await upload.done();
    expect(done.ETag).toMatch(/^"[0-9a-f]{32}-3"$/);
    expect((await s3.stats()).byOp.UploadPart).toBe(3);
    const got = await c.send(new GetObjectCommand({ Bucket: b, Key: 'big' }));
    expect(got.ETag).toBe(done.ETag);
    expect(Buffer.from((await got.Body?.transformToByteArray()) ?? []).equals(bytes)).toBe(true);
  });

  it('aborts a multipart upload with 204; the id is then unknown', async () => {
    const b = await freshBucket();
    const { UploadId } = await c.send(new CreateMultipartUploadCommand({ Bucket: b, Key: 'm' }));
    await c.send(
      new UploadPartCommand({ Bucket: b, Key: 'm', UploadId, PartNumber: 1, Body: 'x' }),
    );
    const aborted = await c.send(
      new AbortMultipartUploadCommand({ Bucket: b, Key: 'm', UploadId }),
    );
    expect(aborted.$metadata.httpStatusCode).toBe(204);
    const part = await failure(
      c.send(new UploadPartCommand({ Bucket: b, Key: 'm', UploadId, PartNumber: 2, Body: 'y' })),
    );
    expect([part.status, part.name]).toEqual([404, 'NoSuchUpload']);
    const again = await failure(
      c.send(new AbortMultipartUploadCommand({ Bucket: b, Key: 'm', UploadId })),
    );
    expect(again.name).toBe('NoSuchUpload');
  });

  it('refuses parts under 5 MiB but the last, as AWS does', async () => {
    const b = await freshBucket();
    const { UploadId } = await c.send(new CreateMultipartUploadCommand({ Bucket: b, Key: 'm' }));
    const parts = [];
    for (const PartNumber of [1, 2]) {
      const r = await c.send(
        new UploadPartCommand({ Bucket: b, Key: 'm', UploadId, PartNumber, Body: 'tiny' }),
      );
      parts.push({ PartNumber, ETag: r.ETag });
    }
    const e = await failure(
      c.send(
        new CompleteMultipartUploadCommand({
          Bucket: b,
          Key: 'm',
          UploadId,
          MultipartUpload: { Parts: parts },
        }),
      ),
    );
    expect([e.status, e.name]).toEqual([400, 'EntityTooSmall']);
  });

  it('serves suffix and single-byte ranges, and records them', async () => {
    const b = await freshBucket();
    await put(b, 'r', 'abcdefghij');
    await s3.resetStats();
    const range = async (Range: string) => {
      const r = await c.send(new GetObjectCommand({ Bucket: b, Key: 'r', Range }));
      return [await r.Body?.transformToString(), r.ContentRange, r.$metadata.httpStatusCode];
    };
    expect(await range('bytes=-3')).toEqual(['hij', 'bytes 7-9/10', 206]);
    expect(await range('bytes=-30')).toEqual(['abcdefghij', 'bytes 0-9/10', 206]);
    expect(await range('bytes=0-0')).toEqual(['a', 'bytes 0-0/10', 206]);
    expect(await range('bytes=8-')).toEqual(['ij', 'bytes 8-9/10', 206]);
    const e = await failure(range('bytes=10-'));
    expect([e.status, e.name]).toEqual([416, 'InvalidRange']);
    expect((await s3.stats()).ranges).toEqual(
      ['bytes=-3', 'bytes=-30', 'bytes=0-0', 'bytes=8-', 'bytes=10-'].map((r) => ({
        bucket: b,
        key: 'r',
        range: r,
      })),
    );
  });

  it('copies keys with + = & and spaces (CopySource URL-decoded)', async () => {
    const b = await freshBucket();
    const src = 'dir/a+b=c&d e.txt';
    await put(b, src, 'payload', { ContentType: 'text/x-test', Metadata: { who: 'me' } });
    const r = await c.send(
      new CopyObjectCommand({
        Bucket: b,
        Key: 'copy+1',
        CopySource: `${b}/${encodeURIComponent(src)}`,
      }),
    );
    expect(r.CopyObjectResult?.ETag).toBe(`"${md5('payload')}"`);
    const got = await c.send(new GetObjectCommand({ Bucket: b, Key: 'copy+1' }));
    expect([await got.Body?.transformToString(), got.ContentType, got.Metadata]).toEqual([
      'payload',
      'text/x-test',
      { who: 'me' },
    ]);
    const cond = await failure(
      c.send(
        new CopyObjectCommand({
          Bucket: b,
          Key: 'copy+1',
          CopySource: `${b}/${encodeURIComponent(src)}`,
          IfNoneMatch: '*',
        }),
      ),
    );
    expect(cond.status).toBe(412);
  });
});

describe('fault injection', () => {
  const once = () => s3.client({ maxAttempts: 1 });

  it('answers 500 InternalError and 503 SlowDown without applying the write', async () => {
    const b = await freshBucket();
    const client = once();
    await s3.resetStats();
    for (const [kind, status, name] of [
      ['500', 500, 'InternalError'],
      ['503', 503, 'SlowDown'],
    ] as const) {
      await s3.setFaults({ rate: 1, kinds: [kind] });
      const e = await failure(
        client.send(new PutObjectCommand({ Bucket: b, Key: kind, Body: 'x' })),
      );
      expect([e.status, e.name]).toEqual([status, name]);
    }
    await s3.setFaults(null);
    for (const key of ['500', '503']) {
      expect((await failure(c.send(new HeadObjectCommand({ Bucket: b, Key: key })))).status).toBe(
        404,
      );
    }
    const stats = await s3.stats();
    expect(stats.faults).toEqual({ '500': 1, '503': 1 });
    expect(stats.byOp.PutObject).toBe(2);
    client.destroy();
  });

  it('resets the connection without applying the write', async () => {
    const b = await freshBucket();
    const client = once();
    await s3.resetStats();
    await s3.setFaults({ rate: 1, kinds: ['reset'] });
    const e = await failure(client.send(new PutObjectCommand({ Bucket: b, Key: 'k', Body: 'x' })));
    expect(e.status).toBeUndefined();
    expect(['ECONNRESET', 'EPIPE']).toContain(e.code);
    await s3.setFaults(null);
    expect((await failure(c.send(new HeadObjectCommand({ Bucket: b, Key: 'k' })))).status).toBe(
      404,
    );
    expect((await s3.stats()).faults).toEqual({ reset: 1 });
    client.destroy();
  });

  it('cuts a GET body mid-stream: headers and half the bytes, then a premature close', async () => {
    const b = await freshBucket();
    await put(b, 'k', randomBytes(64 << 10));
    const client = once();
    await s3.resetStats();
    await s3.setFaults({ rate: 1, kinds: ['reset-mid-body'] });
    const got = await client.send(new GetObjectCommand({ Bucket: b, Key: 'k' }));
    expect(got.ContentLength).toBe(64 << 10);
    let received = 0;
    const read = (async () => {
      for await (const chunk of got.Body as AsyncIterable<Buffer>) received += chunk.length;
    })();
    await expect(read).rejects.toThrow(/aborted|premature|ECONNRESET|socket/i);
    expect(received).toBe(32 << 10);
    // A HEAD has no body to cut: not eligible, so not faulted.
    await client.send(new HeadObjectCommand({ Bucket: b, Key: 'k' }));
    expect((await s3.stats()).faults).toEqual({ 'reset-mid-body': 1 });
    client.destroy();
  });

  it('delays requests by latencyMs, then serves them', async () => {
    const b = await freshBucket();
    await put(b, 'k', 'v');
    await s3.setFaults({ rate: 1, kinds: ['latency'], latencyMs: 300 });
    const t0 = Date.now();
    expect(await getText(b, 'k')).toBe('v');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
  });

  it('filters by method, bucket and key prefix, and replays a seed', async () => {
    const b = await freshBucket();
    const client = once();
    await s3.setFaults({ rate: 1, kinds: ['503'], methods: ['GET'], bucket: b, keyPrefix: 'f/' });
    await client.send(new PutObjectCommand({ Bucket: b, Key: 'f/1', Body: 'x' }));
    await client.send(new PutObjectCommand({ Bucket: b, Key: 'g/1', Body: 'x' }));
    expect(await getText(b, 'g/1', client)).toBe('x');
    expect((await failure(getText(b, 'f/1', client))).status).toBe(503);
    const pattern = async () => {
      await s3.setFaults({ rate: 0.5, kinds: ['503'], seed: 42 });
      const outcomes: boolean[] = [];
      for (let i = 0; i < 24; i++) {
        outcomes.push(
          await client.send(new HeadObjectCommand({ Bucket: b, Key: 'g/1' })).then(
            () => true,
            () => false,
          ),
        );
      }
      return outcomes;
    };
    const first = await pattern();
    expect(first).toContain(true);
    expect(first).toContain(false);
    expect(await pattern()).toEqual(first);
    client.destroy();
  });

  it('is survived by the SDK default retries at a 30% fault rate', async () => {
    const b = await freshBucket();
    await s3.resetStats();
    await s3.setFaults({ rate: 0.3, kinds: ['500', '503', 'reset'], seed: 3 });
    for (let i = 0; i < 20; i++) await put(b, `k${String(i)}`, `v${String(i)}`);
    await s3.setFaults(null);
    for (let i = 0; i < 20; i++) expect(await getText(b, `k${String(i)}`)).toBe(`v${String(i)}`);
    const stats = await s3.stats();
    expect(Object.values(stats.faults).reduce((x, y) => x + y, 0)).toBeGreaterThan(0);
    expect(stats.byOp.PutObject).toBeGreaterThan(20);
  });

  it('rejects a bad fault config', async () => {
    await expect(s3.setFaults({ rate: 2, kinds: ['500'] })).rejects.toThrow(/rate/);
  });
});

describe('feature switches (imitating weaker stores)', () => {
  it('ifMatch off: If-Match is ignored while create-only is still enforced', async () => {
    const b = await freshBucket();
    await put(b, 'k', 'v1');
    await s3.setFeatures({ ifMatch: false });
    await put(b, 'k', 'v2', { IfMatch: '"stale"' });
    expect(await getText(b, 'k')).toBe('v2');
    await put(b, 'new', 'x', { IfMatch: '"stale"' });
    expect((await failure(put(b, 'k', 'v3', { IfNoneMatch: '*' }))).status).toBe(412);
  });

  it('conditionalDelete off: a stale If-Match delete goes ahead', async () => {
    const b = await freshBucket();
    await put(b, 'k', 'v1');
    await s3.setFeatures({ conditionalDelete: false });
    await c.send(new DeleteObjectCommand({ Bucket: b, Key: 'k', IfMatch: '"stale"' }));
    expect((await failure(getText(b, 'k'))).name).toBe('NoSuchKey');
  });

  it('ifNoneMatch off: create-only puts overwrite, as on a store without them', async () => {
    const b = await freshBucket();
    await put(b, 'k', 'v1');
    await s3.setFeatures({ ifNoneMatch: false });
    await put(b, 'k', 'v2', { IfNoneMatch: '*' });
    expect(await getText(b, 'k')).toBe('v2');
  });
});

describe('harness helpers', () => {
  it('uploads a directory tree under a prefix, keys with /', async () => {
    const b = await freshBucket();
    const dir = await mkdtemp(join(tmpdir(), 'sf-s3-upload-'));
    try {
      await mkdir(join(dir, 'a', 'b'), { recursive: true });
      await writeFile(join(dir, 'top.txt'), 'top');
      await writeFile(join(dir, 'a', 'b', 'deep.bin'), randomBytes(10));
      expect(await s3.upload(b, 'in/', dir)).toBe(2);
      const r = await c.send(new ListObjectsV2Command({ Bucket: b }));
      expect(r.Contents?.map((o) => o.Key)).toEqual(['in/a/b/deep.bin', 'in/top.txt']);
      expect(await getText(b, 'in/top.txt')).toBe('top');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('gives child processes credentials and region, but no endpoint', () => {
    expect(s3.env).toEqual({
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    });
    expect(s3.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });
});
