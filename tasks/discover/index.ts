/**
 * discover (per language): lists `data/<Language>/*.parquet` at the pinned revision and writes the
 * manifest that parquet-level stages expand from. What the kind is; run.ts runs it.
 */
import { defineTask } from '../../lib/task-api.js';

export default defineTask({
  kind: 'discover',
  version: '1',
  tools: {},
  run: async (ctx) => (await import('./run.js')).run(ctx),
});
