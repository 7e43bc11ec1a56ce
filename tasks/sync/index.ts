/**
 * sync (per parquet): copies its dependencies' work-store outputs to the bucket under `prefix`.
 * What the kind is; run.ts runs it.
 */
import { defineTask, fields, maybeCount, noMetrics, prefixProblem } from '../../lib/task-api.js';
import type { ParamsOf, ParamsSchema } from '../../lib/task-api.js';

/** The schema of its `params:` (defaults and key order enter fingerprints: keep them). */
const params = {
  type: 'object',
  additionalProperties: false,
  properties: {
    prefix: {
      description: 'Key prefix inside the bucket; empty or ending with /.',
      type: 'string',
      default: '',
      maxLength: 1024,
    },
  },
} as const satisfies ParamsSchema;

/** The params a task of this kind gets: validated and defaulted. */
export type SyncParams = ParamsOf<typeof params>;

export default defineTask({
  kind: 'sync',
  version: '1',
  tools: {},
  params,
  foreach: 'parquet',
  templates: (p) => fields(p, 'prefix'),
  writes: (p) => fields(p, 'prefix'),
  checks: { prefix: prefixProblem },
  // It reports progress per object put (a parquet is up to ~2 GB): 30m is < 1.2 MB/s.
  limits: { timeout: '2h', stall: '30m' },
  outputs: {
    bucket: (_task, p, upstreamWork) => upstreamWork.map((k) => p.prefix + k),
    bucketPrefix: (p) => p.prefix,
  },
  metrics: (c) => ({ ...noMetrics(), bytes: maybeCount(c.bytes) }),
  run: async (ctx) => (await import('./run.js')).run(ctx),
});
