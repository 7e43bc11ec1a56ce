/**
 * The CPU-heavy half of packing a row, as a pure function over a batch: gunzip + decode each blob
 * and build its JSON line (the row's metadata JSON with the content field appended). It runs in
 * the line workers (line-worker.ts) so that the main thread only reads rows, fetches blobs and
 * hands bytes to the zstd writer; it has no I/O and no state, so a batch gives the same bytes in
 * any worker.
 */
import { decodeBlob } from '../../lib/io/decode.js';
import type { DecodeError } from '../../lib/io/decode.js';

/** Rows whose blob was fetched, in row order. Plain data: it crosses a worker boundary. */
export interface LineBatch {
  /** `JSON.stringify(params.contentField)`. */
  contentKey: string;
  /** Per row: `JSON.stringify` of its parquet values (an object, so it ends with `}`). */
  heads: string[];
  /** Per row: the dataset's `src_encoding` spelling. */
  encodings: string[];
  /** Every row's gzip bytes, back to back; row i is `gz[gzEnds[i-1] ?? 0, gzEnds[i])`. */
  gz: Uint8Array;
  gzEnds: Uint32Array;
}

/** What became of each row of a `LineBatch`. */
export interface LineBatchResult {
  /** The lines of the rows that decoded, in row order, as UTF-8, each ending in `\n`. */
  lines: Uint8Array;
  /**
   * Per row: the line's length in UTF-16 code units (what the writer's push boundaries are
   * computed from, see part.ts), or -1 when the row did not decode.
   */
  chars: Int32Array;
  /** Per row: the line's length in bytes within `lines` (0 for a row that did not decode). */
  bytes: Int32Array;
  /** The rows that did not decode: their position in the batch and why. */
  failed: { at: number; error: DecodeError }[];
}

export function buildLines(batch: LineBatch): LineBatchResult {
  const n = batch.heads.length;
  const chars = new Int32Array(n);
  const bytes = new Int32Array(n);
  const failed: LineBatchResult['failed'] = [];
  const lines: string[] = [];
  let total = 0;
  for (let i = 0; i < n; i++) {
    const from = i === 0 ? 0 : (batch.gzEnds[i - 1] ?? 0);
    const gz = batch.gz.subarray(from, batch.gzEnds[i] ?? from);
    const text = decodeBlob(gz, batch.encodings[i] ?? '');
    if (!text.ok) {
      chars[i] = -1;
      failed.push({ at: i, error: text.error });
      continue;
    }
    // Same bytes as stringifying the row merged with {content}, without copying 26 properties.
    const head = batch.heads[i] ?? '{}';
    const sep = head === '{}' ? '' : ',';
    const line = `${head.slice(0, -1)}${sep}${batch.contentKey}:${JSON.stringify(text.value)}}\n`;
    const len = Buffer.byteLength(line, 'utf8');
    chars[i] = line.length;
    bytes[i] = len;
    total += len;
    lines.push(line);
  }
  // Not Buffer.from(): small buffers come from Node's shared pool, whose ArrayBuffer must not be
  // transferred to another thread.
  const out = Buffer.allocUnsafeSlow(total);
  let at = 0;
  for (const line of lines) at += out.write(line, at, 'utf8');
  return { lines: out, chars, bytes, failed };
}
