/**
 * The data a report page is drawn from: built by model.ts (pure, in Node), inlined into the HTML
 * as JSON by render.ts, read by the client bundle in web/. This file imports nothing, so both
 * sides (Node and the browser) compile against the same shape.
 *
 * Times are ms since the epoch as stamped by the hosts that ran the tasks (marker `startedAt` /
 * `finishedAt`, lease `claimedAt`): the report draws them, it never judges by them.
 */

/** Where a task stands, as `stackflow status` counts it. */
export type TaskState = 'done' | 'running' | 'failed' | 'stale' | 'pending';

/** The stage × language counters of the progress table and the header totals. */
export interface Counters {
  /** Task instances known (blocked expansions excluded: their number is not known yet). */
  tasks: number;
  done: number;
  running: number;
  failed: number;
  stale: number;
  pending: number;
  /** Expansions waiting for a language's manifest (one per stage × language). */
  blocked: number;
  /** Input rows read by pack tasks (done, plus the finished parts of running ones). */
  rowsIn: number;
  /** Rows written into packed parts. */
  rowsOut: number;
  /** Parquet bytes fetched (fetch tasks). */
  bytesIn: number;
  /** Compressed bytes of packed parts. */
  bytesOut: number;
  /** Rows left out of the parts, by reason (`missing`, `corrupt_gzip`, `undecodable`). */
  notPacked: Record<string, number>;
  /** Sum of task durations of done tasks, ms. */
  busyMs: number;
}

export interface StageInfo {
  name: string;
  kind: string;
  foreach: string;
  needs: string[];
  /** Colour index (stable per stage, in declaration order). */
  color: number;
}

/** One task instance, as drawn on the timeline and listed in tooltips. */
export interface TaskView {
  id: string;
  /** Index into `ReportModel.stages`. */
  stage: number;
  language?: string;
  state: TaskState;
  /** Index into `ReportModel.lanes` when the task ran (done or running). */
  lane?: number;
  /** Row within its lane: tasks a worker ran at the same time stack (`-j`). */
  slot?: number;
  start?: number;
  end?: number;
  /** Rows the task read (pack, cmds, stats). */
  rows?: number;
  /** Bytes the task moved (fetch: parquet bytes; pack: JSON bytes packed; sync: uploaded). */
  bytes?: number;
  /** Attempts in the run that finished it (1 + transient retries), when the marker says. */
  attempts?: number;
  /** Lease epoch of the claim (> 0: taken over from a silent holder). */
  epoch?: number;
  /** Running pack: parts finished of total. */
  parts?: [number, number];
}

/** One lane of the timeline: a worker on a host. */
export interface Lane {
  host: string;
  worker: string;
  /** Rows the lane needs: the most tasks this worker ran at once. */
  slots: number;
}

export interface FailedTask {
  task: string;
  stage: string;
  language?: string;
  reason: string;
  message: string;
  /** When the failure was recorded (ms), if the record says. */
  at?: number;
  host?: string;
  worker?: string;
  attempts?: number;
}

/** Rows a language's pack tasks left out, by reason, and the `.errors.jsonl` objects listing them. */
export interface NotPackedRow {
  language: string;
  counts: Record<string, number>;
  /** `.errors.jsonl` objects, as URLs (`file://…` or `s3://…`). */
  files: string[];
}

/** Throughput per time bucket. Arrays are aligned with `ReportModel.throughput.t`. */
export interface Series {
  rowsPerS: number[];
  mbPerS: number[];
  getsPerS: number[];
  /** Tasks that finished within the bucket. */
  finished: number[];
}

/** A node or an edge of the DAG pictures (stages always; tasks when the graph is small). */
export interface DagView {
  nodes: {
    id: string;
    label: string;
    stage: number;
    state?: TaskState;
    done?: number;
    total?: number;
  }[];
  edges: [string, string][];
}

/** Dataset statistics (the stats stages' `summary.json`), shown when present. */
export interface StatsView {
  /** Where the numbers come from (`s3://…/stats/summary.json`). */
  source: string;
  /** Per language: the stats task's JSON (see tasks/stats/). */
  languages: Record<string, LanguageStats>;
}

/** The per-language statistics file a `stats` task writes (`stats/<Language>.json`); its one home. */
export interface LanguageStats {
  language: string;
  rows: number;
  content_bytes: number;
  lines: number;
  /** Percentiles of `length_bytes`: p50, p90, p99, max. */
  length: { p50: number; p90: number; p99: number; max: number };
  generated_share: number;
  vendor_share: number;
  license_type: Record<string, number>;
  src_encoding: Record<string, number>;
  top_extensions: Record<string, number>;
  not_packed: Record<string, number>;
}

export interface ReportModel {
  /** Layout version of this object. */
  schema: 1;
  generatedAt: number;
  pipeline: {
    file: string;
    repo: string;
    revision: string;
    source: string;
    state: string;
    bucket: string;
  };
  totals: Counters;
  stages: StageInfo[];
  /** Stage × language rows (a once stage has language `''`). */
  progress: ({ stage: number; language: string } & Counters)[];
  lanes: Lane[];
  tasks: TaskView[];
  /** Leases whose holder went silent past its TTL. */
  staleLeases: { task: string; worker: string; host: string }[];
  throughput: {
    /** Bucket start times (ms). */
    t: number[];
    /** Bucket width (ms). */
    stepMs: number;
    fleet: Series;
    hosts: Record<string, Series>;
  };
  errors: { failed: FailedTask[]; retry: string[]; notPacked: NotPackedRow[] };
  dag: { stages: DagView; tasks?: DagView };
  stats?: StatsView;
}
