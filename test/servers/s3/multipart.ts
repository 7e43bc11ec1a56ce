/**
 * Multipart uploads, after s3rver's CreateMultipartUpload (which stays s3rver's): UploadPart,
 * CompleteMultipartUpload and AbortMultipartUpload, in s3rver's layout:
 *
 *     <bucket>/._S3rver_uploads/<uploadId>/key         the object key
 *     <bucket>/._S3rver_uploads/<uploadId>/metadata    CreateMultipartUpload's request headers
 *     <bucket>/._S3rver_uploads/<uploadId>/<n>[.md5]   part n and its MD5
 *
 * What s3rver got wrong: Abort answered 405; UploadPart stored aws-chunked framing, answered before
 * the part was flushed and recreated aborted uploads; Complete checked no part (ETag, order, the
 * 5 MiB minimum), answered 500 for an unknown upload, ignored If-None-Match / If-Match, and gave
 * the object a plain MD5 ETag where AWS gives `md5(part md5s)-<parts>`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { AwsChunkedDecoder, BodyVerifier, planBody } from './body.js';
import type { ServerEnv } from './conditions.js';
import { checkWrite, hasWriteCondition, keyLock } from './conditions.js';
import {
  S3_XMLNS,
  escapeXml,
  header,
  queryParam,
  readSmallBody,
  sendXml,
  unescapeXml,
  xmlElements,
} from './http.js';
import type { Target } from './objects.js';
import { checkObjectRequest, requireBucket } from './objects.js';
import type { KoaContext } from './s3rver.js';
import { s3Error } from './s3rver.js';
import { UPLOADS_DIR, isNotFound, pickMetadata, writeFileSet } from './store.js';

/** AWS's minimum size of every part but the last. */
const MIN_PART_SIZE = 5 * 1024 * 1024;

function noSuchUpload(uploadId: string) {
  return s3Error(
    'NoSuchUpload',
    'The specified upload does not exist. The upload ID may be invalid, or the upload may have ' +
      'been aborted or completed.',
    { UploadId: uploadId },
  );
}

function uploadLock(bucket: string, uploadId: string): string {
  return `u\0${bucket}\0${uploadId}`;
}

/** The upload's directory, after checking that it exists and belongs to this key. */
async function uploadDir(env: ServerEnv, ctx: KoaContext, t: Target): Promise<string> {
  const uploadId = queryParam(ctx, 'uploadId') ?? '';
  // s3rver's ids are hex; anything else (a path, say) names no upload.
  if (!/^[0-9a-f]{1,64}$/i.test(uploadId)) throw noSuchUpload(uploadId);
  const dir = join(env.files.bucketDir(t.bucket), UPLOADS_DIR, uploadId);
  try {
    if ((await readFile(join(dir, 'key'), 'utf8')) !== t.key) throw noSuchUpload(uploadId);
  } catch (err) {
    if (isNotFound(err)) throw noSuchUpload(uploadId);
    throw err;
  }
  return dir;
}

function uploadIdOf(ctx: KoaContext): string {
  return queryParam(ctx, 'uploadId') ?? '';
}

export async function uploadPart(env: ServerEnv, ctx: KoaContext, t: Target): Promise<void> {
  checkObjectRequest(ctx, t.key);
  const raw = queryParam(ctx, 'partNumber') ?? '';
  const partNumber = /^\d{1,5}$/.test(raw) ? Number(raw) : 0;
  if (partNumber < 1 || partNumber > 10000) {
    throw s3Error(
      'InvalidArgument',
      'Part number must be an integer between 1 and 10000, inclusive',
      {
        ArgumentName: 'partNumber',
        ArgumentValue: raw,
      },
    );
  }
  const plan = planBody(ctx.headers);
  requireBucket(env, t.bucket);
  const uploadId = uploadIdOf(ctx);
  const release = await env.locks.acquireAll([
    { name: uploadLock(t.bucket, uploadId), mode: 'read' },
    { name: `${uploadLock(t.bucket, uploadId)}\0${String(partNumber)}`, mode: 'write' },
  ]);
  try {
    const dir = await uploadDir(env, ctx, t);
    const decoder = plan.chunked ? new AwsChunkedDecoder() : undefined;
    const verifier = new BodyVerifier(
      ctx.headers,
      plan.length,
      () => decoder?.trailers ?? new Map<string, string>(),
    );
    const part = join(dir, String(partNumber));
    const { etag } = await writeFileSet({ object: part, md5: `${part}.md5` }, ctx.req, undefined, {
      stages: decoder ? [decoder, verifier] : [verifier],
      sizeHint: plan.length,
    });
    ctx.set('ETag', etag);
    for (const [name, value] of verifier.verified) ctx.set(name, value);
    ctx.status = 200;
    ctx.body = '';
  } finally {
    release();
  }
}

interface PartRef {
  number: number;
  etag: string;
}

function parseCompleteBody(xml: string): PartRef[] {
  const parts = xmlElements(xml, 'Part').map((p) => ({
    number: Number(xmlElements(p, 'PartNumber')[0] ?? 'NaN'),
    // S3 compares part ETags without their quotes.
    etag: unescapeXml(xmlElements(p, 'ETag')[0] ?? '').replace(/"/g, ''),
  }));
  if (parts.length === 0 || parts.some((p) => !Number.isInteger(p.number))) {
    throw s3Error(
      'MalformedXML',
      'The XML you provided was not well-formed or did not validate against our published schema.',
    );
  }
  parts.forEach((p, i) => {
    const prev = parts[i - 1];
    if (prev !== undefined && p.number <= prev.number) {
      throw s3Error('InvalidPartOrder', 'The list of parts was not in ascending order.');
    }
  });
  return parts;
}

export async function completeMultipartUpload(
  env: ServerEnv,
  ctx: KoaContext,
  t: Target,
): Promise<void> {
  checkObjectRequest(ctx, t.key);
  requireBucket(env, t.bucket);
  const uploadId = uploadIdOf(ctx);
  const release = await env.locks.acquireAll([
    { name: uploadLock(t.bucket, uploadId), mode: 'write' },
    { name: keyLock(t.bucket, t.key), mode: 'write' },
  ]);
  try {
    const dir = await uploadDir(env, ctx, t);
    const parts = parseCompleteBody((await readSmallBody(ctx.req, 4 << 20)).toString('utf8'));
    const md5s: Buffer[] = [];
    for (const [i, p] of parts.entries()) {
      const path = join(dir, String(p.number));
      let size: number;
      let md5: string;
      try {
        [size, md5] = await Promise.all([
          stat(path).then((s) => s.size),
          readFile(`${path}.md5`, 'utf8'),
        ]);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        throw invalidPart(p);
      }
      if (md5 !== p.etag) throw invalidPart(p);
      if (size < MIN_PART_SIZE && i < parts.length - 1) {
        throw s3Error(
          'EntityTooSmall',
          'Your proposed upload is smaller than the minimum allowed object size.',
          {
            PartNumber: p.number,
            ProposedSize: size,
            MinSizeAllowed: MIN_PART_SIZE,
          },
        );
      }
      md5s.push(Buffer.from(md5, 'hex'));
    }
    if (hasWriteCondition(ctx.headers, env.features)) {
      checkWrite(ctx.headers, t.key, env.files.head(t.bucket, t.key), env.features);
    }
    const initiated = JSON.parse(
      await readFile(join(dir, 'metadata'), 'utf8'),
    ) as IncomingHttpHeaders;
    const metadata = pickMetadata(initiated, header(initiated, 'content-encoding'));
    const bytes = Readable.from(
      (async function* () {
        for (const p of parts) yield* createReadStream(join(dir, String(p.number)));
      })(),
    );
    const multipartEtag = `${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${String(parts.length)}`;
    const { etag } = await env.files.write(t.bucket, t.key, bytes, metadata, {
      etag: () => multipartEtag,
    });
    await rm(dir, { recursive: true, force: true });
    const location = `http://${header(ctx.headers, 'host') ?? 'localhost'}/${t.bucket}/${t.key}`;
    sendXml(
      ctx,
      `<CompleteMultipartUploadResult xmlns="${S3_XMLNS}"><Location>${escapeXml(location)}</Location>` +
        `<Bucket>${escapeXml(t.bucket)}</Bucket><Key>${escapeXml(t.key)}</Key>` +
        `<ETag>${escapeXml(etag)}</ETag></CompleteMultipartUploadResult>`,
    );
  } finally {
    release();
  }
}

function invalidPart(p: PartRef) {
  return s3Error(
    'InvalidPart',
    "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
    { PartNumber: p.number, ETag: p.etag },
  );
}

/** AbortMultipartUpload: 204, after which the upload id is unknown (NoSuchUpload). */
export async function abortMultipartUpload(
  env: ServerEnv,
  ctx: KoaContext,
  t: Target,
): Promise<void> {
  requireBucket(env, t.bucket);
  const release = await env.locks.acquire(uploadLock(t.bucket, uploadIdOf(ctx)), 'write');
  try {
    await rm(await uploadDir(env, ctx, t), { recursive: true, force: true });
    ctx.status = 204;
  } finally {
    release();
  }
}
