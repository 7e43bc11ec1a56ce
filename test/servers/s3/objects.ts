/**
 * Object operations answered by the harness instead of s3rver: GetObject, HeadObject, PutObject,
 * CopyObject, DeleteObject, DeleteObjects. Each runs under its key's lock (lock.ts), reads and
 * writes through store.ts, and evaluates conditions as AWS does (conditions.ts).
 *
 * What s3rver got wrong here: conditional headers ignored; `bytes=-N` served from the start and
 * `bytes=0-0` served whole; aws-chunked framing stored as data; PUT answered before its bytes were
 * flushed; CopySource decoded with decodeURI (so `+ = &` in keys failed); multipart ETags.
 */
import { once } from 'node:events';
import { closeSync, createReadStream, openSync, readFileSync, readSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { AwsChunkedDecoder, BodyVerifier, planBody } from './body.js';
import type { ServerEnv } from './conditions.js';
import {
  checkDelete,
  checkRead,
  checkWrite,
  hasWriteCondition,
  keyLock,
  noSuchKey,
} from './conditions.js';
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
import type { KoaContext } from './s3rver.js';
import { isS3Error, s3Error } from './s3rver.js';
import type { ObjectMeta } from './store.js';
import { SMALL_OBJECT, pickMetadata } from './store.js';

export interface Target {
  bucket: string;
  key: string;
}

const RESPONSE_OVERRIDES = [
  'content-type',
  'content-language',
  'expires',
  'cache-control',
  'content-disposition',
  'content-encoding',
];

export function requireBucket(env: ServerEnv, bucket: string): void {
  if (!env.files.bucketExists(bucket)) {
    throw s3Error('NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket });
  }
}

/**
 * Refuses what this server cannot store faithfully rather than answer wrongly: versioned reads
 * and keys whose path segments the filesystem layout would alias (`a//b` is `a/b` on disk).
 */
export function checkObjectRequest(ctx: KoaContext, key: string): void {
  const versionId = queryParam(ctx, 'versionId');
  if (versionId !== undefined && versionId !== 'null') {
    throw s3Error('NotImplemented', 'This test server does not support object versions.');
  }
  if (Buffer.byteLength(key) > 1024) {
    throw s3Error('KeyTooLongError', 'Your key is too long');
  }
  const segments = key.split('/');
  const last = segments.pop();
  if (segments.some((s) => s === '' || s === '.' || s === '..') || last === '.' || last === '..') {
    throw s3Error(
      'NotImplemented',
      `This test server cannot store the key ${JSON.stringify(key)} (an empty, "." or ".." path ` +
        'segment); AWS can.',
    );
  }
}

type ByteRange = { start: number; end: number } | 'whole' | 'unsatisfiable';

/**
 * A `Range` header against an object of `size` bytes. A syntactically invalid range, or several,
 * is ignored (the whole object, as RFC 7233 allows and S3 does); a suffix range counts from the
 * end; a start at or past the end, or any range of an empty object, is unsatisfiable.
 */
export function parseRange(value: string | undefined, size: number): ByteRange {
  if (value === undefined) return 'whole';
  const m = /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (m === null) return 'whole';
  const [, first = '', last = ''] = m;
  if (first === '' && last === '') return 'whole';
  if (first === '') {
    const n = Number(last);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return 'whole';
  if (start >= size) return 'unsatisfiable';
  return { start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
}

function setObjectHeaders(ctx: KoaContext, meta: ObjectMeta): void {
  ctx.set('ETag', meta.etag);
  ctx.set('Last-Modified', meta.lastModified.toUTCString());
  ctx.set('Accept-Ranges', 'bytes');
  ctx.set('Content-Type', 'binary/octet-stream');
  for (const [name, value] of Object.entries(meta.stored)) ctx.set(name, value);
  for (const name of RESPONSE_OVERRIDES) {
    const value = queryParam(ctx, `response-${name}`);
    if (value !== undefined) ctx.set(name, value);
  }
}

/**
 * GetObject / HeadObject. With `cutBody`, a GET whose body has at least 2 bytes gets its headers
 * and half its body, then the connection is closed (the `reset-mid-body` fault). Returns whether
 * that fault was applied.
 */
export async function getObject(
  env: ServerEnv,
  ctx: KoaContext,
  t: Target,
  cutBody: boolean,
): Promise<boolean> {
  checkObjectRequest(ctx, t.key);
  if (queryParam(ctx, 'partNumber') !== undefined) {
    throw s3Error('NotImplemented', 'This test server does not support GetObject by partNumber.');
  }
  requireBucket(env, t.bucket);
  const release = await env.locks.acquire(keyLock(t.bucket, t.key), 'read');
  let body: Buffer | Readable = Buffer.alloc(0);
  let cut = false;
  try {
    const meta = env.files.head(t.bucket, t.key);
    if (meta === null) throw noSuchKey(t.key);
    setObjectHeaders(ctx, meta);
    if (checkRead(ctx.headers, meta) === 'not-modified') {
      ctx.status = 304;
      return false;
    }
    const range = parseRange(header(ctx.headers, 'range'), meta.size);
    if (range === 'unsatisfiable') {
      throw s3Error('InvalidRange', 'The requested range is not satisfiable', {
        RangeRequested: header(ctx.headers, 'range') ?? '',
        ActualObjectSize: meta.size,
      });
    }
    const { start, end } = range === 'whole' ? { start: 0, end: meta.size - 1 } : range;
    const length = end - start + 1;
    ctx.status = range === 'whole' ? 200 : 206;
    if (range !== 'whole') {
      ctx.set('Content-Range', `bytes ${String(start)}-${String(end)}/${String(meta.size)}`);
    }
    ctx.length = length;
    if (ctx.method === 'GET' && length > 0) {
      cut = cutBody && length >= 2;
      const send = cut ? Math.floor(length / 2) : length;
      // Read, or opened, under the lock: a writer renames a new file into place, and an open
      // descriptor keeps the old one, so the body is one PUT's bytes however slow the client.
      if (send <= SMALL_OBJECT) {
        body = readRange(meta.path, start, send);
      } else {
        const stream = createReadStream(meta.path, { start, end: start + send - 1 });
        await once(stream, 'open');
        body = stream;
      }
    }
  } finally {
    release();
  }
  if (ctx.method === 'HEAD') return false;
  if (!cut) {
    ctx.body = body;
    return false;
  }
  const chunks: Buffer[] = [];
  if (Buffer.isBuffer(body)) chunks.push(body);
  else for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(chunk);
  ctx.respond = false;
  const res = ctx.res;
  // Close (not reset) once the half body is flushed, so the client surely receives it and then
  // sees the connection end before Content-Length bytes: a premature close.
  res.write(Buffer.concat(chunks), () => res.socket?.destroy());
  return true;
}

/** `length` bytes of a file from `start`, read synchronously (see store.ts on why sync). */
function readRange(path: string, start: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const n = readSync(fd, buf, got, length - got, start + got);
      if (n === 0) throw new Error(`Internal error: ${path} is shorter than its metadata says`);
      got += n;
    }
    return buf;
  } finally {
    closeSync(fd);
  }
}

/** PutObject: conditions, aws-chunked decoding, checksum checks, atomic write. */
export async function putObject(env: ServerEnv, ctx: KoaContext, t: Target): Promise<void> {
  checkObjectRequest(ctx, t.key);
  const plan = planBody(ctx.headers);
  requireBucket(env, t.bucket);
  const metadata = pickMetadata(ctx.headers, plan.contentEncoding);
  const release = await env.locks.acquire(keyLock(t.bucket, t.key), 'write');
  try {
    if (hasWriteCondition(ctx.headers, env.features)) {
      checkWrite(ctx.headers, t.key, env.files.head(t.bucket, t.key), env.features);
    }
    const decoder = plan.chunked ? new AwsChunkedDecoder() : undefined;
    const verifier = new BodyVerifier(
      ctx.headers,
      plan.length,
      () => decoder?.trailers ?? new Map<string, string>(),
    );
    const stages = decoder ? [decoder, verifier] : [verifier];
    const { etag } = await env.files.write(t.bucket, t.key, ctx.req, metadata, {
      stages,
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

/** `x-amz-copy-source` (`[/]bucket/key[?versionId=..]`, URL-encoded) as bucket and key. */
export function parseCopySource(value: string): Target {
  const [path = '', query] = value.split('?', 2);
  if (query !== undefined && !/^versionId=null$/.test(query)) {
    throw s3Error('NotImplemented', 'This test server does not support object versions.');
  }
  let decoded: string;
  try {
    // AWS fully URL-decodes the header; s3rver's decodeURI left %2B %3D %26 %2F ... encoded.
    decoded = decodeURIComponent(path);
  } catch {
    throw s3Error('InvalidArgument', 'Invalid copy source encoding', {
      ArgumentName: 'x-amz-copy-source',
    });
  }
  const trimmed = decoded.startsWith('/') ? decoded.slice(1) : decoded;
  const slash = trimmed.indexOf('/');
  if (slash <= 0 || slash === trimmed.length - 1) {
    throw s3Error('InvalidArgument', 'Copy Source must mention the source bucket and key', {
      ArgumentName: 'x-amz-copy-source',
    });
  }
  return { bucket: trimmed.slice(0, slash), key: trimmed.slice(slash + 1) };
}

/** CopyObject: source conditions, destination conditions, metadata directive, atomic write. */
export async function copyObject(env: ServerEnv, ctx: KoaContext, dest: Target): Promise<void> {
  checkObjectRequest(ctx, dest.key);
  const src = parseCopySource(header(ctx.headers, 'x-amz-copy-source') ?? '');
  checkObjectRequest(ctx, src.key);
  const directive = header(ctx.headers, 'x-amz-metadata-directive') ?? 'COPY';
  if (directive !== 'COPY' && directive !== 'REPLACE') {
    throw s3Error('InvalidArgument', 'Unknown metadata directive.', {
      ArgumentName: 'x-amz-metadata-directive',
    });
  }
  requireBucket(env, src.bucket);
  requireBucket(env, dest.bucket);
  const release = await env.locks.acquireAll([
    { name: keyLock(src.bucket, src.key), mode: 'read' },
    { name: keyLock(dest.bucket, dest.key), mode: 'write' },
  ]);
  try {
    const source = env.files.head(src.bucket, src.key);
    if (source === null) throw noSuchKey(src.key);
    checkRead(ctx.headers, source, 'x-amz-copy-source-');
    if (src.bucket === dest.bucket && src.key === dest.key && directive === 'COPY') {
      throw s3Error(
        'InvalidRequest',
        'This copy request is illegal because it is trying to copy an object to itself without ' +
          "changing the object's metadata, storage class, website redirect location or " +
          'encryption attributes.',
      );
    }
    if (hasWriteCondition(ctx.headers, env.features)) {
      checkWrite(ctx.headers, dest.key, env.files.head(dest.bucket, dest.key), env.features);
    }
    const metadata =
      directive === 'REPLACE'
        ? pickMetadata(ctx.headers, header(ctx.headers, 'content-encoding'))
        : source.stored;
    // Under the source's read lock: a small source is read whole, a large one streamed from a
    // descriptor opened now (a later rename over the source cannot change what it reads).
    const bytes =
      source.size <= SMALL_OBJECT ? readFileSync(source.path) : createReadStream(source.path);
    const { etag } = await env.files.write(dest.bucket, dest.key, bytes, metadata);
    const copied = env.files.head(dest.bucket, dest.key);
    const modified = (copied?.lastModified ?? new Date()).toISOString();
    sendXml(
      ctx,
      `<CopyObjectResult xmlns="${S3_XMLNS}"><LastModified>${modified}</LastModified>` +
        `<ETag>${escapeXml(etag)}</ETag></CopyObjectResult>`,
    );
  } finally {
    release();
  }
}

/** DeleteObject: 204 whether or not the key existed, unless a conditional delete fails. */
export async function deleteObject(env: ServerEnv, ctx: KoaContext, t: Target): Promise<void> {
  checkObjectRequest(ctx, t.key);
  requireBucket(env, t.bucket);
  const release = await env.locks.acquire(keyLock(t.bucket, t.key), 'write');
  try {
    const ifMatch = header(ctx.headers, 'if-match');
    if (ifMatch !== undefined && env.features.conditionalDelete) {
      checkDelete(ifMatch, t.key, env.files.head(t.bucket, t.key), env.features);
    }
    env.files.remove(t.bucket, t.key);
    ctx.status = 204;
  } finally {
    release();
  }
}

/**
 * DeleteObjects (POST ?delete): up to 1000 keys, each deleted under its lock, each with its own
 * result; an `<ETag>` makes that key's delete conditional. AWS requires a body checksum here.
 */
export async function deleteObjects(
  env: ServerEnv,
  ctx: KoaContext,
  bucket: string,
): Promise<void> {
  requireBucket(env, bucket);
  const hasChecksum = Object.keys(ctx.headers).some(
    (h) => h === 'content-md5' || h.startsWith('x-amz-checksum-'),
  );
  if (!hasChecksum) {
    throw s3Error(
      'InvalidRequest',
      'Missing required header for this request: Content-MD5 OR x-amz-checksum-*',
    );
  }
  const plan = planBody(ctx.headers);
  const raw = await readSmallBody(ctx.req, 2 << 20);
  const verifier = new BodyVerifier(ctx.headers, plan.length, () => new Map<string, string>());
  await new Promise<void>((resolve, reject) => {
    verifier.on('error', reject).on('finish', resolve).resume();
    verifier.end(raw);
  });
  const xml = raw.toString('utf8');
  const objects = xmlElements(xml, 'Object').map((o) => ({
    key: unescapeXml(xmlElements(o, 'Key')[0] ?? ''),
    etag: xmlElements(o, 'ETag').map(unescapeXml)[0],
  }));
  if (objects.length === 0 || objects.length > 1000 || objects.some((o) => o.key === '')) {
    throw s3Error(
      'MalformedXML',
      'The XML you provided was not well-formed or did not validate against our published schema.',
    );
  }
  const quiet = /<Quiet>\s*true\s*<\/Quiet>/i.test(xml);
  const results: string[] = [];
  for (const o of objects) {
    const release = await env.locks.acquire(keyLock(bucket, o.key), 'write');
    try {
      checkObjectRequest(ctx, o.key);
      if (o.etag !== undefined && env.features.conditionalDelete) {
        checkDelete(o.etag, o.key, env.files.head(bucket, o.key), env.features);
      }
      env.files.remove(bucket, o.key);
      if (!quiet) results.push(`<Deleted><Key>${escapeXml(o.key)}</Key></Deleted>`);
    } catch (err) {
      if (!isS3Error(err)) throw err;
      results.push(
        `<Error><Key>${escapeXml(o.key)}</Key><Code>${escapeXml(err.code)}</Code>` +
          `<Message>${escapeXml(err.message)}</Message></Error>`,
      );
    } finally {
      release();
    }
  }
  sendXml(ctx, `<DeleteResult xmlns="${S3_XMLNS}">${results.join('')}</DeleteResult>`);
}
