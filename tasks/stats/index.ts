/**
 * stats (per language, after pack): statistics of the packed parts, computed by DuckDB. What the
 * kind is; run.ts runs it.
 */
import { defineTask, packageVersion } from '../../lib/task-api.js';

export default defineTask({
  kind: 'stats',
  version: '1',
  tools: { duckdb: packageVersion('@duckdb/node-api') },
  run: async (ctx) => (await import('./run.js')).run(ctx),
});
