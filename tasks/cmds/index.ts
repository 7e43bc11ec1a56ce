/**
 * cmds (per parquet): an s5cmd command file with one `cp <source>/<blob_id> <dest>` per row. What
 * the kind is; run.ts runs it.
 */
import { cmdKey, defineTask, fields, maybeCount, noMetrics } from '../../lib/task-api.js';
import type { ParamsOf, ParamsSchema } from '../../lib/task-api.js';

/** The schema of its `params:` (defaults and key order enter fingerprints: keep them). */
const params = {
  type: 'object',
  additionalProperties: false,
  properties: {
    dest: {
      description: 's5cmd destination template inside the bucket; must contain {blob_id}.',
      type: 'string',
      minLength: 1,
      default: 'blobs/{blob_id}.gz',
      maxLength: 1024,
    },
    source: {
      description: 'Content source URL (s3:// or file://). Default: content.source.',
      type: 'string',
      minLength: 1,
      maxLength: 4096,
    },
  },
} as const satisfies ParamsSchema;

/** The params a task of this kind gets: validated and defaulted. */
export type CmdsParams = ParamsOf<typeof params>;

export default defineTask({
  kind: 'cmds',
  // 2: paths quoted by copyLine (was "…"), NULL blob_ids are skipped rows.
  version: '2',
  tools: {},
  params,
  foreach: 'parquet',
  templates: (p) => fields(p, 'dest', ['blob_id']),
  writes: (p) => fields(p, 'dest'),
  checks: {
    dest: (v) =>
      v.includes('{blob_id}') ? undefined : 'must contain {blob_id}: each blob gets its own object',
  },
  // Blobs may come from elsewhere than content.source (a mirror), which is the default.
  urls: { source: { schemes: ['s3', 'file'], orContentSource: true } },
  // It reads one column of one parquet.
  limits: { timeout: '1h', stall: '15m' },
  outputs: {
    work: (task) => (task.file && task.language ? [cmdKey(task.language, task.file.stem)] : []),
  },
  metrics: (c) => ({ ...noMetrics(), rows: maybeCount(c.rows) }),
  run: async (ctx) => (await import('./run.js')).run(ctx),
});
