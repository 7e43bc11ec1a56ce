/**
 * stats-merge (once): merges the per-language statistics into `<prefix>summary.json`. What the
 * kind is; run.ts runs it.
 */
import { defineTask, fields, prefixProblem, statsSummaryKey } from '../../lib/task-api.js';
import type { ParamsOf, ParamsSchema } from '../../lib/task-api.js';

/** The schema of its `params:` (defaults and key order enter fingerprints: keep them). */
const params = {
  type: 'object',
  additionalProperties: false,
  properties: {
    prefix: {
      description: 'Key prefix of summary.json inside the bucket; empty or ending with /.',
      type: 'string',
      default: 'stats/',
    },
  },
} as const satisfies ParamsSchema;

/** The params a task of this kind gets: validated and defaulted. */
export type StatsMergeParams = ParamsOf<typeof params>;

export default defineTask({
  kind: 'stats-merge',
  version: '1',
  tools: {},
  params,
  foreach: 'once',
  templates: (p) => fields(p, 'prefix'),
  writes: (p) => fields(p, 'prefix'),
  checks: { prefix: prefixProblem },
  reads: 'stats',
  // It reads one small file per language.
  limits: { timeout: '1h' },
  outputs: {
    bucket: (_task, p) => [statsSummaryKey(p.prefix)],
    bucketPrefix: (p) => p.prefix,
  },
  run: async (ctx) => (await import('./run.js')).run(ctx),
});
