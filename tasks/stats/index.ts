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
  // No timeout: the largest language takes hours (its parts are read at the disk's and DuckDB's
  // pace), and a timeout would kill that and start it over. It reports progress per batch of
  // parts read (a few parts, at most 256 MiB); 30m also covers the sort and counts at the end.
  limits: { stall: '30m' },
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
