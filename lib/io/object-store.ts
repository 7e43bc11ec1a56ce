/**
 * The object-store port: the one interface behind which markers, manifests, the work dir, the
 * user's bucket and the content source live. Implementations: memory (reference), fs (rooted at
 * a directory, the embedded default) and, later, S3. All pass test/contract/object-store.ts.
 *
 * Semantics follow S3 so that S3 is "only another implementation":
 * - keys are UTF-8 strings without a leading `/`; listing is in UTF-8 byte order;
 * - a put is atomic: readers see the old object or the new one, never a torn one;
 * - conditional puts: `ifNoneMatch: '*'` (create-only) fails with `precondition-failed` when the
 *   key exists; `ifMatch: etag` (replace-if-etag) fails with `precondition-failed` when the
 *   current etag differs and with `not-found` when the key is absent;
 * - an etag is opaque and changes whenever the bytes change; rewriting identical bytes may keep
 *   it (S3's etag of a single put is their md5), so replace-if-etag users write distinct bytes.
 */
import type { Readable } from 'node:stream';
import type { Failure, Result } from '../errors.js';
import type { ObjectKey } from '../model.js';

/** What a store knows about one object. */
export interface ObjectInfo {
  key: ObjectKey;
  /** Size in bytes. */
  size: number;
  /** Opaque version tag; changes on every write. Used for replace-if-etag. */
  etag: string;
  /** sha256 hex of the bytes, when the store recorded it at put time. */
  sha256?: string;
}

/** The bytes of a put: in memory, a stream, or a local file to copy from. */
export type Body = Uint8Array | string | Readable | { file: string };

export interface PutOptions {
  /** `'*'`: create-only. */
  ifNoneMatch?: '*';
  /** Replace only if the current object has this etag. */
  ifMatch?: string;
}

export interface ListOptions {
  /** Group keys by this delimiter after the prefix (S3 CommonPrefixes). */
  delimiter?: string;
  /** Page size, at most 1000 (the S3 maximum). */
  pageSize?: number;
  /** Opaque token from a previous page's `nextToken`. */
  pageToken?: string;
}

export interface ListPage {
  /** Objects of this page, in UTF-8 byte order of their keys. */
  objects: ObjectInfo[];
  /** With a delimiter: the distinct `prefix + segment + delimiter` groups in this page. */
  prefixes: string[];
  /** Set when there are more results. */
  nextToken?: string;
}

export interface GetOptions {
  /** First byte to return (Range: bytes=start-). */
  start?: number;
}

export interface ObjectStore {
  /** Where the store points, for messages. Never contains credentials. */
  readonly url: string;
  /** Whole object in memory. `not-found` when absent. */
  get(key: ObjectKey): Promise<Result<Buffer>>;
  /** Streaming read. `not-found` when absent. */
  getStream(key: ObjectKey, opts?: GetOptions): Promise<Result<Readable>>;
  head(key: ObjectKey): Promise<Result<ObjectInfo>>;
  /** Atomic write. Returns the new object's info, with the sha256 of what was written. */
  put(key: ObjectKey, body: Body, opts?: PutOptions): Promise<Result<ObjectInfo>>;
  /** One page of keys under `prefix`. */
  list(prefix: string, opts?: ListOptions): Promise<Result<ListPage>>;
  /** Removes a key; deleting an absent key succeeds. */
  delete(key: ObjectKey): Promise<Result<void>>;
  /**
   * A local file path holding the object's bytes, for stores backed by local files (lets DuckDB
   * read a parquet in place). Undefined for remote stores.
   */
  localPath?(key: ObjectKey): string | undefined;
}

/** Every object under a prefix, page by page (one list request per page). */
export async function* listAll(
  store: ObjectStore,
  prefix: string,
  opts: { pageSize?: number } = {},
): AsyncGenerator<ObjectInfo, void, undefined> {
  let pageToken: string | undefined;
  do {
    const page = await store.list(prefix, {
      ...(opts.pageSize !== undefined ? { pageSize: opts.pageSize } : {}),
      ...(pageToken !== undefined ? { pageToken } : {}),
    });
    if (!page.ok) throw new StoreError(page.error);
    yield* page.value.objects;
    pageToken = page.value.nextToken;
  } while (pageToken !== undefined);
}

/** Thrown only where a store failure cannot be handled locally; caught at the task boundary. */
export class StoreError extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
    this.name = 'StoreError';
  }
}
