/**
 * EFFECTS. The S3 store's put in parts (lib/io/stores/s3-store.ts): a multipart upload through
 * `@aws-sdk/lib-storage`, and its retry budget.
 *
 * One put in parts is one call of the store, made of many requests: start, each part, complete
 * (and abort, when it fails). Each of them gets the budget of a call (s3-retry.ts): at most
 * 1 + retries attempts, so a put of N parts makes at most (N + 2) × (1 + retries) requests. A
 * single budget for the whole upload was the alternative, and a worse one: scattered SlowDowns
 * over the 30 parts of a 500 MB pack part would exhaust it, and the task's retry would then
 * upload (or even pack) everything again; per request, a large upload survives what N small
 * puts survive. A store that keeps failing still ends the call within one part's retries: the
 * first request that fails for good (budget spent, or not retryable) fails the call, no further
 * part is sent, the parts in flight stop retrying (their budgets drop to nothing) and the upload
 * is aborted — all before the put returns. Each retry's notice names the object and the part.
 */
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import type { RetryScope, SdkCommand } from './s3-retry.js';

type Sdk = typeof import('@aws-sdk/client-s3');

export interface MultipartUpload {
  sdk: Sdk;
  client: S3Client;
  /** Sends one command under `scope` (the store's one `send`: budget, middleware). */
  send: (command: SdkCommand, scope: RetryScope) => Promise<unknown>;
  /** Retries of one request. */
  retries: number;
  bucket: string;
  /** The object's full key in its bucket. */
  key: string;
  /** `PUT s3://bucket/prefix/key`: what the notices name. */
  what: string;
  body: Readable;
  partSize: number;
  /** Parts in flight at once. */
  queueSize: number;
  metadata?: Record<string, string>;
}

/** Uploads `body` in parts; rejects with the first request's failure (see the file comment). */
export async function uploadInParts(u: MultipartUpload): Promise<{ ETag?: string }> {
  const { Upload } = await import('@aws-sdk/lib-storage');
  const call = new PartsCall(u);
  // lib-storage sends through `client.send`; everything else it reads from the client itself.
  const client = Object.create(u.client) as S3Client;
  Object.defineProperty(client, 'send', { value: (c: SdkCommand) => call.send(c) });
  const upload = new Upload({
    client,
    params: {
      Bucket: u.bucket,
      Key: u.key,
      Body: u.body,
      ...(u.metadata !== undefined ? { Metadata: u.metadata } : {}),
    },
    partSize: u.partSize,
    queueSize: u.queueSize,
    leavePartsOnError: false,
  });
  return await upload.done();
}

/** The requests of one upload: a budget each, and the end of them all at the first failure. */
class PartsCall {
  /** Budgets of the requests in flight. */
  private readonly open = new Set<RetryScope>();
  private failed = false;

  constructor(private readonly u: MultipartUpload) {}

  async send(command: SdkCommand): Promise<unknown> {
    const abort = command instanceof this.u.sdk.AbortMultipartUploadCommand;
    if (this.failed && !abort) {
      // The call has failed: not one more part (lib-storage then aborts the upload).
      throw new Error(`${this.u.what}: stopped after an earlier request failed`);
    }
    const scope: RetryScope = { what: this.name(command), left: this.u.retries };
    this.open.add(scope);
    try {
      return await this.u.send(command, scope);
    } catch (e) {
      if (!abort) this.fail();
      throw e;
    } finally {
      this.open.delete(scope);
    }
  }

  /** The parts in flight retry no more: each ends with its current attempt. */
  private fail(): void {
    this.failed = true;
    for (const s of this.open) s.left = 0;
  }

  private name(command: SdkCommand): string {
    const { sdk, what } = this.u;
    if (command instanceof sdk.UploadPartCommand) {
      return `${what} part ${String(command.input.PartNumber)}`;
    }
    if (command instanceof sdk.CreateMultipartUploadCommand) return `${what} (start in parts)`;
    if (command instanceof sdk.CompleteMultipartUploadCommand) return `${what} (complete)`;
    if (command instanceof sdk.AbortMultipartUploadCommand) return `${what} (abort)`;
    return what;
  }
}
