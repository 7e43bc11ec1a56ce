/**
 * pack (per parquet): every row with its decoded file content, in `.jsonl.zst` parts in the
 * bucket. What the kind is; run.ts runs it (part.ts packs one part, fetchers.ts gets the blobs).
 */
import { defineTask, packageVersion } from '../../lib/task-api.js';

export default defineTask({
  kind: 'pack',
  version: '1',
  tools: { duckdb: packageVersion('@duckdb/node-api'), zstd: packageVersion('@mongodb-js/zstd') },
  // Both fetchers, any concurrency and any number of line workers write the same bytes (tested):
  // no rerun when they change, and hosts of different sizes agree on every fingerprint.
  runtimeParams: [
    'concurrency',
    'line_workers',
    'fetcher',
    'window',
    's5cmd_path',
    's5cmd_workers',
  ],
  run: async (ctx) => (await import('./run.js')).run(ctx),
});
