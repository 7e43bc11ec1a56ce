/**
 * sync (per parquet): copies its dependencies' work-store outputs to the bucket under `prefix`.
 * What the kind is; run.ts runs it.
 */
import { defineTask } from '../../lib/task-api.js';

export default defineTask({
  kind: 'sync',
  version: '1',
  tools: {},
  run: async (ctx) => (await import('./run.js')).run(ctx),
});
