/**
 * The object-store port on S3 (AWS, MinIO, R2, Ceph, loopback test servers) through
 * `@aws-sdk/client-s3`, rooted at `s3://bucket/prefix`. Passes test/contract/object-store.ts.
 *
 * - Credentials: the SDK's default chain (env, profile, SSO, instance role); unsigned requests
 *   for public buckets. Nothing secret is ever put in a message.
 * - Retries: bounded, jittered, counted (s3-retry.ts); a GET whose body breaks mid-stream is
 *   retried as a whole here, because the SDK only retries until the headers arrive.
 * - Puts: one PutObject up to `multipartThreshold` (the body in memory, so a retry can resend
 *   it), in parts above (s3-multipart.ts: each request of the upload gets a call's budget, and
 *   the first that fails for good ends the call). The sha256 of the bytes travels as
 *   `x-amz-meta-sha256`, so `head` can report it.
 * - Conditional puts map to If-None-Match `*` / If-Match; a 412 that follows a retried attempt
 *   is checked against the stored sha256, since the first attempt may have landed. Conditional
 *   deletes map to DELETE If-Match (AWS since 2025-09; Ceph radosgw ignores it).
 * - `modified` is `LastModified` floored to whole seconds: HEAD sends it as an HTTP date (1 s
 *   resolution) while listings may carry milliseconds, and lease ages compare the two.
 * - Checksums are computed only when an operation requires them: stores such as Ceph reject
 *   the aws-chunked framing the SDK otherwise uses for streams, and stackflow verifies sha256
 *   itself.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type {
  PutObjectCommandInput,
  S3Client,
  S3ClientConfig,
  ServiceInputTypes,
  ServiceOutputTypes,
} from '@aws-sdk/client-s3';
import type { Command, MetadataBearer } from '@smithy/types';
import type { Failure, Result } from '../../errors.js';
import { err, errnoFailure, ok } from '../../errors.js';
import type { ObjectKey } from '../../model.js';
import { objectKey } from '../../model.js';
import type { RetryNotice } from '../../util/retry.js';
import { backoffMs } from '../../util/retry.js';
import type {
  Body,
  DeleteOptions,
  GetOptions,
  ListOptions,
  ListPage,
  ObjectInfo,
  ObjectStore,
  PutOptions,
} from './object-store.js';
import type { S3Location } from './s3-location.js';
import type { ThreadStoreSpec } from './thread-store.js';
import type { RetryScope } from './s3-retry.js';
import type { SdkCommand } from './s3-retry.js';
import { BoundedRetryStrategy, describeSdkError, sendInScope } from './s3-retry.js';
import { uploadInParts } from './s3-multipart.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkPutOptions, checkStart, invalid, MAX_PAGE_SIZE } from './store-common.js';

export interface S3StoreOptions {
  /** Requests in flight at most (HTTP sockets of this store's client). Default 64. */
  maxSockets?: number;
  /**
   * Retries per call for throttling, timeouts, resets, 5xx and (GET) bodies cut mid-stream, all
   * layers together: a call makes at most 1 + retries requests (a put in parts: each request
   * of it, see s3-multipart.ts). Default 8.
   */
  retries?: number;
  /** First backoff ceiling in ms. Default 100. */
  baseMs?: number;
  /** Called for every retry (its `what` names the operation, the store's URL and the key). */
  onRetry?: (n: RetryNotice) => void;
  /** Bodies larger than this are uploaded in parts. Default 32 MiB. */
  multipartThreshold?: number;
  /** Part size of multipart uploads. Default 16 MiB. */
  partSize?: number;
  /** A request whose socket is idle this long fails (and is retried). Default 120 s. */
  idleTimeoutMs?: number;
}

const META_SHA256 = 'sha256';

/** Largest backoff ceiling between two attempts of one call. */
const MAX_BACKOFF_MS = 20_000;

type Sdk = typeof import('@aws-sdk/client-s3');

/** The SDK, the client and its retry strategy (where a call opens its budget). */
interface Connection {
  sdk: Sdk;
  client: S3Client;
  strategy: BoundedRetryStrategy;
}

/**
 * The SDK client configuration of a store at `loc`: keep-alive sockets (`maxSockets`), bounded
 * counted retries, checksums only when an operation requires them, and for an unsigned bucket
 * no signature and no credential lookup. One function, so that whatever measures the SDK
 * (bench/lib/scale-bare.ts) builds the very client stackflow uses. `onRetry` gets the notices
 * as they are (S3Store adds its url).
 */
export async function s3ClientConfig(
  loc: S3Location,
  opts: S3StoreOptions = {},
): Promise<S3ClientConfig> {
  const { NodeHttpHandler } = await import('@smithy/node-http-handler');
  const agent = { keepAlive: true, maxSockets: opts.maxSockets ?? 64 };
  return {
    region: loc.region,
    ...(loc.endpoint !== undefined ? { endpoint: loc.endpoint } : {}),
    forcePathStyle: loc.pathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    retryStrategy: new BoundedRetryStrategy({
      retries: opts.retries ?? 8,
      baseMs: opts.baseMs ?? 100,
      maxMs: MAX_BACKOFF_MS,
      ...(opts.onRetry ? { onRetry: opts.onRetry } : {}),
    }),
    requestHandler: new NodeHttpHandler({
      httpAgent: new HttpAgent(agent),
      httpsAgent: new HttpsAgent(agent),
      connectionTimeout: 10_000,
      requestTimeout: opts.idleTimeoutMs ?? 120_000,
    }),
    // Anonymous: no signature, and no credential lookup (which would fail without any).
    ...(loc.unsigned
      ? {
          signer: { sign: (request) => Promise.resolve(request) },
          credentials: { accessKeyId: '', secretAccessKey: '' },
        }
      : {}),
  };
}

export class S3Store implements ObjectStore {
  readonly url: string;
  /** The SDK and the client, loaded and built on first use (see `connect`). */
  private connection: Promise<Connection> | undefined;
  private readonly clientConfig: () => Promise<S3ClientConfig>;
  private readonly bucket: string;
  private readonly root: string;
  private readonly threshold: number;
  private readonly partSize: number;
  private readonly retries: number;
  private readonly baseMs: number;
  private readonly onRetry: ((n: RetryNotice) => void) | undefined;
  private readonly spec: ThreadStoreSpec;

  constructor(loc: S3Location, opts: S3StoreOptions = {}) {
    const { onRetry: _, ...plain } = opts;
    this.spec = { kind: 's3', location: { ...loc }, options: plain };
    this.bucket = loc.bucket;
    this.root = loc.prefix;
    this.url = `s3://${loc.bucket}/${loc.prefix}`.replace(/\/$/, '');
    this.threshold = opts.multipartThreshold ?? 32 << 20;
    this.partSize = Math.max(5 << 20, opts.partSize ?? 16 << 20);
    this.retries = opts.retries ?? 8;
    this.baseMs = opts.baseMs ?? 100;
    this.onRetry = opts.onRetry;
    this.clientConfig = () => s3ClientConfig(loc, { ...opts, retries: this.retries });
  }

  /**
   * The SDK is loaded on first use: it costs a fifth of a second at every CLI start, and a run
   * on local stores never needs it.
   */
  private connect(): Promise<Connection> {
    this.connection ??= (async () => {
      const sdk = await import('@aws-sdk/client-s3');
      const config = await this.clientConfig();
      const strategy = config.retryStrategy;
      if (!(strategy instanceof BoundedRetryStrategy)) {
        throw new Error('Internal error: an S3 store without its bounded retry strategy');
      }
      return { sdk, client: new sdk.S3Client(config), strategy };
    })();
    return this.connection;
  }

  /**
   * Sends one command: the one place that connects, and that opens the call's retry budget
   * (`retryScope`, shared with the SDK's strategy) under a name for its notices.
   */
  private async send<I extends object, O extends MetadataBearer>(
    scope: RetryScope | string,
    make: (sdk: Sdk) => Command<ServiceInputTypes, I, ServiceOutputTypes, O, unknown>,
  ): Promise<O> {
    const connection = await this.connect();
    const command = make(connection.sdk);
    // The SDK types a command by its concrete input and output; `O` is this command's output.
    return (await sendInScope(
      connection.client,
      connection.strategy,
      command as unknown as SdkCommand,
      typeof scope === 'string' ? { what: scope, left: this.retries } : scope,
    )) as O;
  }

  /** The same store, for a worker thread to open (thread-store.ts); plain data, no secret. */
  threadSpec(): ThreadStoreSpec {
    return structuredClone(this.spec);
  }

  /** `GET s3://bucket/prefix/key`: what a notice or message names. */
  private what(op: string, key: string): string {
    return `${op} ${this.url}/${key}`;
  }

  /** Closes the client's sockets. */
  close(): void {
    void this.connection?.then(({ client }) => {
      client.destroy();
    });
  }

  async get(key: ObjectKey): Promise<Result<Buffer>> {
    // The SDK retries up to the response headers; a body cut mid-stream is retried here, from
    // the same budget (one layer of retries: at most 1 + retries requests in all).
    const scope: RetryScope = { what: this.what('GET', key), left: this.retries };
    for (let attempt = 0; ; attempt++) {
      let out;
      try {
        out = await this.send(
          scope,
          (sdk) => new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.full(key) }),
        );
      } catch (e) {
        return err(this.failure(e, 'get', key));
      }
      if (out.Body === undefined) return ok(Buffer.alloc(0));
      try {
        // A view of the SDK's bytes, not a copy (pack GETs a blob per row).
        const bytes = await out.Body.transformToByteArray();
        return ok(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      } catch (e) {
        const f = this.failure(e, 'get', key);
        if (f.reason !== 'transient' || scope.left <= 0) return err(f);
        scope.left--;
        const waitMs = backoffMs(attempt, this.baseMs, MAX_BACKOFF_MS);
        this.onRetry?.({ what: scope.what, attempt: attempt + 1, reason: f.message, waitMs });
        await sleep(waitMs);
      }
    }
  }

  async getStream(key: ObjectKey, opts?: GetOptions): Promise<Result<Readable>> {
    const start = checkStart(opts);
    if (!start.ok) return start;
    try {
      const out = await this.send(
        this.what('GET', key),
        (sdk) =>
          new sdk.GetObjectCommand({
            Bucket: this.bucket,
            Key: this.full(key),
            ...(start.value > 0 ? { Range: `bytes=${String(start.value)}-` } : {}),
          }),
      );
      return ok(out.Body instanceof Readable ? out.Body : Readable.from([]));
    } catch (e) {
      if (status(e) === 416) {
        // A start at or past the end: no bytes, if the object exists.
        const h = await this.head(key);
        return h.ok ? ok(Readable.from([])) : h;
      }
      return err(this.failure(e, 'getStream', key));
    }
  }

  async head(key: ObjectKey): Promise<Result<ObjectInfo>> {
    try {
      const out = await this.send(
        this.what('HEAD', key),
        (sdk) =>
          new sdk.HeadObjectCommand({
            Bucket: this.bucket,
            Key: this.full(key),
          }),
      );
      const sha256 = out.Metadata?.[META_SHA256];
      return ok({
        key,
        size: out.ContentLength ?? 0,
        etag: out.ETag ?? '',
        ...(sha256 !== undefined ? { sha256 } : {}),
        ...modifiedOf(out.LastModified),
      });
    } catch (e) {
      return err(this.failure(e, 'head', key));
    }
  }

  async put(key: ObjectKey, body: Body, opts: PutOptions = {}): Promise<Result<ObjectInfo>> {
    const bad = checkPutOptions(key, opts);
    if (bad) return err(bad);
    const small = await this.bufferIfSmall(key, body);
    if (!small.ok) return small;
    if (small.value.kind === 'large') {
      if (opts.ifNoneMatch !== undefined || opts.ifMatch !== undefined) {
        return err(
          invalid(`put ${key}: conditional puts are for small objects (≤ ${mib(this.threshold)})`),
        );
      }
      return this.putLarge(key, small.value.stream, small.value.sha256);
    }
    return this.putSmall(key, small.value.bytes, opts);
  }

  async list(prefix: string, opts: ListOptions = {}): Promise<Result<ListPage>> {
    const size = opts.pageSize ?? MAX_PAGE_SIZE;
    if (!Number.isInteger(size) || size < 1) {
      return err(invalid(`list: pageSize must be a positive integer, got ${String(size)}`));
    }
    let continuation: string | undefined;
    if (opts.pageToken !== undefined) {
      const text = Buffer.from(opts.pageToken, 'base64url').toString('utf8');
      if (!text.startsWith('s') || encodeToken(text.slice(1)) !== opts.pageToken) {
        return err(invalid(`list: malformed pageToken ${JSON.stringify(opts.pageToken)}`));
      }
      continuation = text.slice(1);
    }
    try {
      const out = await this.send(
        this.what('LIST', prefix),
        (sdk) =>
          new sdk.ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.root + prefix,
            MaxKeys: Math.min(size, MAX_PAGE_SIZE),
            ...(opts.delimiter ? { Delimiter: opts.delimiter } : {}),
            ...(continuation !== undefined ? { ContinuationToken: continuation } : {}),
          }),
      );
      const objects: ObjectInfo[] = (out.Contents ?? []).flatMap((o) =>
        o.Key === undefined
          ? []
          : [
              {
                key: objectKey(o.Key.slice(this.root.length)),
                size: o.Size ?? 0,
                etag: o.ETag ?? '',
                ...modifiedOf(o.LastModified),
              },
            ],
      );
      const prefixes = (out.CommonPrefixes ?? []).flatMap((p) =>
        p.Prefix === undefined ? [] : [p.Prefix.slice(this.root.length)],
      );
      const next = out.IsTruncated === true ? out.NextContinuationToken : undefined;
      return ok({
        objects,
        prefixes,
        ...(next !== undefined ? { nextToken: encodeToken(next) } : {}),
      });
    } catch (e) {
      return err(this.failure(e, 'list', prefix));
    }
  }

  async delete(key: ObjectKey, opts: DeleteOptions = {}): Promise<Result<void>> {
    const { ifMatch } = opts;
    try {
      await this.send(
        this.what('DELETE', key),
        (sdk) =>
          new sdk.DeleteObjectCommand({
            Bucket: this.bucket,
            Key: this.full(key),
            ...(ifMatch !== undefined ? { IfMatch: ifMatch } : {}),
          }),
      );
      return ok(undefined);
    } catch (e) {
      const f = this.failure(e, 'delete', key);
      if (f.reason !== 'not-found') return err(f);
      // A plain delete of an absent key succeeds. A conditional one is `not-found`, unless an
      // earlier attempt of this same request may have deleted it before its answer was lost.
      return ifMatch === undefined || attempts(e) > 1 ? ok(undefined) : err(f);
    }
  }

  private full(key: string): string {
    return this.root + key;
  }

  private async putSmall(
    key: ObjectKey,
    bytes: Buffer,
    opts: PutOptions,
  ): Promise<Result<ObjectInfo>> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const input: PutObjectCommandInput = {
      Bucket: this.bucket,
      Key: this.full(key),
      Body: bytes,
      ContentLength: bytes.length,
      Metadata: { [META_SHA256]: sha256 },
      ...(opts.ifNoneMatch !== undefined ? { IfNoneMatch: opts.ifNoneMatch } : {}),
      ...(opts.ifMatch !== undefined ? { IfMatch: opts.ifMatch } : {}),
    };
    try {
      const out = await this.send(this.what('PUT', key), (sdk) => new sdk.PutObjectCommand(input));
      return ok({ key, size: bytes.length, etag: out.ETag ?? '', sha256 });
    } catch (e) {
      const f = this.failure(e, 'put', key);
      if (f.reason === 'precondition-failed' && attempts(e) > 1) {
        // An earlier attempt may have landed before its response was lost: if the object now
        // holds exactly our bytes, that write was ours.
        const now = await this.head(key);
        if (now.ok && now.value.sha256 === sha256 && now.value.size === bytes.length) {
          return ok({ ...now.value, sha256 });
        }
      }
      return err(f);
    }
  }

  /**
   * A put in parts (s3-multipart.ts: a budget per request, stopped at the first that fails for
   * good); `knownSha256` (of a local file) is stored as metadata for `head`.
   */
  private async putLarge(
    key: ObjectKey,
    source: Readable,
    knownSha256: string | undefined,
  ): Promise<Result<ObjectInfo>> {
    const hash = createHash('sha256');
    let size = 0;
    const body = new PassThrough({ highWaterMark: 1 << 20 });
    const feeding = pipeline(
      source,
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const c of chunks) {
          hash.update(c);
          size += c.length;
          yield c;
        }
      },
      body,
    );
    const connection = await this.connect();
    const upload = uploadInParts({
      sdk: connection.sdk,
      client: connection.client,
      send: (command, scope) => sendInScope(connection.client, connection.strategy, command, scope),
      retries: this.retries,
      bucket: this.bucket,
      key: this.full(key),
      what: this.what('PUT', key),
      body,
      partSize: this.partSize,
      queueSize: 4,
      ...(knownSha256 !== undefined ? { metadata: { [META_SHA256]: knownSha256 } } : {}),
    });
    try {
      const [out] = await Promise.all([upload, feeding]);
      const sha256 = hash.digest('hex');
      if (knownSha256 !== undefined && knownSha256 !== sha256) {
        // The file changed while it was uploaded: what is stored matches neither. The delete's
        // Result is dropped on purpose: the put fails either way, and its retry overwrites it.
        await this.delete(key);
        return err({
          reason: 'transient',
          message: `put ${this.url}/${key}: the source file changed during the upload`,
        });
      }
      return ok({ key, size, etag: out.ETag ?? '', sha256 });
    } catch (e) {
      body.destroy();
      return err(this.failure(e, 'put', key));
    }
  }

  /** The body in memory when it fits under the multipart threshold, else a stream of it. */
  private async bufferIfSmall(
    key: ObjectKey,
    body: Body,
  ): Promise<
    Result<{ kind: 'small'; bytes: Buffer } | { kind: 'large'; stream: Readable; sha256?: string }>
  > {
    if (typeof body === 'string') return ok({ kind: 'small', bytes: Buffer.from(body, 'utf8') });
    if (body instanceof Uint8Array) {
      return ok({ kind: 'small', bytes: Buffer.from(body.buffer, body.byteOffset, body.length) });
    }
    if (!(body instanceof Readable)) {
      try {
        const st = await stat(body.file);
        if (st.size > this.threshold) {
          // Hashed first (a local read) so the sha256 can travel as metadata of the upload.
          const h = createHash('sha256');
          for await (const c of createReadStream(body.file)) h.update(c as Buffer);
          return ok({
            kind: 'large',
            stream: createReadStream(body.file),
            sha256: h.digest('hex'),
          });
        }
        const chunks: Buffer[] = [];
        for await (const c of createReadStream(body.file)) chunks.push(c as Buffer);
        return ok({ kind: 'small', bytes: Buffer.concat(chunks) });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          return err({
            reason: 'not-found',
            key: body.file,
            message: `put ${key}: ${body.file} does not exist`,
          });
        }
        throw e;
      }
    }
    // A stream: read up to the threshold; if it ends first, it is small.
    const chunks: Buffer[] = [];
    let size = 0;
    const it = (body as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
    for (;;) {
      const n = await it.next();
      if (n.done === true) return ok({ kind: 'small', bytes: Buffer.concat(chunks) });
      const c = typeof n.value === 'string' ? Buffer.from(n.value, 'utf8') : Buffer.from(n.value);
      chunks.push(c);
      size += c.length;
      if (size > this.threshold) {
        const rest = (async function* () {
          yield* chunks;
          for (;;) {
            const m = await it.next();
            if (m.done === true) return;
            yield typeof m.value === 'string' ? Buffer.from(m.value, 'utf8') : Buffer.from(m.value);
          }
        })();
        return ok({ kind: 'large', stream: Readable.from(rest) });
      }
    }
  }

  /** Maps an SDK error to the port's failures. Never includes headers or credentials. */
  private failure(e: unknown, op: string, key: string): Failure {
    const where = `${op} ${this.url}/${key}`;
    const name = errorName(e);
    const code = status(e);
    const what = describeSdkError(e);
    if (name === 'NoSuchBucket') {
      return invalid(`${where}: bucket ${this.bucket} does not exist`);
    }
    if (code === 404 || name === 'NoSuchKey' || name === 'NotFound') {
      return { reason: 'not-found', key, message: `${where}: not found` };
    }
    if (code === 412 || name === 'PreconditionFailed') {
      return { reason: 'precondition-failed', key, message: `${where}: precondition failed` };
    }
    if (code === 401 || code === 403) {
      return {
        reason: 'permission-denied',
        message: `${where}: access denied (${what}); check the AWS credentials in the environment or profile, or set unsigned: true under s3.${this.bucket} for a public bucket`,
      };
    }
    if (code === 409 && name === 'ConditionalRequestConflict') {
      return { reason: 'transient', message: `${where}: conflicting concurrent write (${what})` };
    }
    if (code !== undefined && code >= 400 && code < 500 && code !== 408 && code !== 429) {
      return invalid(`${where}: ${what}: ${messageOf(e)}`);
    }
    const net = errnoFailure(e, where);
    if (net?.reason === 'network-unreachable') {
      return { reason: net.reason, message: `${net.message}; check s3.${this.bucket}.endpoint` };
    }
    return {
      reason: 'transient',
      message: `${where}: ${what}`,
      ...(isThrottle(name, code) ? { throttled: true } : {}),
    };
  }
}

/** S3's (and S3-compatible stores') ways of saying "too many requests". */
const THROTTLE_NAMES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequests',
  'TooManyRequestsException',
  'RequestThrottled',
]);
const isThrottle = (name: string, code: number | undefined): boolean =>
  code === 429 || THROTTLE_NAMES.has(name);

const mib = (n: number) => `${String(Math.round(n / (1 << 20)))} MiB`;

/** `LastModified` as `ObjectInfo.modified`: whole seconds, so HEAD and listings agree. */
function modifiedOf(d: Date | undefined): { modified?: number } {
  if (d === undefined) return {};
  const ms = d.getTime();
  return Number.isFinite(ms) ? { modified: Math.floor(ms / 1000) * 1000 } : {};
}

function encodeToken(s3Token: string): string {
  return Buffer.from(`s${s3Token}`, 'utf8').toString('base64url');
}

function status(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

function attempts(e: unknown): number {
  return (e as { $metadata?: { attempts?: number } } | null)?.$metadata?.attempts ?? 1;
}

function errorName(e: unknown): string {
  return (e as { name?: string } | null)?.name ?? '';
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message.slice(0, 200) : String(e);
}
