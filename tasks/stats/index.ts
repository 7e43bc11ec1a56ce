/**
 * stats (per language, after pack): statistics of the packed parts, computed by DuckDB. What the
 * kind is; run.ts runs it.
 */
import {
  defineTask,
  fields,
  maybeCount,
  noMetrics,
  packageVersion,
  prefixProblem,
  statsKey,
} from '../../lib/task-api.js';
import type { ParamsOf, ParamsSchema } from '../../lib/task-api.js';

/** The schema of its `params:` (defaults and key order enter fingerprints: keep them). */
const params = {
  type: 'object',
  additionalProperties: false,
  properties: {
    prefix: {
      description:
        'Key prefix of the per-language statistics (<prefix><Language>.json) inside the bucket; empty or ending with /.',
      type: 'string',
      default: 'stats/',
    },
    top_n: {
      description: 'How many of the most common file extensions to keep.',
      type: 'integer',
      minimum: 1,
      maximum: 10000,
      default: 20,
    },
    content_field: {
      description: "The packed parts' content field (pack's content_field).",
      type: 'string',
      minLength: 1,
      default: 'content',
    },
  },
} as const satisfies ParamsSchema;

/** The params a task of this kind gets: validated and defaulted. */
export type StatsParams = ParamsOf<typeof params>;

export default defineTask({
  kind: 'stats',
  version: '1',
  tools: { duckdb: packageVersion('@duckdb/node-api') },
  params,
  foreach: 'language',
  templates: (p) => fields(p, 'prefix'),
  writes: (p) => fields(p, 'prefix'),
  checks: { prefix: prefixProblem },
  reads: 'pack',
  // No limits: it scans every part of a language in one query (hours for the largest) and
  // reports no progress until it ends.
  outputs: {
    bucket: (task, p) => (task.language === undefined ? [] : [statsKey(p.prefix, task.language)]),
    bucketPrefix: (p) => p.prefix,
  },
  metrics: (c) => ({
    ...noMetrics(),
    rows: maybeCount(c.rows),
    bytes: maybeCount(c.content_bytes),
  }),
  run: async (ctx) => (await import('./run.js')).run(ctx),
});
