/**
 * The only module tasks/ import from lib/ (eslint.config.js holds the boundary): the task
 * contract, what a task receives, and the parts of lib/ tasks use.
 *
 * A task kind is `defineTask({kind, version, tools, params, foreach, …, run})` in
 * `tasks/<kind>/index.ts` (CONTRIBUTING.md lists the fields). `run(ctx)` gets everything through
 * `ctx`, its params typed by the kind's schema, and returns its outputs (already published) as a
 * Result; the executor then verifies them and writes the completion marker. Bumping `version`
 * reruns every task of the kind.
 */
// First: what tasks/<kind>/index.ts call while loading (defineTask, NO_PARAMS, packageVersion).
// lib/graph.ts reaches the registry (lib/kinds.ts), so these must not wait for the rest.
export { defineTask, NO_PARAMS } from './kind.js';
export { packageVersion } from './util/package-version.js';
import type { Failure, Result } from './errors.js';
import type { Fingerprint } from './fingerprint.js';
import type { HubSource } from './io/hub/hub.js';
import type { OutputRecord, PartLedger } from './io/state/markers.js';
import type { ObjectStore } from './io/stores/object-store.js';
import type { Shell } from './io/process/shell.js';
import type { S3BucketSettings } from './io/stores/s3-location.js';
import type { Manifest, ManifestEntry, TaskId, TaskInstance, TaskKind } from './model.js';
import type {
  KindMetrics,
  KindOutputs,
  KindTraits,
  ParamsOf,
  ParamsSchema,
  RawParams,
} from './kind.js';
import { objectKey } from './model.js';
import { localCopy } from './io/fs/files.js';
import { workParquetKey } from './layout.js';

export type { Failure, Result } from './errors.js';
export type { Field, KindMetrics, ParamsOf, ParamsSchema, RawParams } from './kind.js';
export { count, fields, maybeCount, noMetrics, prefixProblem } from './kind.js';
export { quote } from './config/diagnostics.js';
export { err, ok } from './errors.js';
export type { Manifest, ManifestEntry, TaskInstance } from './model.js';
export { objectKey } from './model.js';
export type { ObjectStore, ObjectInfo } from './io/stores/object-store.js';
export type { OutputRecord, PartRecord } from './io/state/markers.js';
export type { LanguageStats } from './report-html/types.js';
export {
  cmdKey,
  errorsKeyFor,
  packFamilyPrefix,
  packPartKey,
  parsePartKey,
  statsKey,
  statsSummaryKey,
  workParquetKey,
} from './layout.js';
export { listAll } from './io/stores/object-store.js';
export { shardOf, templateVars } from './graph.js';
export { shellScript } from './shell-command.js';
export type { S5cmdCopy } from './io/s5cmd.js';
export { checkS5cmd, copyLine, judgeBatch, runS5cmd, writeRunFile } from './io/s5cmd.js';
export { writeManifest } from './io/state/markers.js';
export { unreachable } from './errors.js';
export { withRetry } from './util/retry.js';
export type { RetryOptions } from './util/retry.js';
export { flatten, orderedMap } from './util/ordered.js';
export type { FetchWindowStats } from './util/fetch-window.js';
export { fixedFetchWindow, sharedFetchWindow } from './util/fetch-window.js';
export type { S3BucketSettings, S3Location } from './io/stores/s3-location.js';
export { resolveS3Location } from './io/stores/s3-location.js';
export type { ThreadStoreSpec } from './io/stores/thread-store.js';
export { openThreadStore } from './io/stores/thread-store.js';
export type { Slot, SlotOutcome } from './util/fetch-window.js';
export { FetchWindow } from './util/fetch-window.js';

/** DuckDB's module (lib/io/duckdb.ts), loaded on first use: planning never needs it. */
const duckdb = (): Promise<typeof import('./io/duckdb.js')> => import('./io/duckdb.js');
type DuckDB = typeof import('./io/duckdb.js');

/** Runs `fn` with a DuckDB connection (lib/io/duckdb.ts `withDuckDB`; DuckDB loads on first use). */
export const withDuckDB: DuckDB['withDuckDB'] = async (...args) =>
  (await duckdb()).withDuckDB(...args);

/** The number of rows of a parquet (DuckDB loads on first use). */
export const parquetRowCount: DuckDB['parquetRowCount'] = async (...args) =>
  (await duckdb()).parquetRowCount(...args);

/** A parquet's rows in a range, in batches (DuckDB loads on first use). */
export const streamParquetRows: DuckDB['streamParquetRows'] = async function* (...args) {
  yield* (await duckdb()).streamParquetRows(...args);
};

/** One column of a parquet, in batches (DuckDB loads on first use). */
export const streamColumn: DuckDB['streamColumn'] = async function* (...args) {
  yield* (await duckdb()).streamColumn(...args);
};

/** Progress a task reports while it runs (deltas). */
export interface ProgressDelta {
  rows?: number;
  bytes?: number;
}

/** Everything a task may touch. */
export interface TaskContext<P = RawParams> {
  task: TaskInstance;
  /** The task's params (`task.params`), typed by its kind's schema: validated and defaulted. */
  params: P;
  fingerprint: Fingerprint;
  pipeline: {
    /** Directory of pipeline.yaml: relative globs resolve against it. */
    dir: string;
    repo: string;
    revision: string;
    contentSource: string;
    bucketUrl: string;
    /** Per-bucket S3 connection settings from pipeline.yaml (resolve with resolveS3Location). */
    s3: Readonly<Record<string, S3BucketSettings>>;
  };
  stores: { work: ObjectStore; bucket: ObjectStore; state: ObjectStore };
  hub: HubSource;
  /** Software Heritage contents, keyed by blob id. */
  content: ObjectStore;
  /** Outputs of this task's dependencies, read from their markers. */
  upstream: ReadonlyMap<TaskId, { kind: TaskKind; outputs: OutputRecord[] }>;
  /** A zx `$` bound to the scratch dir and the run's abort signal. */
  $: Shell;
  signal: AbortSignal;
  /** A private, empty directory, removed after the task. */
  scratch: string;
  /** Per-part completion records (pack). */
  parts: PartLedger;
  progress(delta: ProgressDelta): void;
  /** A line worth telling the user (a warning, a summary). */
  note(message: string): void;
  /** A request the task retried itself (pack's content GETs): counted in the run's retries. */
  onRetry?: (failure: Failure) => void;
}

/** What a task returns on success. */
export interface TaskResult {
  /** Published outputs; each is verified (size, sha256) before the marker is written. */
  outputs: OutputRecord[];
  counts: Record<string, number>;
  /** discover only: the listing downstream stages expand from. */
  manifest?: Manifest;
}

/**
 * What the executor needs of a task kind: its identity in fingerprints and its run. Declared,
 * with the rest of the kind (`KindDefinition`), in `tasks/<kind>/index.ts`.
 */
export interface TaskDefinition<K extends string = TaskKind, P = RawParams> {
  kind: K;
  /** Implementation version: part of every fingerprint of this kind. */
  version: string;
  /** Library versions that shape the output bytes. */
  tools: Record<string, string>;
  /**
   * Params that change how a task runs but never what it writes (concurrency, fetcher): left out
   * of its fingerprint, so changing them reruns nothing.
   */
  runtimeParams?: readonly string[];
  /**
   * Local files a task of this kind reads besides its parquet (e.g. a shell stage's `inputs`
   * globs), as absolute paths under the pipeline's directory. Their digests enter its
   * fingerprint (lib/inputs.ts gathers them; lib/fingerprint.ts fingerprintGraph keys them).
   */
  localInputFiles?(params: P, pipelineDir: string): Promise<string[]>;
  /** Runs one task; gets everything through `ctx`, its params typed and defaulted. */
  run(ctx: TaskContext<P>): Promise<Result<TaskResult>>;
}

/**
 * A task kind as lib/ reads it: its run, and everything the planner side knows about it (the
 * traits in lib/kind.ts). One per folder `tasks/<kind>/`, listed once in tasks/index.ts.
 */
export interface KindDefinition<K extends string = TaskKind, P = RawParams>
  extends TaskDefinition<K, P>, KindTraits {
  /**
   * The schema of its `params:` in pipeline.yaml (lib/kind.ts): validation, defaults, their
   * canonical key order, and the params type its hooks and `run` get. The pipeline's JSON Schema
   * is assembled from these (lib/config/schema.ts).
   */
  params: ParamsSchema;
  /** Where it writes, for the planner's check of a finished task's outputs. */
  outputs?: KindOutputs<P>;
  /** What its counts mean for the report's totals and throughput; default: nothing. */
  metrics?(counts: Readonly<Record<string, number>>): KindMetrics;
}

/**
 * A definition as a kind's folder writes it: `S` is its params schema (read `as const`), and the
 * params its hooks and `run` get are of the type the schema describes, validated and defaulted
 * when pipeline.yaml was read.
 */
export interface TypedKindDefinition<
  K extends string,
  S extends ParamsSchema,
> extends KindDefinition<K, ParamsOf<S>> {
  params: S;
  runtimeParams?: readonly (keyof S['properties'] & string)[];
}

export { publishFile, holdsSame, localCopy, writeHashed } from './io/fs/files.js';
export { ensureDir } from './io/fs/mkdirs.js';

/** A local path of the parquet that fetch put in the work store (in place, or a scratch copy). */
export function localParquet(
  ctx: Pick<TaskContext, 'stores' | 'scratch' | 'signal'>,
  file: ManifestEntry,
): Promise<Result<string>> {
  return localCopy(ctx.stores.work, objectKey(workParquetKey(file)), ctx.scratch, ctx.signal);
}
