/**
 * What pack's two ways of building lines share (part.ts fetching on the main thread or reading
 * local files, remote-lines.ts fetching in the line workers): a row's metadata and outcome, the
 * batch sizes, the reorder buffer's bound, and how a line pool's answer is put back in row order.
 */
import type { Failure } from '../../lib/task-api.js';
import type { BatchBlobs, LineBatch, LineBatchResult } from './lines.js';
import { UNREAD } from './lines.js';

/** A row that could not be packed, as written to the `.errors.jsonl` sidecar. */
export interface RowError {
  row: number;
  /** As the parquet holds it: null when NULL. */
  blob_id: string | null;
  /**
   * `bad-row`: the blob_id is NULL or not 40 hex digits; `refused`: the content store would not
   * read the blob (a symlink out of a `file://` store's root).
   */
  reason: 'missing' | 'corrupt-gzip' | 'undecodable' | 'unknown-encoding' | 'bad-row' | 'refused';
  detail: string;
}
/**
 * Batches being fetched or built at once: enough to keep every line worker busy while one is
 * consumed. (How many line workers a part gets is the host's sizing decision: lib/sizing.ts.)
 */
export const inFlightBatches = (lineWorkers: number): number => 2 * Math.max(1, lineWorkers) + 1;
/**
 * Bytes a part's fetched rows may hold while they wait for their turn (a slow GET at the head):
 * 256 KiB per GET of the part's window (~40 rows of a median blob and its metadata, a few round
 * trips' worth), at least 16 MiB and at most 64 MiB, within the pack's memory (lib/sizing.ts
 * SIZING.packBytes). Fetching pauses while it is full, and resumes when the head arrives.
 */
export const reorderBytes = (concurrency: number): number =>
  Math.min(
    64 << 20,
    Math.max(16 << 20, concurrency * (256 << 10)),
  ); /** A batch ends at this many rows or gzip bytes, whichever comes first (bounds its memory). */
export const BATCH_ROWS = 256;
export const BATCH_GZ_BYTES = 4 << 20;

/** What a row's line is made of, besides its blob. */
export interface RowMeta {
  index: number;
  blobId: string;
  /** The row's metadata JSON, built here: a string crosses to a worker faster than an object. */
  head: string;
  encoding: string;
  /** The row's `length_bytes` (its text's size), 0 when the parquet does not say. */
  textBytes: number;
}

/** A row after its blob fetch (or, for a local file, its path), before its line is built. */
export type Fetched =
  | (RowMeta & { kind: 'blob'; gz: Uint8Array })
  | (RowMeta & { kind: 'file'; path: string })
  | { kind: 'error'; error: RowError }
  | { kind: 'fatal'; failure: Failure };
export type BytesRow = Extract<Fetched, { kind: 'blob' }>;
export type FileRow = Extract<Fetched, { kind: 'file' }>;

/** A row of a batch: its position there, and the row. */
export interface At<R> {
  i: number;
  row: R;
}

/** A row's outcome, in row order: its line (and the line's UTF-16 length), or why there is none. */
export type Built =
  | { kind: 'line'; line: Uint8Array; chars: number }
  | { kind: 'error'; error: RowError }
  | { kind: 'fatal'; failure: Failure };

/** A row's metadata, or why it cannot be packed (its blob_id is not a sha1). */
export function describeRow(r: {
  index: number;
  values: Record<string, unknown>;
}): RowMeta | Extract<Fetched, { kind: 'error' }> {
  const blobId = r.values.blob_id;
  const encoding = r.values.src_encoding;
  if (blobId === null || blobId === undefined) {
    return bad(r.index, null, 'bad-row', 'blob_id is NULL');
  }
  if (typeof blobId !== 'string' || !/^[0-9a-f]{40}$/.test(blobId)) {
    const shown = typeof blobId === 'string' ? blobId : JSON.stringify(blobId);
    return bad(r.index, shown, 'bad-row', 'blob_id is not a 40-hex sha1');
  }
  const length = r.values.length_bytes;
  return {
    index: r.index,
    blobId,
    head: JSON.stringify(r.values),
    encoding: typeof encoding === 'string' ? encoding : 'UTF-8',
    textBytes: typeof length === 'number' && length > 0 ? length : 0,
  };
}

/**
 * Puts the outcomes of a pool answer for the rows `at` into `out`; the rows whose file the worker
 * could not read go to `unread` instead.
 */
export function settle<R extends { i: number; row: RowMeta & { kind?: string } }>(
  res: LineBatchResult,
  at: R[],
  out: (Built | undefined)[],
  unread: R[],
): void {
  // Rows without a line, by their position in `at`.
  const failures = new Map<number, Built>();
  for (const f of res.failed) {
    const r = at[f.at];
    if (r === undefined) throw new Error('Internal error: a failure for a row not sent');
    failures.set(f.at, bad(r.row.index, r.row.blobId, f.error.reason, f.error.detail));
  }
  for (const f of res.fatal) failures.set(f.at, { kind: 'fatal', failure: f.failure });
  let offset = 0;
  for (let k = 0; k < res.answered; k++) {
    const r = at[k];
    if (r === undefined) throw new Error('Internal error: a pool answer for a row not sent');
    const chars = res.chars[k] ?? UNREAD;
    if (chars >= 0) {
      const bytes = res.bytes[k] ?? 0;
      out[r.i] = { kind: 'line', line: res.lines.subarray(offset, offset + bytes), chars };
      offset += bytes;
    } else if (chars === UNREAD) {
      if (r.row.kind !== 'file') throw new Error('Internal error: fetched bytes answered unread');
      unread.push(r);
    } else {
      const f = failures.get(k);
      if (f === undefined) throw new Error('Internal error: a failed row without its error');
      out[r.i] = f;
    }
  }
}

export const bad = (
  row: number,
  blob_id: string | null,
  reason: RowError['reason'],
  detail: string,
): Extract<Fetched, { kind: 'error' }> => ({
  kind: 'error',
  error: { row, blob_id, reason, detail },
});

/** The pool request for some rows of a batch. */
export function lineBatch(contentKey: string, at: At<RowMeta>[], blobs: BatchBlobs): LineBatch {
  return {
    contentKey,
    heads: at.map((r) => r.row.head),
    encodings: at.map((r) => r.row.encoding),
    blobs,
  };
}

/** A batch's outcomes, once every row has one. */
export function settled(out: (Built | undefined)[]): Built[] {
  return out.map((b) => {
    if (b === undefined) throw new Error('Internal error: a row of a batch without an outcome');
    return b;
  });
}
