/**
 * One part of a pack: rows [from, to) of a parquet, joined in row order with their decoded
 * contents, written as JSON lines into a zstd stream of large frames. Rows whose blob is missing,
 * whose gzip is corrupt or whose bytes do not decode are left out of the part and written to its
 * errors sidecar (never dropped silently).
 */
import { open } from 'node:fs/promises';
import type { DuckDBConnection } from '@duckdb/node-api';
import { decodeBlob } from '../../lib/io/decode.js';
import { streamParquetRows } from '../../lib/io/duckdb.js';
import { ZstdFrameWriter } from '../../lib/io/zstd-writer.js';
import { flatten, orderedMap } from '../../lib/util/ordered.js';
import type { Failure, Result } from '../../lib/task-api.js';
import { err, ok } from '../../lib/task-api.js';
import type { FetchBlob } from './fetchers.js';

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

type Joined =
  { ok: true; line: string; raw: number } | { ok: false; error: RowError } | { fatal: Failure };

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
    let pending = '';
    let batchRows = 0;
    let batchBytes = 0;
    for await (const j of orderedMap(numbered, job.params.concurrency, (r) => joinRow(r, job))) {
      if (job.signal.aborted) return err({ reason: 'aborted', message: 'interrupted' });
      if ('fatal' in j) return err(j.fatal);
      counts.rows++;
      batchRows++;
      if (j.ok) {
        counts.written++;
        pending += j.line;
        batchBytes += j.raw;
        if (pending.length >= 1 << 20) {
          await writer.push(pending);
          pending = '';
        }
      } else {
        errors.push(j.error);
        if (j.error.reason === 'missing') counts.missing++;
        else if (j.error.reason === 'corrupt-gzip') counts.corrupt_gzip++;
        else counts.undecodable++;
      }
      if (batchRows >= 2048) {
        job.onRows(batchRows, batchBytes);
        batchRows = 0;
        batchBytes = 0;
      }
    }
    if (pending.length > 0) await writer.push(pending);
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

async function joinRow(
  r: { index: number; values: Record<string, unknown> },
  job: PartJob,
): Promise<Joined> {
  const blobId = r.values.blob_id;
  const encoding = r.values.src_encoding;
  if (typeof blobId !== 'string' || !/^[0-9a-f]{40}$/.test(blobId)) {
    return bad(r.index, String(blobId), 'bad-row', 'blob_id is not a 40-hex sha1');
  }
  const got = await job.fetch(blobId);
  if (!got.ok) {
    if (got.error.reason === 'not-found') return bad(r.index, blobId, 'missing', 'no such blob');
    return { fatal: got.error };
  }
  const text = decodeBlob(got.value, typeof encoding === 'string' ? encoding : 'UTF-8');
  if (!text.ok) return bad(r.index, blobId, text.error.reason, text.error.detail);
  // The row's JSON with the content field appended (same bytes as stringifying a merged object,
  // without copying 26 properties per row). `raw` is in UTF-16 units: it only feeds progress.
  const head = JSON.stringify(r.values);
  const sep = head === '{}' ? '' : ',';
  const line = `${head.slice(0, -1)}${sep}${job.contentKey}:${JSON.stringify(text.value)}}\n`;
  return { ok: true, line, raw: line.length };
}

const bad = (row: number, blob_id: string, reason: RowError['reason'], detail: string): Joined => ({
  ok: false,
  error: { row, blob_id, reason, detail },
});
