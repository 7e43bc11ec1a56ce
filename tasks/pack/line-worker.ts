/**
 * Worker-thread entry of the line pool (line-pool.ts): builds the lines of one batch at a time and
 * sends them back, moving (not copying) the result buffers.
 *
 * A batch of local files (lines.ts `files`) is read here, with blocking calls: off the main thread
 * a blocking read costs its system calls and nothing else, where the main thread's promise round
 * trips per file (open, fstat, read, close) were most of its time.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { LineBatch, LineBatchResult } from './lines.js';
import { buildLines } from './lines.js';
import type { MainSlotMessage, RemoteFetcher } from './remote-fetch.js';

/** One request: a batch and the id its answer is matched with. */
export interface LineRequest {
  type: 'build';
  id: number;
  batch: LineBatch;
}

/** An answer: the batch's lines, or (a remote batch) the failure that stopped it. */
export type LineAnswer =
  | { type: 'built'; id: number; result: LineBatchResult }
  | { type: 'broken'; id: number; message: string };

/** Files up to this size are read into one reused buffer; a larger one gets its own. */
const SCRATCH_MAX = 8 << 20;
let scratch = Buffer.allocUnsafeSlow(1 << 20);

/**
 * The bytes of a regular file, or undefined on any failure (missing, a directory, a symlink, not a
 * regular file, too many open files, ...): the caller then fetches the blob through its store. The bytes
 * are valid until the next call.
 */
function readFileSyncOrUndefined(path: string): Uint8Array | undefined {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO must not block the worker; it changes nothing for regular files.
    // O_NOFOLLOW: a symlink is never read here (it might lead out of the content store's root);
    // the store's `get` decides about it, and refuses one that leads out.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return undefined;
    const size = st.size;
    if (size > scratch.length && size <= SCRATCH_MAX) {
      scratch = Buffer.allocUnsafeSlow(Math.min(SCRATCH_MAX, Math.max(size, 2 * scratch.length)));
    }
    const buf = size <= scratch.length ? scratch : Buffer.allocUnsafeSlow(size);
    let at = 0;
    while (at < size) {
      const got = readSync(fd, buf, at, size - at, at);
      if (got === 0) break;
      at += got;
    }
    // Shorter than fstat said: the file changed under us (a store never does that); let the store
    // answer rather than decode a torn blob.
    return at === size ? buf.subarray(0, size) : undefined;
  } catch {
    return undefined;
  } finally {
    try {
      closeSync(fd);
    } catch {
      // Nothing to do: the bytes (or the failure) are already decided.
    }
  }
}

const port = parentPort;
if (port === null) throw new Error('Internal error: line-worker.ts must run in a worker thread');

function answer(id: number, result: LineBatchResult): void {
  port?.postMessage({ type: 'built', id, result } satisfies LineAnswer, [
    result.lines.buffer as ArrayBuffer,
    result.chars.buffer as ArrayBuffer,
    result.bytes.buffer as ArrayBuffer,
  ]);
}

/** Loaded on the first remote batch: it brings the SDK (see remote-fetch.ts). */
let remote: Promise<RemoteFetcher> | undefined;
const remoteFetcher = (): Promise<RemoteFetcher> =>
  (remote ??= import('./remote-fetch.js').then(
    (m) =>
      new m.RemoteFetcher((msg) => {
        port.postMessage(msg);
      }),
  ));

port.on('message', (req: LineRequest | MainSlotMessage) => {
  if (req.type !== 'build') {
    void remoteFetcher().then((f) => {
      f.onMessage(req);
    });
    return;
  }
  if (req.batch.blobs.kind !== 'remote') {
    answer(req.id, buildLines(req.batch, readFileSyncOrUndefined));
    return;
  }
  const { id, batch } = req;
  remoteFetcher()
    .then((f) => f.build(id, batch))
    .then(
      (result) => {
        answer(id, result);
      },
      (e: unknown) => {
        port.postMessage({
          type: 'broken',
          id,
          message: e instanceof Error ? e.message : String(e),
        } satisfies LineAnswer);
      },
    );
});
