/**
 * One part of a pack: rows [from, to) of a parquet, joined in row order with their decoded
 * contents, written as JSON lines into a zstd stream of large frames. Rows whose blob is missing,
 * whose gzip is corrupt or whose bytes do not decode are left out of the part and written to its
 * errors sidecar (never dropped silently).
 *
 * Threads: this module (the main thread) reads rows and feeds the zstd writer, whose frames
 * compress in the libuv pool; gunzip, decoding and the JSON of each line run in a small worker
 * pool (line-pool.ts), a batch of rows at a time. Where the blobs come from decides who fetches:
 *
 * - A store a worker thread can open again (S3: the content store's `threadSpec`): the line
 *   workers fetch the blobs themselves (remote-lines.ts, remote-fetch.ts), every GET in a slot of
 *   this thread's fetch window, so the SDK's work per GET never runs here.
 * - Otherwise (a local store, s5cmd's batch dir, a test's memory store): blobs are fetched here,
 *   out of order (a GET's slot is freed when it answers), and put back in row order by a reorder
 *   buffer bounded in bytes (reorder.ts), so a slow GET at the head does not empty the fetch
 *   window; batches are built and awaited in order.
 *
 * Memory is bounded by the window, the reorder buffer and the batches in flight, not by the row
 * count.
 *
 * Blobs that are files of a local store (`job.localFile`) are not fetched here: a batch carries
 * their paths, and the worker reads them (BATCH_GZ_BYTES at a time, like the batches of fetched
 * bytes). A blob the worker cannot read comes back as "fetch it yourself" and goes the fetched
 * way, so a missing or oddly stored blob ends exactly as it did before.
 *
 *   rows ─▶ fetchRow ─▶ batches ─▶ buildBatch ──▶ worker: read files?, gunzip, decode, JSON
 *           (bytes or                  │  ▲           │
 *            a path)                   │  └── unread ◀┘ ─▶ job.fetch ─▶ worker (as bytes)
 *                                      ▼
 *                                   lines, in row order ─▶ zstd writer
 */
import { open } from 'node:fs/promises';
import type { DuckDBConnection } from '@duckdb/node-api';
import { ZstdFrameWriter } from './zstd-writer.js';
import type { ReorderStats } from './reorder.js';
import { reorderMap } from './reorder.js';
import type { FetchWindow, Failure, Result, ThreadStoreSpec } from '../../lib/task-api.js';
import { err, flatten, ok, orderedMap, streamParquetRows } from '../../lib/task-api.js';
import type { FetchBlob, LocalFile } from './fetchers.js';
import type { LineLease, LinePool } from './line-pool.js';
import { leaseLineWorkers } from './line-pool.js';
import { remoteLines } from './remote-lines.js';
import type { At, BytesRow, Built, Fetched, FileRow, RowError, RowMeta } from './rows.js';
import {
  BATCH_GZ_BYTES,
  BATCH_ROWS,
  bad,
  describeRow,
  inFlightBatches,
  reorderBytes,
  lineBatch,
  settle,
  settled,
} from './rows.js';

export type { RowError } from './rows.js';
import type { BatchBlobs } from './lines.js';

export interface PackParams {
  rowsPerPart: number;
  contentField: string;
  maxMissingRate: number;
  concurrency: number;
  /** Line worker threads this part may keep busy (the host's sizing decides, lib/sizing.ts). */
  lineWorkers: number;
  zstdLevel: number;
  frameBytes: number;
}

export interface PartCounts {
  rows: number;
  written: number;
  missing: number;
  corrupt_gzip: number;
  undecodable: number;
  /** Rows whose blob_id is NULL or not a sha1, or whose blob the store refused to read. */
  bad_rows: number;
  raw_bytes: number;
  zst_bytes: number;
}

/** A part's counts before its first row. */
export const zeroCounts = (): PartCounts => ({
  rows: 0,
  written: 0,
  missing: 0,
  corrupt_gzip: 0,
  undecodable: 0,
  bad_rows: 0,
  raw_bytes: 0,
  zst_bytes: 0,
});

export interface PartJob {
  conn: DuckDBConnection;
  /** `JSON.stringify(params.contentField)`, computed once. */
  contentKey: string;
  parquet: string;
  from: number;
  to: number;
  /** The part's blobs (see fetchers.ts): bytes, `not-found` (missing) or a fatal failure. */
  fetch: FetchBlob;
  /** Present when the blobs are local files the line workers can read (see fetchers.ts). */
  localFile?: LocalFile | undefined;
  /**
   * Present when the line workers fetch the blobs themselves, from their own client of this
   * store, in slots of `window` (see fetchers.ts `RemoteBlobs`); `fetch` is then not used.
   */
  remote?: { store: ThreadStoreSpec; window: FetchWindow; onRetry?: (f: Failure) => void };
  params: PackParams;
  /** Where the compressed part is written. */
  outPath: string;
  signal: AbortSignal;
  onRows: (rows: number, bytes: number) => void;
  /** Updated with what the part's reorder buffer did (see reorder.ts). */
  reorder?: ReorderStats;
  /** Told of every change of the bytes the part's reorder buffer holds. */
  onHeld?: (deltaBytes: number) => void;
  /** Told once every row of the part is read (its DuckDB stream ended). */
  onRead?: () => void;
  /** The pack's share of the line pool, held across its parts; else the part leases its own. */
  lease?: LineLease;
}

export async function packPart(
  job: PartJob,
): Promise<Result<{ counts: PartCounts; errors: RowError[] }>> {
  const fh = await open(job.outPath, 'w');
  const counts = zeroCounts();
  const errors: RowError[] = [];
  // The pack's lease when it holds one across its parts; else this part's own.
  const lease = job.lease ?? leaseLineWorkers(job.params.lineWorkers);
  const pool = lease.pool;
  try {
    const writer = new ZstdFrameWriter({
      level: job.params.zstdLevel,
      frameBytes: job.params.frameBytes,
      write: async (chunk) => {
        await fh.write(chunk);
      },
    });
    let row = job.from;
    const rows = flatten(streamParquetRows(job.conn, job.parquet, { from: job.from, to: job.to }));
    const numbered = (async function* () {
      for await (const r of rows) yield { index: row++, values: r };
      // The part's DuckDB stream has ended: the connection is free for the next part's.
      job.onRead?.();
    })();
    // rows -> fetched blobs or their paths (job.params.concurrency at once, out of order, back
    // in row order through a reorder buffer of reorderBytes) -> batches -> lines built in the
    // workers (inFlightBatches at once, in batch order) -> the writer, here.
    const built =
      job.remote !== undefined && job.localFile === undefined
        ? remoteLines(numbered, job, job.remote, pool)
        : localLines(numbered, job, pool);
    // The writer gets the same pushes as when lines were strings joined here: a push is cut once
    // the pending lines reach 2^20 UTF-16 units. Frames end at push boundaries, so this keeps the
    // output byte-identical to the single-threaded packer (and to the s5cmd fetcher's parts).
    let pending: Uint8Array[] = [];
    let pendingChars = 0;
    let pendingBytes = 0;
    let batchRows = 0;
    let batchBytes = 0;
    const fail = (e: RowError): void => {
      errors.push(e);
      if (e.reason === 'missing') counts.missing++;
      else if (e.reason === 'corrupt-gzip') counts.corrupt_gzip++;
      else if (e.reason === 'bad-row' || e.reason === 'refused') counts.bad_rows++;
      else counts.undecodable++;
    };
    try {
      for await (const b of built) {
        for (const it of b) {
          if (job.signal.aborted) return err({ reason: 'aborted', message: 'interrupted' });
          if (it.kind === 'fatal') return err(it.failure);
          counts.rows++;
          batchRows++;
          if (it.kind === 'error') {
            fail(it.error);
          } else {
            counts.written++;
            pending.push(it.line);
            pendingChars += it.chars;
            pendingBytes += it.line.byteLength;
            batchBytes += it.chars;
            if (pendingChars >= 1 << 20) {
              await writer.push(Buffer.concat(pending, pendingBytes));
              pending = [];
              pendingChars = 0;
              pendingBytes = 0;
            }
          }
          if (batchRows >= 2048) {
            job.onRows(batchRows, batchBytes);
            batchRows = 0;
            batchBytes = 0;
          }
        }
      }
    } catch (e) {
      // The reorder map's answer to an abort (reorder.ts).
      if (job.signal.aborted) return err({ reason: 'aborted', message: 'interrupted' });
      throw e;
    }
    if (pendingBytes > 0) await writer.push(Buffer.concat(pending, pendingBytes));
    const stats = await writer.end();
    job.onRows(batchRows, batchBytes);
    counts.raw_bytes = stats.rawBytes;
    counts.zst_bytes = stats.compressedBytes;
    const rate = counts.rows === 0 ? 0 : counts.missing / counts.rows;
    if (rate > job.params.maxMissingRate) {
      return err({
        reason: 'too-many-bad-rows',
        message: `rows ${job.from}–${job.to - 1}: ${counts.missing} of ${counts.rows} blobs missing (${(rate * 100).toFixed(2)}% > max_missing_rate ${(job.params.maxMissingRate * 100).toFixed(2)}%); first: ${errors.find((e) => e.reason === 'missing')?.blob_id ?? '?'}`,
      });
    }
    return ok({ counts, errors });
  } finally {
    if (lease !== job.lease) lease.release();
    await fh.close();
  }
}

/** The lines of rows whose blobs are fetched here (or read from local files by the workers). */
function localLines(
  numbered: AsyncIterable<{ index: number; values: Record<string, unknown> }>,
  job: PartJob,
  pool: LinePool,
): AsyncIterable<Built[]> {
  const fetched = reorderMap(
    numbered,
    {
      concurrency: job.params.concurrency,
      maxBytes: reorderBytes(job.params.concurrency),
      bytesOf: heldBytes,
      signal: job.signal,
      ...(job.onHeld ? { onHeld: job.onHeld } : {}),
    },
    (r) => fetchRow(r, job),
    job.reorder,
  );
  return orderedMap(batches(fetched), inFlightBatches(job.params.lineWorkers), (b) =>
    buildBatch(b, job, pool),
  );
}

/** What a fetched row holds besides its blob: its metadata JSON (UTF-16) and the objects. */
const heldBytes = (f: Fetched): number =>
  256 +
  (f.kind === 'blob'
    ? f.gz.byteLength + 2 * f.head.length
    : f.kind === 'file'
      ? 2 * (f.head.length + f.path.length)
      : f.kind === 'error'
        ? 2 * f.error.detail.length
        : 0);
async function fetchRow(
  r: { index: number; values: Record<string, unknown> },
  job: PartJob,
): Promise<Fetched> {
  const row = describeRow(r);
  if ('kind' in row) return row;
  const path = job.localFile?.(row.blobId);
  if (path !== undefined) return { kind: 'file', ...row, path };
  return fetchBlob(row, job);
}

/** The row with its blob's bytes, `missing`, or the fetch's fatal failure. */
async function fetchBlob(row: RowMeta, job: PartJob): Promise<Exclude<Fetched, FileRow>> {
  const { index, blobId, head, encoding, textBytes } = row;
  const got = await job.fetch(blobId);
  if (!got.ok) {
    if (got.error.reason === 'not-found') return bad(index, blobId, 'missing', 'no such blob');
    // A valid id the store will not read (lib/io/stores/fs-store.ts: a symlink out of its root) is
    // this row's problem, not the part's.
    if (got.error.reason === 'unsafe-path') {
      return bad(index, blobId, 'refused', got.error.message);
    }
    return { kind: 'fatal', failure: got.error };
  }
  return { kind: 'blob', index, blobId, head, encoding, textBytes, gz: got.value };
}

/** Consecutive fetched rows, cut at BATCH_ROWS / BATCH_GZ_BYTES, or right after a fatal one. */
async function* batches(
  source: AsyncIterable<Fetched>,
): AsyncGenerator<Fetched[], void, undefined> {
  let items: Fetched[] = [];
  let gzBytes = 0;
  for await (const it of source) {
    items.push(it);
    if (it.kind === 'blob') gzBytes += it.gz.byteLength;
    if (items.length >= BATCH_ROWS || gzBytes >= BATCH_GZ_BYTES || it.kind === 'fatal') {
      yield items;
      items = [];
      gzBytes = 0;
    }
  }
  if (items.length > 0) yield items;
}

/**
 * Builds a batch's lines in the pool. Files first, the worker reading BATCH_GZ_BYTES per request;
 * the blobs it could not read are fetched here, then built with the batch's fetched blobs,
 * BATCH_GZ_BYTES per request. Rows that failed before (missing, bad row) stay as they are.
 */
async function buildBatch(items: Fetched[], job: PartJob, pool: LinePool): Promise<Built[]> {
  const out: (Built | undefined)[] = new Array<Built | undefined>(items.length);
  const files: At<FileRow>[] = [];
  const fetched: At<BytesRow>[] = [];
  items.forEach((row, i) => {
    if (row.kind === 'file') files.push({ i, row });
    else if (row.kind === 'blob') fetched.push({ i, row });
    else out[i] = row;
  });
  const unread: At<FileRow>[] = [];
  for (let from = 0; from < files.length;) {
    const at = files.slice(from);
    const paths = at.map((r) => r.row.path);
    const res = await pool.build(
      lineBatch(job.contentKey, at, { kind: 'files', paths, maxBytes: BATCH_GZ_BYTES }),
    );
    if (res.answered < 1) throw new Error('Internal error: a line worker answered no row');
    settle(res, at, out, unread);
    from += res.answered;
  }
  // Blobs fetched the main thread's way (a remote store's, and files the worker could not read),
  // built in groups of BATCH_GZ_BYTES. A batch of fetched blobs was already cut at that size.
  let group: At<BytesRow>[] = [];
  let groupBytes = 0;
  const flush = async (): Promise<void> => {
    const at = group;
    group = [];
    groupBytes = 0;
    if (at.length > 0)
      settle(await pool.build(lineBatch(job.contentKey, at, packBytes(at))), at, out, []);
  };
  const add = async (r: At<BytesRow>): Promise<void> => {
    group.push(r);
    groupBytes += r.row.gz.byteLength;
    if (groupBytes >= BATCH_GZ_BYTES) await flush();
  };
  for (const r of fetched) await add(r);
  // The part's fetch window, shared by the batches in flight: fetches at once stay within
  // job.params.concurrency, as when every row was fetched here.
  const fetchWindow = Math.max(
    1,
    Math.floor(job.params.concurrency / inFlightBatches(job.params.lineWorkers)),
  );
  for await (const r of orderedMap(unread, fetchWindow, async ({ i, row }) => ({
    i,
    row: await fetchBlob(row, job),
  }))) {
    if (r.row.kind === 'blob') await add({ i: r.i, row: r.row });
    else out[r.i] = r.row;
  }
  await flush();
  return settled(out);
}

/** Fetched blobs in one unpooled buffer, so it can be moved to the worker without a copy. */
function packBytes(at: At<BytesRow>[]): BatchBlobs {
  let total = 0;
  for (const r of at) total += r.row.gz.byteLength;
  const gz = new Uint8Array(total);
  const gzEnds = new Uint32Array(at.length);
  let end = 0;
  at.forEach((r, k) => {
    gz.set(r.row.gz, end);
    end += r.row.gz.byteLength;
    gzEnds[k] = end;
  });
  return { kind: 'bytes', gz, gzEnds };
}
