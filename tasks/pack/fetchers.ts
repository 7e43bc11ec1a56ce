/**
 * Where a pack part's blobs come from: the seam between "join rows with contents" (part.ts) and
 * "get the contents".
 *
 *   sdk    (default) each row's blob through ctx.content (the content ObjectStore), with bounded
 *          retries; nothing outside npm. With `window: adaptive` (the default) every attempt
 *          takes a slot of the process's fetch window (lib/util/fetch-window.ts), which shrinks
 *          on 503 SlowDown and grows while latency stays flat; retries wait outside it. The
 *          content store makes one attempt per GET (session.ts), so no SlowDown is hidden.
 *   s5cmd  per part: the part's distinct blob ids go into an s5cmd run file, one `s5cmd run`
 *          downloads them into a batch dir under the scratch dir, and rows are joined from disk.
 *          For users who have s5cmd and want its request rate.
 *
 * Both give part.ts the same bytes for the same blob and the same "missing" for a 404, so parts are
 * byte-identical whichever fetcher made them (the fetcher is how, not what).
 *
 * When the content store is a local directory (file://), `sdk` also says where each blob's file
 * is (`localFile`), so that the line workers read it themselves; a row whose file they cannot read
 * comes back to `fetch`, which stays the one judge of a blob's bytes and of "missing".
 */
import { readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type {
  Failure,
  FetchWindow,
  ThreadStoreSpec,
  ObjectStore,
  Result,
  S3Location,
  S5cmdCopy,
  TaskContext,
} from '../../lib/task-api.js';
import {
  checkS5cmd,
  ensureDir,
  err,
  fixedFetchWindow,
  judgeBatch,
  objectKey,
  ok,
  resolveS3Location,
  runS5cmd,
  streamParquetRows,
  withRetry,
  writeRunFile,
} from '../../lib/task-api.js';

export type FetcherName = 'sdk' | 's5cmd';

/**
 * One blob's gzip bytes. `not-found` means the blob is missing (a data outcome, recorded per row);
 * any other failure is fatal for the part.
 */
export type FetchBlob = (blobId: string) => Promise<Result<Uint8Array>>;

/**
 * The local file that probably holds a blob's gzip bytes, for a reader that may block (a worker
 * thread); undefined when there is none to try. A hint, not a guarantee: a reader that cannot read
 * the path as a regular file must ask `FetchBlob`, which has the final word (bytes or `not-found`).
 * A regular file at the path does hold the blob's complete bytes.
 */
export type LocalFile = (blobId: string) => string | undefined;

/**
 * Blobs the line workers fetch themselves (remote-fetch.ts), each from its own client of the
 * store `store` describes, every GET in a slot of `window`, which the main thread keeps.
 */
export interface RemoteBlobs {
  store: ThreadStoreSpec;
  window: FetchWindow;
  onRetry?: (failure: Failure) => void;
}

/** The blobs of one part, ready to be fetched in row order. */
export interface PartBlobs {
  fetch: FetchBlob;
  /** Present when the line workers fetch the blobs (see `RemoteBlobs`); `fetch` is the fallback. */
  remote?: RemoteBlobs;
  /** Present when the blobs are files of a local store (see `LocalFile`). */
  localFile?: LocalFile;
  /** Frees what the part holds on disk. Idempotent; call it in a finally. */
  close(): Promise<void>;
}

/** Rows [from, to) of a local parquet: one part. */
export interface PartRange {
  conn: DuckDBConnection;
  parquet: string;
  part: number;
  from: number;
  to: number;
}

export interface ContentFetcher {
  /** Checks what the fetcher needs (s5cmd: the executable); call before the first part runs. */
  ready(): Promise<Result<void>>;
  open(range: PartRange): Promise<Result<PartBlobs>>;
}

export interface FetcherOptions {
  fetcher: FetcherName;
  /**
   * `adaptive`: GETs go through the process's shared fetch window (AIMD); `concurrency` bounds
   * this pack's share. `fixed`: `concurrency` GETs in flight, whatever the store answers.
   */
  window?: 'adaptive' | 'fixed';
  /** The s5cmd executable: a name looked up on PATH, or a path. */
  s5cmdPath: string;
  /** s5cmd `--numworkers`. */
  s5cmdWorkers: number;
  /** GETs in flight for this pack at most (`window: fixed`: exactly that many). Default 64. */
  concurrency?: number;
}

/** What a fetcher may touch: a narrow slice of the task context (tests build it by hand). */
export type FetcherContext = Pick<TaskContext, '$' | 'scratch' | 'signal' | 'content'> & {
  pipeline: Pick<TaskContext['pipeline'], 'dir' | 'contentSource' | 's3'>;
  onRetry?: (failure: Failure) => void;
  /** The shared fetch window the `sdk` fetcher paces its GETs with (`window: adaptive`). */
  window?: FetchWindow;
};

export function makeFetcher(opts: FetcherOptions, ctx: FetcherContext): Result<ContentFetcher> {
  switch (opts.fetcher) {
    case 'sdk':
      return ok(
        sdkFetcher(
          ctx,
          opts.window === 'adaptive' ? ctx.window : undefined,
          opts.concurrency ?? 64,
        ),
      );
    case 's5cmd':
      return s5cmdFetcher(opts, ctx);
  }
}

/**
 * Per-row `ctx.content.get`, retried while transient (throttling with a longer backoff); each
 * attempt in a slot of `window` when there is one. The file's path on a local store.
 */
function sdkFetcher(
  ctx: FetcherContext,
  window: FetchWindow | undefined,
  concurrency: number,
): ContentFetcher {
  const store = ctx.content;
  const localFile: LocalFile | undefined =
    store.filePathHint === undefined
      ? undefined
      : (blobId) => store.filePathHint?.(objectKey(blobId));
  const attempt =
    window === undefined
      ? (key: string) => store.get(objectKey(key))
      : paced(store, window, ctx.signal);
  const fetch: FetchBlob = (blobId) =>
    withRetry(() => attempt(blobId), {
      retries: 8,
      baseMs: 100,
      signal: ctx.signal,
      onRetry: (_n, f) => ctx.onRetry?.(f),
    });
  // A store a worker thread can open again (S3): the line workers fetch, off the main thread. A
  // fixed window is this pack's own, `concurrency` slots whatever the store answers.
  const spec = store.threadSpec?.();
  let remote: RemoteBlobs | undefined;
  if (spec !== undefined) {
    const w = window ?? fixedFetchWindow(concurrency);
    remote = { store: spec, window: w, ...(ctx.onRetry ? { onRetry: ctx.onRetry } : {}) };
  }
  return {
    ready: () => Promise.resolve(ok(undefined)),
    open: () =>
      Promise.resolve(
        ok({ fetch, localFile, ...(remote ? { remote } : {}), close: () => Promise.resolve() }),
      ),
  };
}

/** One GET in a slot of the window; the answer tells the window how the store is doing. */
function paced(
  store: ObjectStore,
  window: FetchWindow,
  signal: AbortSignal,
): (blobId: string) => Promise<Result<Uint8Array>> {
  return async (blobId) => {
    let slot;
    try {
      slot = await window.acquire(signal);
    } catch {
      return err({ reason: 'aborted', message: 'interrupted' });
    }
    const r = await store.get(objectKey(blobId));
    slot.done(
      r.ok || r.error.reason === 'not-found'
        ? 'answered'
        : r.error.reason === 'transient' && r.error.throttled === true
          ? 'throttled'
          : 'failed',
    );
    return r;
  };
}

/**
 * s5cmd's own retries of one request. Its default (10) too, written out so that behaviour does
 * not change with the installed version.
 */
const S5CMD_RETRY_COUNT = 10;

const BLOB_ID = /^[0-9a-f]{40}$/;

function s5cmdFetcher(opts: FetcherOptions, ctx: FetcherContext): Result<ContentFetcher> {
  const url = ctx.pipeline.contentSource;
  if (!url.startsWith('s3://')) {
    return err({
      reason: 'invalid-input',
      message: `fetcher: s5cmd downloads from S3, but the content source is ${url}; use an s3:// content source, or the default fetcher: sdk (which reads any content source)`,
    });
  }
  const loc = resolveS3Location(url, ctx.pipeline.s3, process.env);
  if (!loc.ok) return loc;
  // A bare name is looked up on PATH; a relative path means relative to pipeline.yaml, not to
  // the scratch dir s5cmd runs in.
  const bin = opts.s5cmdPath.includes('/')
    ? resolve(ctx.pipeline.dir, opts.s5cmdPath)
    : opts.s5cmdPath;
  let checked: Promise<Result<void>> | undefined;
  return ok({
    ready: () => (checked ??= checkS5cmd(ctx.$, bin).then((v) => (v.ok ? ok(undefined) : v))),
    open: (range) => openBatch(range, { ...opts, s5cmdPath: bin }, loc.value, ctx),
  });
}

/**
 * Downloads one part's blobs with one `s5cmd run` into `<scratch>/s5cmd-part-<n>/`, then serves
 * them from disk. Everything the batch writes (run file, logs, blobs, s5cmd's `<name><digits>`
 * temp files of interrupted downloads) lives in that dir, and `close` removes it; a failure or an
 * abort removes it before returning.
 */
async function openBatch(
  range: PartRange,
  opts: FetcherOptions,
  loc: S3Location,
  ctx: FetcherContext,
): Promise<Result<PartBlobs>> {
  // Relative to ctx.$'s cwd (the scratch dir), so the run file never holds the scratch path,
  // whatever characters the cache dir has.
  const rel = `s5cmd-part-${range.part}`;
  const dir = join(ctx.scratch, rel);
  const close = () => rm(dir, { recursive: true, force: true });
  try {
    // A retried task reuses its scratch dir: start from an empty batch dir.
    await close();
    await ensureDir(dir);
    // Remaining uses of each distinct blob id in this part; a file is deleted after its last use.
    const uses = new Map<string, number>();
    const rows = streamParquetRows(range.conn, range.parquet, {
      from: range.from,
      to: range.to,
      columns: ['blob_id'],
    });
    for await (const chunk of rows) {
      for (const r of chunk) {
        const id = r.blob_id;
        // Malformed ids are reported per row by part.ts; they are never fetched.
        if (typeof id === 'string' && BLOB_ID.test(id)) uses.set(id, (uses.get(id) ?? 0) + 1);
      }
    }
    const source = (id: string) => `s3://${loc.bucket}/${loc.prefix}${id}`;
    let missing = new Set<string>();
    if (uses.size > 0) {
      const runFile = join(dir, 'cmd.txt');
      const copies = (function* (): Generator<S5cmdCopy> {
        for (const id of uses.keys()) yield { source: source(id), dest: `${rel}/${id}.gz` };
      })();
      const written = await writeRunFile(runFile, copies);
      if (!written.ok) {
        await close();
        return written;
      }
      const ran = await runS5cmd({
        $: ctx.$,
        bin: opts.s5cmdPath,
        flags: {
          workers: opts.s5cmdWorkers,
          retryCount: S5CMD_RETRY_COUNT,
          unsigned: loc.unsigned,
          endpoint: loc.endpoint,
        },
        // Only a region set for this bucket in pipeline.yaml is forced on s5cmd; otherwise it
        // uses AWS_REGION or finds the bucket's region itself.
        env: ctx.pipeline.s3[loc.bucket]?.region === undefined ? {} : { AWS_REGION: loc.region },
        runFile,
        stdoutFile: join(dir, 's5cmd.stdout'),
        stderrFile: join(dir, 's5cmd.stderr'),
        signal: ctx.signal,
      });
      if (!ran.ok) {
        await close();
        return ran;
      }
      const judged = judgeBatch(ran.value.exitCode, ran.value.report, [...uses.keys()].map(source));
      if (!judged.ok) {
        await close();
        return judged;
      }
      const cut = source('').length;
      missing = new Set([...judged.value].map((s) => s.slice(cut)));
    }
    const fetch: FetchBlob = async (blobId) => {
      const left = uses.get(blobId);
      if (left === undefined) {
        throw new Error(`Internal error: blob ${blobId} is not part of batch ${rel}`);
      }
      if (missing.has(blobId)) {
        return err({ reason: 'not-found', key: blobId, message: `${source(blobId)}: no such key` });
      }
      const path = join(dir, `${blobId}.gz`);
      let bytes: Uint8Array;
      try {
        bytes = await readFile(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        return err({
          reason: 'transient',
          message: `s5cmd reported ${source(blobId)} as copied, but ${rel}/${blobId}.gz is not there`,
        });
      }
      if (left <= 1) {
        uses.delete(blobId);
        await rm(path, { force: true });
      } else {
        uses.set(blobId, left - 1);
      }
      return ok(bytes);
    };
    return ok({ fetch, close });
  } catch (e) {
    await close();
    throw e;
  }
}
