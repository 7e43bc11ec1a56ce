/**
 * discover (per language): lists `data/<Language>/*.parquet` at the pinned revision and writes the
 * manifest that parquet-level stages expand from. What the kind is; run.ts runs it.
 */
import { defineTask, NO_PARAMS } from '../../lib/task-api.js';

export default defineTask({
  kind: 'discover',
  version: '1',
  tools: {},
  params: NO_PARAMS,
  // One discover stage only (singleDiscover), so its output needs no comparison with another's.
  foreach: 'language',
  // It lists a folder: an hour means something is wrong. It reports no progress while listing.
  limits: { timeout: '1h' },
  run: async (ctx) => (await import('./run.js')).run(ctx),
});
