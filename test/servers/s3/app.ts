/**
 * The harness middleware, spliced into s3rver just before its router (after its vhost rewrite):
 *
 *     request -> [s3rver: XML encoder, mount path, vhost]   (its logger is dropped, see server.ts)
 *             -> harness: admin API | count | inject fault | answer the fixed operations
 *             -> [s3rver router: everything else (buckets, CreateMultipartUpload, tagging, ...)]
 *
 * Faults are chosen before any handler runs, so a faulted write is never applied.
 */
import { ADMIN_PREFIX, parseFaultConfig, parseFeatures } from './protocol.js';
import type { ServerEnv } from './conditions.js';
import type { FaultInjector, Stats } from './faults.js';
import { header, queryParam, readSmallBody, sleep } from './http.js';
import { listObjects } from './listing.js';
import { abortMultipartUpload, completeMultipartUpload, uploadPart } from './multipart.js';
import {
  copyObject,
  deleteObject,
  deleteObjects,
  getObject,
  putObject,
  requireBucket,
} from './objects.js';
import { classify } from './ops.js';
import type { S3Request } from './ops.js';
import type { KoaContext, Middleware, Next } from './s3rver.js';
import { s3Error } from './s3rver.js';

/** Errors the harness raised on purpose (injected faults): not worth a log line. */
export const injectedErrors = new WeakSet<object>();

/**
 * `stock`: only the admin API and the counting, every request then goes to s3rver as it is (no
 * fixes, no faults), to show which tests stock s3rver fails.
 */
export function harnessMiddleware(
  env: ServerEnv,
  faults: FaultInjector,
  stats: Stats,
  stock = false,
): Middleware {
  return async (ctx, next) => {
    if (ctx.path.startsWith(ADMIN_PREFIX)) {
      await admin(ctx, env, faults, stats);
      return;
    }
    const req = classify(ctx.method, ctx.path, ctx.query, ctx.headers);
    stats.request(req, header(ctx.headers, 'range'));
    if (stock) {
      await next();
      return;
    }
    const listPrefix = req.op.startsWith('ListObjects')
      ? (queryParam(ctx, 'prefix') ?? '')
      : undefined;
    const part = req.op === 'UploadPart' ? Number(queryParam(ctx, 'partNumber')) : undefined;
    const kind = faults.choose(ctx.method, req, listPrefix, part);
    let cutBody = false;
    switch (kind) {
      case null:
        break;
      case '500':
        stats.fault(kind);
        throw injected(
          s3Error('InternalError', 'We encountered an internal error. Please try again.'),
        );
      case '503':
        stats.fault(kind);
        throw injected(s3Error('SlowDown', 'Please reduce your request rate.'));
      case 'reset':
        stats.fault(kind);
        // No response, the body unread: the client sees ECONNRESET, nothing is applied.
        ctx.respond = false;
        ctx.req.socket.resetAndDestroy();
        return;
      case 'latency':
        stats.fault(kind);
        await sleep(faults.current?.latencyMs ?? 200);
        break;
      case 'reset-mid-body':
        cutBody = true; // counted below, once the GET turns out to have a body to cut
        break;
      default:
        throw new Error(`Internal error: unknown fault kind ${String(kind satisfies never)}`);
    }
    if (await dispatch(env, ctx, req, cutBody, next)) stats.fault('reset-mid-body');
  };
}

function injected<E extends Error>(err: E): E {
  injectedErrors.add(err);
  return err;
}

/** Answers the operations the harness fixes; passes the rest to s3rver. True: body was cut. */
async function dispatch(
  env: ServerEnv,
  ctx: KoaContext,
  req: S3Request,
  cutBody: boolean,
  next: Next,
): Promise<boolean> {
  const { bucket, key } = req;
  if (bucket !== undefined && key !== undefined) {
    const t = { bucket, key };
    switch (req.op) {
      case 'GetObject':
      case 'HeadObject':
        return getObject(env, ctx, t, cutBody);
      case 'PutObject':
        await putObject(env, ctx, t);
        return false;
      case 'CopyObject':
        await copyObject(env, ctx, t);
        return false;
      case 'DeleteObject':
        await deleteObject(env, ctx, t);
        return false;
      case 'UploadPart':
        await uploadPart(env, ctx, t);
        return false;
      case 'CompleteMultipartUpload':
        await completeMultipartUpload(env, ctx, t);
        return false;
      case 'AbortMultipartUpload':
        await abortMultipartUpload(env, ctx, t);
        return false;
    }
  } else if (bucket !== undefined) {
    switch (req.op) {
      case 'ListObjectsV2':
        await listObjects(env, ctx, bucket, 2);
        return false;
      case 'ListObjects':
        await listObjects(env, ctx, bucket, 1);
        return false;
      case 'DeleteObjects':
        await deleteObjects(env, ctx, bucket);
        return false;
      case 'HeadBucket':
        // s3rver routes HEAD to its GET (a full listing, thrown away): answer from a stat.
        requireBucket(env, bucket);
        ctx.set('x-amz-bucket-region', 'us-east-1');
        ctx.status = 200;
        return false;
    }
  }
  await next();
  return false;
}

/**
 * The admin API (JSON):
 *   GET  stats | POST stats/reset
 *   GET  faults | PUT faults (FaultConfig or null)
 *   GET  features | PUT features (any subset; answers the whole set)
 */
async function admin(ctx: KoaContext, env: ServerEnv, faults: FaultInjector, stats: Stats) {
  const json = (status: number, value: unknown) => {
    ctx.status = status;
    ctx.type = 'application/json';
    ctx.body = JSON.stringify(value);
  };
  const body = async (): Promise<unknown> =>
    JSON.parse((await readSmallBody(ctx.req, 1 << 16)).toString('utf8')) as unknown;
  try {
    switch (`${ctx.method} ${ctx.path.slice(ADMIN_PREFIX.length)}`) {
      case 'GET stats':
        json(200, stats.snapshot());
        return;
      case 'POST stats/reset':
        stats.reset();
        json(200, stats.snapshot());
        return;
      case 'GET faults':
        json(200, faults.current);
        return;
      case 'PUT faults':
        faults.set(parseFaultConfig(await body()));
        json(200, faults.current);
        return;
      case 'GET features':
        json(200, env.features);
        return;
      case 'PUT features':
        Object.assign(env.features, parseFeatures(await body()));
        json(200, env.features);
        return;
      default:
        json(404, { error: `no admin route ${ctx.method} ${ctx.path}` });
    }
  } catch (err) {
    json(400, { error: err instanceof Error ? err.message : String(err) });
  }
}
