/**
 * The CPU-heavy half of packing a row, as a function over a batch: gunzip + decode each blob and
 * build its JSON line (the row's metadata JSON with the content field appended). It runs in the
 * line workers (line-worker.ts) so that the main thread only reads rows, fetches blobs and hands
 * bytes to the zstd writer. It keeps no state and does no I/O of its own: a batch whose blobs are
 * local files reads them through the `read` function it is given (the worker's blocking reads), so
 * a batch gives the same bytes in any worker.
 */
import type { Failure, ThreadStoreSpec } from '../../lib/task-api.js';
import { decodeBlob } from './decode.js';
import type { DecodeError } from './decode.js';

/** Where a batch's gzip bytes are. */
export type BatchBlobs =
  /** Fetched by the main thread: row i is `gz[gzEnds[i-1] ?? 0, gzEnds[i])`. */
  | { kind: 'bytes'; gz: Uint8Array; gzEnds: Uint32Array }
  /**
   * Files of a local store, read by the worker: row i's blob is the file `paths[i]`. A file that
   * cannot be read as a regular file is answered `UNREAD`, never guessed at: the main thread then
   * fetches that blob through its store, which knows every place an object can be and what
   * "missing" means. Reading stops after the row that brings the bytes read to `maxBytes` (the
   * memory bound the main thread's batching gives `bytes` batches).
   */
  | { kind: 'files'; paths: string[]; maxBytes: number }
  /**
   * Blobs of a remote store, fetched by the worker (remote-fetch.ts) from its own client of the
   * store `store`: row i's blob is the object `ids[i]`. Each GET waits for a slot of the fetch
   * window `window` (a window of the main thread, lent through the line pool), so the process's
   * GETs in flight stay within its window whichever thread sends them.
   */
  | { kind: 'remote'; ids: string[]; store: ThreadStoreSpec; window: number };

/** Why a fetched row has no blob: `missing` (a 404) or `refused` (the store would not read it). */
export interface FetchFailure {
  reason: 'missing' | 'refused';
  detail: string;
}

/** Rows whose blob was fetched or located, in row order. Plain data: it crosses a worker boundary. */
export interface LineBatch {
  /** `JSON.stringify(params.contentField)`. */
  contentKey: string;
  /** Per row: `JSON.stringify` of its parquet values (an object, so it ends with `}`). */
  heads: string[];
  /** Per row: the dataset's `src_encoding` spelling. */
  encodings: string[];
  blobs: BatchBlobs;
}

/** `chars` of a row that did not decode (its error is in `failed`). */
export const NOT_DECODED = -1;
/** `chars` of a row whose file could not be read: the caller fetches its blob another way. */
export const UNREAD = -2;

/** What became of each row of a `LineBatch`. */
export interface LineBatchResult {
  /**
   * How many rows, from the first, this result answers: all of them, except when a `files` batch
   * reached its `maxBytes`; the caller sends the rows from `answered` on again.
   */
  answered: number;
  /** The lines of the rows that decoded, in row order, as UTF-8, each ending in `\n`. */
  lines: Uint8Array;
  /**
   * Per answered row: the line's length in UTF-16 code units (what the writer's push boundaries
   * are computed from, see part.ts), `NOT_DECODED` or `UNREAD`.
   */
  chars: Int32Array;
  /** Per answered row: the line's length in bytes within `lines` (0 for a row without a line). */
  bytes: Int32Array;
  /** The rows that did not decode or whose blob is missing: their position in the batch and why. */
  failed: { at: number; error: DecodeError | FetchFailure }[];
  /**
   * Rows whose fetch failed for good (retries spent, a refusal of the whole store): the part
   * fails at the first of them (`chars` is `NOT_DECODED`). Only `remote` batches have them.
   */
  fatal: { at: number; failure: Failure }[];
}

/** What a `remote` batch's worker got for one row: the gzip bytes, or why there are none. */
export type FetchedBlob =
  | { ok: true; gz: Uint8Array }
  | { ok: false; missing: FetchFailure }
  | { ok: false; fatal: Failure };

/**
 * Reads a whole regular file, or says it cannot (undefined, whatever the reason). The bytes need
 * only stay valid until the next call.
 */
export type ReadFile = (path: string) => Uint8Array | undefined;

export function buildLines(batch: LineBatch, read?: ReadFile): LineBatchResult {
  const blobs = batch.blobs;
  if (blobs.kind === 'files' && read === undefined) {
    throw new Error('Internal error: a batch of files without a way to read them');
  }
  if (blobs.kind === 'remote') {
    throw new Error('Internal error: a remote batch is fetched before its lines are built');
  }
  return build(
    batch,
    (i) => {
      if (blobs.kind === 'bytes') {
        const from = i === 0 ? 0 : (blobs.gzEnds[i - 1] ?? 0);
        return blobs.gz.subarray(from, blobs.gzEnds[i] ?? from);
      }
      return read?.(blobs.paths[i] ?? '');
    },
    blobs.kind === 'files' ? blobs.maxBytes : Infinity,
  );
}

/** One row of a `remote` batch once its GET answered: its line, or why there is none. */
export type RowLine = { line: string } | { error: DecodeError | FetchFailure } | { fatal: Failure };

/**
 * Row i's line from what its GET got. A worker builds each row as its GET answers, so the CPU of
 * a batch is spread between its GETs instead of blocking the worker's event loop (and the slots
 * it holds) for the whole batch at the end.
 */
export function fetchedRowLine(batch: LineBatch, i: number, f: FetchedBlob): RowLine {
  if (!f.ok) return 'missing' in f ? { error: f.missing } : { fatal: f.fatal };
  return rowLine(batch, i, f.gz);
}

/** A `remote` batch's answer from its rows' lines, in row order. */
export function assembleLines(rows: readonly RowLine[]): LineBatchResult {
  const n = rows.length;
  const chars = new Int32Array(n);
  const bytes = new Int32Array(n);
  const failed: LineBatchResult['failed'] = [];
  const fatal: LineBatchResult['fatal'] = [];
  let total = 0;
  rows.forEach((r, i) => {
    if ('line' in r) {
      const len = Buffer.byteLength(r.line, 'utf8');
      chars[i] = r.line.length;
      bytes[i] = len;
      total += len;
    } else {
      chars[i] = NOT_DECODED;
      if ('fatal' in r) fatal.push({ at: i, failure: r.fatal });
      else failed.push({ at: i, error: r.error });
    }
  });
  const out = Buffer.allocUnsafeSlow(total);
  let at = 0;
  for (const r of rows) if ('line' in r) at += out.write(r.line, at, 'utf8');
  return { answered: n, lines: out, chars, bytes, failed, fatal };
}

/** Row i's line from its gzip bytes: the row's metadata JSON with the content field appended. */
function rowLine(
  batch: LineBatch,
  i: number,
  gz: Uint8Array,
): { line: string } | { error: DecodeError } {
  const text = decodeBlob(gz, batch.encodings[i] ?? '');
  if (!text.ok) return { error: text.error };
  // Same bytes as stringifying the row merged with {content}, without copying 26 properties.
  const head = batch.heads[i] ?? '{}';
  const sep = head === '{}' ? '' : ',';
  return { line: `${head.slice(0, -1)}${sep}${batch.contentKey}:${JSON.stringify(text.value)}}\n` };
}

/** Row i's gzip bytes; undefined when its file could not be read (`UNREAD`). */
type BlobAt = (i: number) => Uint8Array | undefined | FetchFailure;

/** Stops after the row that brings the bytes read to `maxBytes` (a `files` batch's bound). */
function build(batch: LineBatch, blobAt: BlobAt, maxBytes: number): LineBatchResult {
  const n = batch.heads.length;
  const chars = new Int32Array(n);
  const bytes = new Int32Array(n);
  const failed: LineBatchResult['failed'] = [];
  const fatal: LineBatchResult['fatal'] = [];
  const lines: string[] = [];
  let answered = n;
  let readBytes = 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const gz = blobAt(i);
    if (gz === undefined) {
      chars[i] = UNREAD;
      continue;
    }
    if (!(gz instanceof Uint8Array)) {
      chars[i] = NOT_DECODED;
      failed.push({ at: i, error: gz });
      continue;
    }
    readBytes += gz.byteLength;
    const r = rowLine(batch, i, gz);
    if ('error' in r) {
      chars[i] = NOT_DECODED;
      failed.push({ at: i, error: r.error });
    } else {
      const len = Buffer.byteLength(r.line, 'utf8');
      chars[i] = r.line.length;
      bytes[i] = len;
      total += len;
      lines.push(r.line);
    }
    if (readBytes >= maxBytes) {
      answered = i + 1;
      break;
    }
  }
  // Not Buffer.from(): small buffers come from Node's shared pool, whose ArrayBuffer must not be
  // transferred to another thread.
  const out = Buffer.allocUnsafeSlow(total);
  let at = 0;
  for (const line of lines) at += out.write(line, at, 'utf8');
  return {
    answered,
    lines: out,
    chars: chars.subarray(0, answered),
    bytes: bytes.subarray(0, answered),
    failed,
    fatal,
  };
}
