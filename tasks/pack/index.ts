/**
 * pack (per parquet): every row with its decoded file content, in `.jsonl.zst` parts in the
 * bucket. What the kind is; run.ts runs it (part.ts packs one part, fetchers.ts gets the blobs).
 */
import {
  count,
  defineTask,
  fields,
  maybeCount,
  packageVersion,
  packFamilyPrefix,
  prefixProblem,
  quote,
  shardOf,
} from '../../lib/task-api.js';
import type { ParamsOf, ParamsSchema } from '../../lib/task-api.js';

/** The schema of its `params:` (defaults and key order enter fingerprints: keep them). */
const params = {
  type: 'object',
  additionalProperties: false,
  properties: {
    rows_per_part: {
      description: 'Rows per packed parquet part.',
      type: 'integer',
      minimum: 1,
      maximum: 100000000,
      default: 16384,
    },
    content_field: {
      description: 'Name of the added column holding file contents; must not be a dataset column.',
      type: 'string',
      minLength: 1,
      default: 'content',
      maxLength: 256,
    },
    max_missing_rate: {
      description: 'Fraction of rows whose blob may be missing before the part fails.',
      type: 'number',
      minimum: 0,
      maximum: 1,
      default: 0.01,
    },
    concurrency: {
      description:
        "Blob fetches in flight per pack, at most. Default: the host's share (the process's fetch window, at most 2048, divided by the packs running at once; see `run --dry-run`).",
      type: 'integer',
      minimum: 1,
      maximum: 4096,
    },
    zstd_level: {
      description: 'zstd compression level.',
      type: 'integer',
      minimum: 1,
      maximum: 19,
      default: 3,
    },
    frame_bytes: {
      description: 'Uncompressed bytes per zstd frame.',
      type: 'integer',
      minimum: 65536,
      maximum: 1073741824,
      default: 8388608,
    },
    prefix: {
      description: 'Key prefix of packed parts inside the bucket; empty or ending with /.',
      type: 'string',
      default: 'packed/',
      maxLength: 1024,
    },
    fetcher: {
      description:
        'How blobs are fetched: "sdk" (each row\'s blob through the content store; needs nothing outside npm) or "s5cmd" (one `s5cmd run` per part into the scratch dir, then joined from disk; needs s5cmd installed and an s3:// content source). Parts are byte-identical either way.',
      enum: ['sdk', 's5cmd'],
      default: 'sdk',
    },
    window: {
      description:
        'How many blob fetches are in flight (fetcher: sdk): "adaptive" (one window per process, shared by its packs: shrinks on 503 SlowDown, grows while latency stays flat, at most the packs\' `concurrency`) or "fixed" (always `concurrency`). Changes how pack runs, not what it writes.',
      enum: ['adaptive', 'fixed'],
      default: 'adaptive',
    },
    s5cmd_path: {
      description:
        'The s5cmd executable for fetcher: s5cmd: a name looked up on PATH, or a path (relative to pipeline.yaml). Releases: https://github.com/peak/s5cmd/releases.',
      type: 'string',
      minLength: 1,
      default: 's5cmd',
      maxLength: 4096,
    },
    s5cmd_workers: {
      description: 's5cmd --numworkers for fetcher: s5cmd: downloads in flight.',
      type: 'integer',
      minimum: 1,
      maximum: 65536,
      default: 256,
    },
    line_workers: {
      description:
        "Worker threads per pack that gunzip, decode and build JSON lines. Default: from the host's cores (at most 3; see `run --dry-run`). Changes how pack runs, not what it writes.",
      type: 'integer',
      minimum: 1,
      maximum: 64,
    },
  },
} as const satisfies ParamsSchema;

/** The params a task of this kind gets: validated and defaulted. */
export type PackStageParams = ParamsOf<typeof params>;

/** The 26 columns of a the-stack-v2 parquet row; `content_field` must not shadow one. */
export const DATASET_COLUMNS: readonly string[] = [
  'blob_id', 'directory_id', 'path', 'content_id', 'detected_licenses', 'license_type',
  'repo_name', 'snapshot_id', 'revision_id', 'branch_name', 'visit_date', 'revision_date',
  'committer_date', 'github_id', 'star_events_count', 'fork_events_count', 'gha_license_id',
  'gha_event_created_at', 'gha_created_at', 'gha_language', 'src_encoding', 'language',
  'is_vendor', 'is_generated', 'length_bytes', 'extension',
]; // prettier-ignore

export default defineTask({
  kind: 'pack',
  version: '1',
  tools: { duckdb: packageVersion('@duckdb/node-api'), zstd: packageVersion('@mongodb-js/zstd') },
  params,
  // Both fetchers, any concurrency and any number of line workers write the same bytes (tested):
  // no rerun when they change, and hosts of different sizes agree on every fingerprint.
  runtimeParams: [
    'concurrency',
    'line_workers',
    'fetcher',
    'window',
    's5cmd_path',
    's5cmd_workers',
  ],
  foreach: 'parquet',
  templates: (p) => fields(p, 'prefix'),
  writes: (p) => fields(p, 'prefix'),
  checks: {
    prefix: prefixProblem,
    content_field: (v) =>
      DATASET_COLUMNS.includes(v)
        ? `collides with the dataset column ${quote(v)}; pick a name that is not one of the 26 columns (default "content")`
        : undefined,
  },
  // No timeout: a part's blobs take as long as the content store needs; a pack that stops moving
  // is caught by the stall watchdog.
  limits: { stall: '15m' },
  outputs: {
    partFamily: (task, p) =>
      task.file === undefined || task.language === undefined
        ? undefined
        : packFamilyPrefix(p.prefix, task.language, shardOf(task.file.stem)),
    bucketPrefix: (p) => p.prefix,
  },
  metrics: (c) => ({
    rowsIn: count(c.rows),
    rowsOut: count(c.written),
    bytesIn: 0,
    bytesOut: count(c.zst_bytes),
    rows: maybeCount(c.rows),
    bytes: maybeCount(c.raw_bytes),
    gets: count(c.rows),
  }),
  run: async (ctx) => (await import('./run.js')).run(ctx),
});
