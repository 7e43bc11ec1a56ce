/**
 * The object-store port: the one interface behind which markers, manifests, the work dir, the
 * user's bucket and the content source live. Implementations: memory (reference), fs (rooted at
 * a directory, the embedded default) and S3. All pass test/contract/object-store.ts.
 *
 * Semantics follow S3 so that S3 is "only another implementation":
 * - keys are UTF-8 strings without a leading `/`; listing is in UTF-8 byte order;
 * - a put is atomic: readers see the old object or the new one, never a torn one;
 * - conditional puts: `ifNoneMatch: '*'` (create-only) fails with `precondition-failed` when the
 *   key exists; `ifMatch: etag` (replace-if-etag) fails with `precondition-failed` when the
 *   current etag differs and with `not-found` when the key is absent;
 * - an etag is opaque and changes whenever the bytes change; rewriting identical bytes may keep
 *   it (S3's etag of a single put is their md5), so replace-if-etag users write distinct bytes;
 * - conditional deletes: `delete(key, {ifMatch: etag})` fails with `precondition-failed` when the
 *   current etag differs and with `not-found` when the key is absent; a plain delete of an absent
 *   key succeeds;
 * - `modified` is the last-modified time by the STORE's clock (see `ObjectInfo.modified`), so that
 *   several hosts can judge an object's age against one clock, `storeNow()`, and never compare
 *   their own clocks with each other.
 *
 * Not every store enforces every condition: Ceph radosgw ignores If-Match on DELETE, and some
 * S3-compatible servers ignore all conditions. A store that ignores one still answers "ok", so
 * what a store really enforces is measured by running the operations (lib/io/stores/probe.ts,
 * `stackflow doctor`), never assumed from its URL.
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import type { ThreadStoreSpec } from './thread-store.js';
import type { Readable } from 'node:stream';
import { err, FailureError, ok } from '../../errors.js';
import type { Failure, Result } from '../../errors.js';
import { objectKey } from '../../model.js';
import type { ObjectKey } from '../../model.js';

/** What a store knows about one object. */
export interface ObjectInfo {
  key: ObjectKey;
  /** Size in bytes. */
  size: number;
  /** Opaque version tag; changes on every write. Used for replace-if-etag. */
  etag: string;
  /** sha256 hex of the bytes, when the store recorded it at put time. */
  sha256?: string;
  /**
   * Last-modified time in ms since the epoch, by the STORE's clock (not the writer's): what
   * lease staleness is judged by, against `storeNow()`. Set by `head` and `list`, and by `put`
   * when the store knows it without another request (S3's PutObject does not return it, so
   * there it is left undefined rather than guessed from the local clock).
   * - S3: `LastModified`, whole seconds (HEAD's HTTP date has 1 s resolution; listings are
   *   floored to match, so values from `head` and `list` compare);
   * - fs: the file's mtime (one local filesystem, so one clock);
   * - memory: `Date.now()` at the write.
   */
  modified?: number;
}

/** The bytes of a put: in memory, a stream, or a local file to copy from. */
export type Body = Uint8Array | string | Readable | { file: string };

export interface PutOptions {
  /** `'*'`: create-only. */
  ifNoneMatch?: '*';
  /** Replace only if the current object has this etag. */
  ifMatch?: string;
}

export interface DeleteOptions {
  /**
   * Delete only if the current object has this etag: `precondition-failed` when it differs,
   * `not-found` when the key is absent. Stores that ignore the condition (Ceph radosgw) delete
   * anyway; `probeStore` finds out which kind a store is.
   */
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
  /**
   * Every key under `prefix` in `list` order, and nothing else about them, for stores where
   * that is much cheaper than `list` (the filesystem: no stat per object). Optional: use
   * `forEachKey`, which falls back to `list`. Throws StoreError (forEachKey returns it).
   */
  listKeys?(prefix: string): AsyncIterable<string>;
  /**
   * Removes a key; deleting an absent key succeeds. With `ifMatch`, a conditional delete (see
   * `DeleteOptions`).
   */
  delete(key: ObjectKey, opts?: DeleteOptions): Promise<Result<void>>;
  /**
   * A local file path holding the object's bytes, for stores backed by local files (lets DuckDB
   * read a parquet in place). Undefined for remote stores.
   */
  localPath?(key: ObjectKey): string | undefined;
  /**
   * Where the object's bytes usually are as a plain local file, without touching the disk: a
   * fast-path hint for a reader that may block (a worker thread). Not a guarantee: a reader that
   * cannot read the path as a regular file must use `get`. Only stores backed by local files
   * have it.
   */
  filePathHint?(key: ObjectKey): string | undefined;
  /**
   * How a worker thread opens this very store (`openThreadStore`): plain data, never a secret
   * (credentials come from the SDK's chain in the thread too). Only stores that a thread can
   * open again have it (S3); a reader without it uses this store.
   */
  threadSpec?(): ThreadStoreSpec;
}

/**
 * Every object under a prefix to `visit`, page by page (one list request per page), without
 * holding them all; a page that fails ends it with that failure.
 */
export async function forEachListed(
  store: ObjectStore,
  prefix: string,
  visit: (o: ObjectInfo) => void,
  opts: { pageSize?: number } = {},
): Promise<Result<void>> {
  let pageToken: string | undefined;
  do {
    const page = await store.list(prefix, {
      ...(opts.pageSize !== undefined ? { pageSize: opts.pageSize } : {}),
      ...(pageToken !== undefined ? { pageToken } : {}),
    });
    if (!page.ok) return page;
    for (const o of page.value.objects) visit(o);
    pageToken = page.value.nextToken;
  } while (pageToken !== undefined);
  return ok(undefined);
}

/** Every object under a prefix (all pages), or the failure of the page that failed. */
export async function listAll(
  store: ObjectStore,
  prefix: string,
  opts: { pageSize?: number } = {},
): Promise<Result<ObjectInfo[]>> {
  const out: ObjectInfo[] = [];
  const r = await forEachListed(store, prefix, (o) => out.push(o), opts);
  return r.ok ? ok(out) : r;
}

/** Every key under a prefix to `visit`: `listKeys` where the store has it, else `list`'s keys. */
export async function forEachKey(
  store: ObjectStore,
  prefix: string,
  visit: (key: string) => void,
): Promise<Result<void>> {
  if (store.listKeys === undefined) {
    return forEachListed(store, prefix, (o) => {
      visit(o.key);
    });
  }
  try {
    for await (const key of store.listKeys(prefix)) visit(key);
    return ok(undefined);
  } catch (e) {
    if (e instanceof StoreError) return err(e.failure);
    throw e;
  }
}

/**
 * Every key under `prefix` to `visit`, with its size where `sized(key)` asks for it: from the
 * listing itself where it carries sizes (S3), else (stores with a cheaper keys-only listing, the
 * filesystem) from a local stat of just those keys. A key whose file went away meanwhile has
 * no size.
 */
export async function forEachKeySized(
  store: ObjectStore,
  prefix: string,
  sized: (key: string) => boolean,
  visit: (o: { key: string; size?: number }) => void,
): Promise<Result<void>> {
  if (store.listKeys === undefined || store.localPath === undefined) {
    return forEachListed(store, prefix, (o) => {
      visit({ key: o.key, size: o.size });
    });
  }
  return forEachKey(store, prefix, (key) => {
    const path = sized(key) ? store.localPath?.(key as ObjectKey) : undefined;
    const size = path === undefined ? undefined : statSync(path, { throwIfNoEntry: false })?.size;
    visit(size === undefined ? { key } : { key, size });
  });
}

/** One reading of a store's clock, bracketed by the local clock. */
export interface StoreClockReading {
  /** The store's time (ms since the epoch) when it took the write; whole seconds on S3. */
  storeMs: number;
  /** The local time halfway through that write's request (the best local estimate of it). */
  localMs: number;
  /** How long the write took: the local estimate is off by at most half of this. */
  roundTripMs: number;
}

/** Where `storeNow` writes its throwaway objects, relative to the store's root. */
export const CLOCK_PREFIX = '_clock/';

/**
 * Reads the store's clock: writes a tiny object under `_clock/<random>`, reads its `modified`
 * with `head` and deletes it. `localNow` is injectable for tests.
 *
 * On S3 the result is floored to whole seconds (LastModified's resolution), so it lags the
 * store's true time by up to 1 s; a caller comparing it with other `modified` values gets the
 * same flooring on both sides, and should use margins well above 1 s.
 *
 * The delete is best effort: a leftover `_clock/` object (after a crash or a failed delete) is
 * harmless and may be removed at any time.
 */
export async function readStoreClock(
  store: ObjectStore,
  localNow: () => number = Date.now,
): Promise<Result<StoreClockReading>> {
  const key = objectKey(`${CLOCK_PREFIX}${randomBytes(8).toString('hex')}`);
  const before = localNow();
  const put = await store.put(key, `stackflow clock reading ${String(before)}\n`);
  const after = localNow();
  if (!put.ok) return put;
  try {
    // head, not put's own answer: S3's PutObject returns no time, and head is how every store
    // reports the time lease objects are judged by.
    const head = await store.head(key);
    if (!head.ok) return head;
    const { modified } = head.value;
    if (modified === undefined) {
      return err({
        reason: 'invalid-input',
        message: `${store.url} does not report last-modified times, so its clock cannot be read`,
      });
    }
    return ok({
      storeMs: modified,
      localMs: before + (after - before) / 2,
      roundTripMs: after - before,
    });
  } finally {
    // Result dropped on purpose: best effort (see above), a leftover `_clock/` object is harmless.
    await store.delete(key);
  }
}

/** The store's current time in ms since the epoch (see `readStoreClock`; 1 s granularity on S3). */
export async function storeNow(store: ObjectStore): Promise<Result<number>> {
  const r = await readStoreClock(store);
  return r.ok ? ok(r.value.storeMs) : r;
}

/** Thrown only where a store failure cannot be handled locally; caught at the task boundary. */
export class StoreError extends FailureError {
  constructor(failure: Failure) {
    super(failure);
    this.name = 'StoreError';
  }
}
