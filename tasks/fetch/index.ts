/**
 * fetch (per parquet): downloads one parquet into the work store, verified against the manifest.
 * What the kind is; run.ts runs it.
 */
import { defineTask } from '../../lib/task-api.js';

export default defineTask({
  kind: 'fetch',
  version: '1',
  tools: {},
  run: async (ctx) => (await import('./run.js')).run(ctx),
});
