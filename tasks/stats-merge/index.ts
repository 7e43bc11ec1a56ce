/**
 * stats-merge (once): merges the per-language statistics into `<prefix>summary.json`. What the
 * kind is; run.ts runs it.
 */
import { defineTask } from '../../lib/task-api.js';

export default defineTask({
  kind: 'stats-merge',
  version: '1',
  tools: {},
  run: async (ctx) => (await import('./run.js')).run(ctx),
});
