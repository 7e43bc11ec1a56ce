/**
 * pack's lines when the line workers fetch the blobs (a content store a worker thread can open
 * again: S3). The main thread only reads rows and cuts batches; each batch goes to a line worker,
 * which fetches its blobs from its own client (every GET in a slot of the main thread's fetch
 * window, see remote-fetch.ts) and builds its lines. Batches come back out of order and are put
 * back in row order by a reorder buffer bounded in bytes (reorder.ts).
 *
 *   rows ─▶ describeRow ─▶ remoteBatches ─▶ worker: GETs (slots lent by the main thread),
 *                                                   gunzip, decode, JSON
 *                                          ─▶ reorder buffer ─▶ lines, in row order ─▶ zstd writer
 */
import type { LinePool } from './line-pool.js';
import { windowId } from './line-pool.js';
import { reorderMap } from './reorder.js';
import type { PartJob } from './part.js';
import type { At, Built, Fetched, RowMeta } from './rows.js';
import {
  BATCH_ROWS,
  describeRow,
  inFlightBatches,
  lineBatch,
  reorderBytes,
  settle,
  settled,
} from './rows.js';

/**
 * The lines of rows whose blobs the line workers fetch (remote-fetch.ts): batches of rows go to
 * the workers in row order, `remoteBatchesInFlight` at once, and their lines come back out of
 * order, put back in order by a reorder buffer (reorder.ts) of `reorderBytes`. A batch slowed by
 * a straggling GET frees no slot, but the batches after it do: the window stays busy.
 */
export function remoteLines(
  numbered: AsyncIterable<{ index: number; values: Record<string, unknown> }>,
  job: PartJob,
  remote: NonNullable<PartJob['remote']>,
  pool: LinePool,
): AsyncIterable<Built[]> {
  const rows = (async function* () {
    for await (const r of numbered) yield describeRow(r);
  })();
  return reorderMap(
    remoteBatches(rows),
    {
      concurrency: remoteBatchesInFlight(job.params.concurrency, job.params.lineWorkers),
      maxBytes: reorderBytes(job.params.concurrency),
      bytesOf: builtBytes,
      signal: job.signal,
      ...(job.onHeld ? { onHeld: job.onHeld } : {}),
    },
    (b) => buildRemote(b, job, remote, pool),
    job.reorder,
  );
}

/** What a built batch holds while it waits for its turn. */
const builtBytes = (b: Built[]): number => {
  let n = 0;
  for (const it of b) n += 64 + (it.kind === 'line' ? it.line.byteLength : 256);
  return n;
};

/**
 * Remote batches being fetched at once: a window's worth of rows, plus a few batches more, since
 * a batch ends with its slowest GET (the latency's p99 is several times its median) and the
 * batches behind it keep the window busy meanwhile; at least enough to keep the workers busy.
 * (A probe at 20 ms, window 256, 1 worker: 6 batches ran ~5% faster than 3.)
 */
const remoteBatchesInFlight = (concurrency: number, lineWorkers: number): number =>
  Math.max(inFlightBatches(lineWorkers), Math.ceil(concurrency / BATCH_ROWS) + 5);
/** A remote batch also ends once its rows' texts (`length_bytes`) reach this (bounds its memory). */
const REMOTE_BATCH_TEXT_BYTES = 16 << 20;

/** A row for a remote batch: its metadata, or why it has no blob to fetch. */
type RemoteRow = RowMeta | Extract<Fetched, { kind: 'error' }>;

/** Consecutive rows, cut at BATCH_ROWS or REMOTE_BATCH_TEXT_BYTES of text. */
async function* remoteBatches(
  source: AsyncIterable<RemoteRow>,
): AsyncGenerator<RemoteRow[], void, undefined> {
  let items: RemoteRow[] = [];
  let textBytes = 0;
  for await (const it of source) {
    items.push(it);
    if (!('kind' in it)) textBytes += it.textBytes;
    if (items.length >= BATCH_ROWS || textBytes >= REMOTE_BATCH_TEXT_BYTES) {
      yield items;
      items = [];
      textBytes = 0;
    }
  }
  if (items.length > 0) yield items;
}

/** A remote batch's lines: its rows' blobs fetched and built by a line worker. */
async function buildRemote(
  items: RemoteRow[],
  job: PartJob,
  remote: NonNullable<PartJob['remote']>,
  pool: LinePool,
): Promise<Built[]> {
  const out: (Built | undefined)[] = new Array<Built | undefined>(items.length);
  const at: At<RowMeta>[] = [];
  items.forEach((row, i) => {
    if ('kind' in row) out[i] = row;
    else at.push({ i, row });
  });
  if (at.length > 0) {
    const batch = lineBatch(job.contentKey, at, {
      kind: 'remote',
      ids: at.map((r) => r.row.blobId),
      store: remote.store,
      window: windowId(remote.window),
    });
    const res = await pool.build(batch, {
      window: remote.window,
      signal: job.signal,
      ...(remote.onRetry ? { onRetry: remote.onRetry } : {}),
    });
    settle(res, at, out, []);
  }
  return settled(out);
}
