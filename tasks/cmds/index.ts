/**
 * cmds (per parquet): an s5cmd command file with one `cp <source>/<blob_id> <dest>` per row. What
 * the kind is; run.ts runs it.
 */
import { defineTask } from '../../lib/task-api.js';

export default defineTask({
  kind: 'cmds',
  // 2: paths quoted by copyLine (was "…"), NULL blob_ids are skipped rows.
  version: '2',
  tools: {},
  run: async (ctx) => (await import('./run.js')).run(ctx),
});
