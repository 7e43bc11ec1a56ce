/**
 * Plain data types shared by the planner and the executor.
 *
 * Owns: branded ids, the normalized `Pipeline` (what pipeline.yaml means once parsed), task
 * instances (a stage expanded over languages × parquet files) and the `Plan`.
 */
import type { Location } from './errors.js';
import type { S3BucketSettings } from './io/stores/s3-location.js';
import type { registry } from '../tasks/index.js';

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** `<stage>:<language>/<file stem>` (parquet level), `<stage>:<language>` or `<stage>`. */
export type TaskId = Brand<string, 'TaskId'>;
/** A stage name as declared under `tasks:` in pipeline.yaml. */
export type StageName = Brand<string, 'StageName'>;
/** sha256 hex of a canonical FingerprintData. */
export type FingerprintHash = Brand<string, 'FingerprintHash'>;
/** A key inside an object store (no leading slash). */
export type ObjectKey = Brand<string, 'ObjectKey'>;

export const stageName = (s: string): StageName => s as StageName;
export const objectKey = (s: string): ObjectKey => {
  if (s.startsWith('/') || s.includes('\0')) throw new Error(`Internal error: bad object key ${s}`);
  return s as ObjectKey;
};

/**
 * The kinds of task stackflow knows: the keys of the registry (tasks/index.ts), one folder each.
 * Adding one there is a compile error until every table over TaskKind handles it.
 */
export type TaskKind = keyof typeof registry;

/** What a stage is expanded over. */
export type Foreach = 'language' | 'parquet' | 'once';

/** One stage (a task template) of the pipeline, after parsing and defaults. */
export interface StageConfig {
  name: StageName;
  kind: TaskKind;
  /** Stages this one depends on (their instances of the same language / file). */
  needs: StageName[];
  /**
   * Expansion: discover and stats are per language, fetch/cmds/sync/pack per parquet,
   * stats-merge once; shell chooses.
   */
  foreach: Foreach;
  /** Kind-specific parameters after defaults; strings may hold `{language}`-style templates. */
  params: Record<string, unknown>;
  /** Max instances of this stage running at once (in addition to `-j`). */
  limit?: number;
  /** Retries for transient failures. */
  retries: number;
  /** Longest one attempt may run (`timeout:` or the kind's default); absent: no limit. */
  timeoutMs?: number;
  /** Longest an attempt may go without progress (`stall_timeout:`); absent: no limit. */
  stallTimeoutMs?: number;
  /** Where the stage is declared, for diagnostics raised after parsing. */
  location: Location;
}

/** The normalized pipeline.yaml. */
export interface Pipeline {
  /** Absolute path of the pipeline file. */
  file: string;
  dataset: {
    /** Hub repo id, e.g. `bigcode/the-stack-v2`. */
    repo: string;
    /** Pinned revision (a commit sha, or a label for local mirrors). */
    revision: string;
    /** Where parquets come from: `hf://datasets/<repo>` or `file://<dir>` (an HF-shaped mirror). */
    source: string;
    /** Languages to package, or `all` (every folder under `data/`). */
    languages: string[] | 'all';
  };
  content: {
    /** Where blobs come from: `s3://softwareheritage/content` or `file://<dir>/content`. */
    source: string;
  };
  /** The user's bucket for synced parquets, cmd files and packed parts (`s3://` or `file://`). */
  bucket: string;
  /** Where completion markers and manifests live (`file://` by default, under the cache dir). */
  state: string;
  /** Where fetched parquets and cmd files live (`file://` under the cache dir by default). */
  work: string;
  /** Connection settings per S3 bucket name (see lib/io/stores/s3-location.ts). */
  s3: Readonly<Record<string, S3BucketSettings>>;
  /** Stages in declaration order. */
  stages: StageConfig[];
}

/** One parquet file of the dataset, as listed at the pinned revision. */
export interface ManifestEntry {
  /** Path in the repo, e.g. `data/C++/train-00001-of-00002.parquet`. */
  path: string;
  /** File stem, e.g. `train-00001-of-00002`. */
  stem: string;
  size: number;
  sha256: string;
}

/** What discover produced for one language. */
export interface Manifest {
  language: string;
  revision: string;
  files: ManifestEntry[];
}

/** A stage instantiated for one language / parquet file: a node of the task graph. */
export interface TaskInstance {
  id: TaskId;
  stage: StageName;
  kind: TaskKind;
  language?: string;
  file?: ManifestEntry;
  /** Params with templates resolved for this instance. */
  params: Record<string, unknown>;
  /** Tasks that must be complete before this one runs. */
  deps: TaskId[];
}

/** A stage whose instances cannot be listed yet because a language's manifest is unknown. */
export interface PendingExpansion {
  /** e.g. `pack:C++/*`. */
  id: TaskId;
  stage: StageName;
  language: string;
  /** The discover task whose manifest is needed. */
  awaiting: TaskId;
}

/** Why a task runs. */
export type RunReason =
  | 'missing'
  | 'input-changed'
  | 'params-changed'
  | 'code-changed'
  | 'output-missing'
  | 'forced'
  /** Its marker turned out damaged or gone when a dependent read it (see lib/scheduler.ts). */
  | 'state-damaged';

export type PlanStep =
  | { action: 'run'; task: TaskId; stage: StageName; reason: RunReason; detail?: string }
  | { action: 'skip'; task: TaskId; stage: StageName; reason: 'fresh' }
  | {
      action: 'blocked';
      task: TaskId;
      stage: StageName;
      reason: 'awaiting-manifest';
      detail: string;
    };

export interface Plan {
  /** Steps in a valid run order (dependencies first). */
  steps: PlanStep[];
}
