/**
 * One part of a pack: rows [from, to) of a parquet, joined in row order with their decoded
 * contents, written as JSON lines into a zstd stream of large frames. Rows whose blob is missing,
 * whose gzip is corrupt or whose bytes do not decode are left out of the part and written to its
 * errors sidecar (never dropped silently).
 *
 * Threads: this module (the main thread) reads rows, fetches blobs and feeds the zstd writer, whose
 * frames compress in the libuv pool; gunzip, decoding and the JSON of each line run in a small
 * worker pool (line-pool.ts), a batch of rows at a time. Order is kept by awaiting batches in
 * order; memory is bounded by the fetch window and IN_FLIGHT_BATCHES, not by the row count.
 */
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import type { DuckDBConnection } from '@duckdb/node-api';
import { streamParquetRows } from '../../lib/io/duckdb.js';
import { ZstdFrameWriter } from '../../lib/io/zstd-writer.js';
import { flatten, orderedMap } from '../../lib/util/ordered.js';
import type { Failure, Result } from '../../lib/task-api.js';
import { err, ok } from '../../lib/task-api.js';
import type { FetchBlob } from './fetchers.js';
import type { LinePool } from './line-pool.js';
import { sharedLinePool } from './line-pool.js';
import type { LineBatchResult } from './lines.js';

export interface PackParams {
  rowsPerPart: number;
  contentField: string;
  maxMissingRate: number;
  concurrency: number;
  zstdLevel: number;
  frameBytes: number;
}

export interface PartCounts {
  rows: number;
  written: number;
  missing: number;
  corrupt_gzip: number;
  undecodable: number;
  raw_bytes: number;
  zst_bytes: number;
}

/** A row that could not be packed, as written to the `.errors.jsonl` sidecar. */
export interface RowError {
  row: number;
  blob_id: string;
  reason: 'missing' | 'corrupt-gzip' | 'undecodable' | 'unknown-encoding' | 'bad-row';
  detail: string;
}

export interface PartJob {
  conn: DuckDBConnection;
  /** `JSON.stringify(params.contentField)`, computed once. */
  contentKey: string;
  parquet: string;
  from: number;
  to: number;
  /** The part's blobs (see fetchers.ts): bytes, `not-found` (missing) or a fatal failure. */
  fetch: FetchBlob;
  params: PackParams;
  /** Where the compressed part is written. */
  outPath: string;
  signal: AbortSignal;
  onRows: (rows: number, bytes: number) => void;
}

export async function packPart(
  job: PartJob,
): Promise<Result<{ counts: PartCounts; errors: RowError[] }>> {
  const fh = await open(job.outPath, 'w');
  const counts: PartCounts = {
    rows: 0,
    written: 0,
    missing: 0,
    corrupt_gzip: 0,
    undecodable: 0,
    raw_bytes: 0,
    zst_bytes: 0,
  };
  const errors: RowError[] = [];
  const pool = sharedLinePool(LINE_WORKERS);
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
    })();
    // rows -> fetched blobs (job.params.concurrency at once, in row order) -> batches -> lines
    // built in the workers (IN_FLIGHT_BATCHES at once, in batch order) -> the writer, here.
    const fetched = orderedMap(numbered, job.params.concurrency, (r) => fetchRow(r, job));
    const built = orderedMap(batches(fetched), IN_FLIGHT_BATCHES, (b) => buildBatch(b, job, pool));
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
      else counts.undecodable++;
    };
    for await (const b of built) {
      let k = 0;
      let offset = 0;
      let failed = 0;
      for (const it of b.items) {
        if (job.signal.aborted) return err({ reason: 'aborted', message: 'interrupted' });
        if (it.kind === 'fatal') return err(it.failure);
        counts.rows++;
        batchRows++;
        if (it.kind === 'error') {
          fail(it.error);
        } else {
          const res = b.result;
          if (res === undefined) throw new Error('Internal error: a batch with blobs has no lines');
          const chars = res.chars[k] ?? -1;
          const bytes = res.bytes[k] ?? 0;
          k++;
          if (chars >= 0) {
            counts.written++;
            pending.push(res.lines.subarray(offset, offset + bytes));
            offset += bytes;
            pendingChars += chars;
            pendingBytes += bytes;
            batchBytes += chars;
            if (pendingChars >= 1 << 20) {
              await writer.push(Buffer.concat(pending, pendingBytes));
              pending = [];
              pendingChars = 0;
              pendingBytes = 0;
            }
          } else {
            const f = res.failed[failed++];
            if (f === undefined) throw new Error('Internal error: a failed row without its error');
            fail({
              row: it.index,
              blob_id: it.blobId,
              reason: f.error.reason,
              detail: f.error.detail,
            });
          }
        }
        if (batchRows >= 2048) {
          job.onRows(batchRows, batchBytes);
          batchRows = 0;
          batchBytes = 0;
        }
      }
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
    await fh.close();
  }
}

/**
 * Line workers per part: one per core beyond the main thread's, at most 3 (each costs ~20-30 MB
 * of RSS). On two cores that is one: the main thread and zstd share the other core's time.
 */
const LINE_WORKERS = Math.max(1, Math.min(3, availableParallelism() - 1));
/** Batches being fetched or built at once: enough to keep every worker busy while one is consumed. */
const IN_FLIGHT_BATCHES = 2 * LINE_WORKERS + 1;
/** A batch ends at this many rows or gzip bytes, whichever comes first (bounds its memory). */
const BATCH_ROWS = 256;
const BATCH_GZ_BYTES = 4 << 20;

/** A row after its blob fetch, before its line is built. */
type Fetched =
  | { kind: 'blob'; index: number; blobId: string; head: string; encoding: string; gz: Uint8Array }
  | { kind: 'error'; error: RowError }
  | { kind: 'fatal'; failure: Failure };

async function fetchRow(
  r: { index: number; values: Record<string, unknown> },
  job: PartJob,
): Promise<Fetched> {
  const blobId = r.values.blob_id;
  const encoding = r.values.src_encoding;
  if (typeof blobId !== 'string' || !/^[0-9a-f]{40}$/.test(blobId)) {
    return bad(r.index, String(blobId), 'bad-row', 'blob_id is not a 40-hex sha1');
  }
  const got = await job.fetch(blobId);
  if (!got.ok) {
    if (got.error.reason === 'not-found') return bad(r.index, blobId, 'missing', 'no such blob');
    return { kind: 'fatal', failure: got.error };
  }
  return {
    kind: 'blob',
    index: r.index,
    blobId,
    // The metadata JSON is built here: a string crosses to a worker faster than the object would.
    head: JSON.stringify(r.values),
    encoding: typeof encoding === 'string' ? encoding : 'UTF-8',
    gz: got.value,
  };
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

/** Sends a batch's blobs to the pool; rows that failed before (missing, bad row) stay here. */
async function buildBatch(
  items: Fetched[],
  job: PartJob,
  pool: LinePool,
): Promise<{ items: Fetched[]; result?: LineBatchResult }> {
  const blobs = items.filter((it) => it.kind === 'blob');
  if (blobs.length === 0) return { items };
  let total = 0;
  for (const b of blobs) total += b.gz.byteLength;
  // One unpooled buffer for the whole batch, so it can be moved to the worker without a copy.
  const gz = new Uint8Array(total);
  const gzEnds = new Uint32Array(blobs.length);
  let at = 0;
  blobs.forEach((b, i) => {
    gz.set(b.gz, at);
    at += b.gz.byteLength;
    gzEnds[i] = at;
  });
  const result = await pool.build({
    contentKey: job.contentKey,
    heads: blobs.map((b) => b.head),
    encodings: blobs.map((b) => b.encoding),
    gz,
    gzEnds,
  });
  return { items, result };
}

const bad = (
  row: number,
  blob_id: string,
  reason: RowError['reason'],
  detail: string,
): Fetched => ({ kind: 'error', error: { row, blob_id, reason, detail } });
