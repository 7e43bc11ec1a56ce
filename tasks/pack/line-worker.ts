/**
 * Worker-thread entry of the line pool (line-pool.ts): builds the lines of one batch at a time and
 * sends them back, moving (not copying) the result buffers.
 */
import { parentPort } from 'node:worker_threads';
import type { LineBatch } from './lines.js';
import { buildLines } from './lines.js';

/** One request: a batch and the id its answer is matched with. */
export interface LineRequest {
  id: number;
  batch: LineBatch;
}

const port = parentPort;
if (port === null) throw new Error('Internal error: line-worker.ts must run in a worker thread');
port.on('message', (req: LineRequest) => {
  const result = buildLines(req.batch);
  port.postMessage({ id: req.id, result }, [
    result.lines.buffer as ArrayBuffer,
    result.chars.buffer as ArrayBuffer,
    result.bytes.buffer as ArrayBuffer,
  ]);
});
