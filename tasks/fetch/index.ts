/**
 * fetch (per parquet): downloads one parquet into the work store, verified against the manifest.
 * What the kind is; run.ts runs it.
 */
import {
  count,
  defineTask,
  maybeCount,
  NO_PARAMS,
  noMetrics,
  workParquetKey,
} from '../../lib/task-api.js';

export default defineTask({
  kind: 'fetch',
  version: '1',
  tools: {},
  params: NO_PARAMS,
  foreach: 'parquet',
  writes: () => [
    {
      path: ['kind'],
      value: 'the parquet files',
      clash: 'two fetch stages download the same parquet files',
    },
  ],
  // One parquet (at most ~2 GB): hours mean something is wrong.
  limits: { timeout: '2h', stall: '15m' },
  outputs: { work: (task) => (task.file ? [workParquetKey(task.file)] : []) },
  metrics: (c) => ({
    ...noMetrics(),
    bytesIn: count(c.bytes),
    bytes: maybeCount(c.bytes),
    gets: 1,
  }),
  run: async (ctx) => (await import('./run.js')).run(ctx),
});
