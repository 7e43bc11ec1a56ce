/**
 * Everything the engine says, as data. Only lib/report.ts turns events into text.
 */
import type { Failure } from './errors.js';
import type { FailureSummary } from './keep-going.js';
import type { RunReason, StageName, TaskId } from './model.js';
import type { RetryNotice } from './util/retry.js';

export type RunEvent =
  | { type: 'plan'; round: number; run: number; skip: number; blocked: number }
  | { type: 'task-started'; task: TaskId; stage: StageName; reason: RunReason; attempt: number }
  | {
      type: 'task-succeeded';
      task: TaskId;
      stage: StageName;
      ms: number;
      counts: Record<string, number>;
    }
  | { type: 'task-failed'; task: TaskId; stage: StageName; failure: Failure }
  | { type: 'task-blocked'; task: TaskId; stage: StageName; because: TaskId }
  /**
   * Retrying `what` (attempt n) after `waitMs` because `reason`: a task's attempt (`task` set) or
   * a request to a store or the Hub (no `task`). Content fetches of pack are only counted.
   */
  | ({ type: 'retry'; task?: TaskId } & RetryNotice)
  | { type: 'progress'; task: TaskId; stage: StageName; rows: number; bytes: number }
  | { type: 'note'; task: TaskId; message: string }
  /** `stackflow verify` checked a finished task's outputs (bytes: of its outputs). */
  | {
      type: 'verified';
      task: TaskId;
      stage: StageName;
      bytes: number;
      problems: VerifyProblem[];
    }
  | { type: 'warning'; message: string }
  /** How this process runs pack on this host, and why (lib/sizing.ts). */
  | { type: 'sizing'; summary: string; reasons: string[] }
  | {
      type: 'run-finished';
      ok: boolean;
      interrupted: boolean;
      succeeded: number;
      failed: number;
      skipped: number;
      blocked: number;
      /** Task attempts repeated after a transient failure. */
      retries: number;
      /** Requests to S3 or the Hub repeated after a transient failure (429, 5xx, reset). */
      requestRetries: number;
      ms: number;
      /** Peak resident memory of this process, in MB. */
      peakRssMb: number;
      /** Where the outputs are: the bucket, as a path relative to the cwd where it is local. */
      outputs?: string;
      /** Every task that failed in this run: reason, last error, what it blocked, how to retry. */
      failures: FailureSummary[];
      /** Tasks left unstarted because `--fail-fast` stopped the run at its first failure. */
      notStarted: number;
      /** The process's blob-fetch window, when a pack used it (lib/util/fetch-window.ts). */
      fetch?: FetchSummary;
    }
  /** A plain run waits for another one that holds the state (see lib/run-lock.ts). */
  | { type: 'state-locked'; holder: string; host: string; pid?: number; since: string };

/** Something wrong with a finished task's output (or its marker), found by `stackflow verify`. */
export interface VerifyProblem {
  kind: 'missing' | 'size' | 'sha256' | 'marker-damaged' | 'unreadable';
  store: 'work' | 'bucket' | 'state';
  key: string;
  /** What the marker says (size or sha256). */
  expected?: string;
  /** What the store holds. */
  actual?: string;
  detail?: string;
}

/** Where events go. */
export type Emit = (e: RunEvent) => void;

/** Totals per stage for the progress display. */
export interface StageTotals {
  stage: StageName;
  total: number;
  skipped: number;
}

/**
 * What the process's fetching did in a run (`run-finished`): the GETs of every window (the
 * shared adaptive one and packs' fixed ones), and the adaptive window's state.
 */
export interface FetchSummary {
  /** The window's ceiling: the host's sizing decision (`run --dry-run` prints it); null: none. */
  ceiling: number | null;
  /**
   * The adaptive window's bound at the end (the packs' bounds within the ceiling) and its limit
   * then (AIMD); 1 and 1 when only fixed windows fetched.
   */
  max: number;
  limit: number;
  /** GETs that took a slot in any window, and the most in flight at once over all of them. */
  requests: number;
  peakInFlight: number;
  /** Throttled answers (503 SlowDown …), and the adaptive window's cuts they caused. */
  throttles: number;
  decreases: number;
  /** Most bytes of fetched blobs waiting for their turn in the packs' reorder buffers at once. */
  peakHeldBytes: number;
  /** GETs sent a second time because the first was slow to answer (hedged; within `requests`). */
  hedged: number;
  /** Packs that fetched through a fixed window of their own (`window: fixed`). */
  fixedWindows: number;
}
