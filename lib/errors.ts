/**
 * Expected failures are values; exceptions are bugs.
 *
 * Owns: `Result`, the `Failure` union (tagged by `reason`), config `Diagnostic`s and `unreachable`.
 */

/** The outcome of an operation that can fail in an expected way. */
export type Result<T, E = Failure> = { ok: true; value: T } | { ok: false; error: E };

export const ok = <T>(value: T): { ok: true; value: T } => ({ ok: true, value });
export const err = <E>(error: E): { ok: false; error: E } => ({ ok: false, error });

/** Why a task (or a store operation) failed. Every variant carries a human message. */
export type Failure =
  | {
      reason: 'not-found';
      /** What was missing (an object key, a file path). */
      key: string;
      message: string;
    }
  | {
      reason: 'precondition-failed';
      /** The key whose conditional write lost. */
      key: string;
      message: string;
    }
  | {
      /** Network or server trouble worth retrying (5xx, reset, timeout, SlowDown). */
      reason: 'transient';
      message: string;
      /** The store asked us to slow down (503 SlowDown, 429, Throttling): fetch windows shrink. */
      throttled?: boolean;
    }
  | {
      /** Bytes did not match what a manifest or marker promised. */
      reason: 'checksum-mismatch';
      key: string;
      expected: string;
      actual: string;
      message: string;
    }
  | {
      /** Too many rows of a pack part could not be produced. */
      reason: 'too-many-bad-rows';
      message: string;
    }
  | {
      /** A `shell` task's command exited non-zero. */
      reason: 'task-exit-non-zero';
      exitCode: number | null;
      message: string;
    }
  | {
      /** A declared output is absent or differs after the task ran. */
      reason: 'output-missing';
      key: string;
      message: string;
    }
  | {
      /** An attempt ran past its stage's `timeout:` and was stopped (retried like `transient`). */
      reason: 'timeout';
      message: string;
    }
  | {
      /** The run was interrupted (SIGINT) while the task ran. */
      reason: 'aborted';
      message: string;
    }
  | {
      /**
       * The run lost its state lock (lib/run-lock.ts) while the task ran, and stopped it: the
       * message says why the lock was lost and what to do. Nothing of the task is written to
       * the state (it may be another run's now), no failure record either.
       */
      reason: 'lock-lost';
      message: string;
    }
  | {
      /** Anything the user has to fix: bad params, an unsupported URL scheme, a missing tool. */
      reason: 'invalid-input';
      message: string;
    }
  | {
      /** The OS or a server refused access (EACCES, EPERM, EROFS; HTTP 401/403). */
      reason: 'permission-denied';
      message: string;
    }
  | {
      /** A host could not be reached (DNS, refused or unroutable connection); retried. */
      reason: 'network-unreachable';
      message: string;
    }
  | {
      /** The disk (or quota) is full. */
      reason: 'disk-full';
      message: string;
    }
  | {
      /** A file that must be a parquet is not one DuckDB can read (wrong bytes, truncated). */
      reason: 'not-a-parquet';
      message: string;
    }
  | {
      /** A path that would lead out of its store's root (a symlink pointing outside); not read. */
      reason: 'unsafe-path';
      key: string;
      message: string;
    }
  | {
      /** An exception escaped a task: a bug, reported with its stack for the issue tracker. */
      reason: 'internal-error';
      message: string;
      stack?: string;
    };

/**
 * True for failures that a retry may cure. An unreachable network is one: on a fleet a DNS or
 * routing blip is common, and a wrong endpoint costs only the bounded retries.
 */
export const isTransient = (f: Failure): boolean =>
  f.reason === 'transient' || f.reason === 'timeout' || f.reason === 'network-unreachable';

/**
 * An expected failure thrown through code that cannot return a Result (a generator, a callback
 * of a library); the task boundary (`convertExceptionToFailure`) turns it back into its Failure.
 */
export class FailureError extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
    this.name = 'FailureError';
  }
}

/**
 * The reason a run's signal aborts with when something other than an interrupt stops the run (a
 * lost state lock): the failure every task it stops reports, instead of "interrupted".
 */
export class RunStopped extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
    this.name = 'RunStopped';
  }
}

/** The failure of a task stopped because `signal` aborted: why the run was stopped. */
export function stoppedFailure(signal: AbortSignal): Failure {
  const why: unknown = signal.reason;
  return why instanceof RunStopped ? why.failure : { reason: 'aborted', message: 'interrupted' };
}

/** errno codes → the failure they mean (what happened, in the user's words). */
type ErrnoReason = 'permission-denied' | 'disk-full' | 'network-unreachable' | 'transient';
const ERRNO_REASONS: Readonly<Record<string, { reason: ErrnoReason; what: string }>> = {
  EACCES: { reason: 'permission-denied', what: 'permission denied' },
  EPERM: { reason: 'permission-denied', what: 'operation not permitted' },
  EROFS: { reason: 'permission-denied', what: 'read-only file system' },
  ENOSPC: { reason: 'disk-full', what: 'no space left on device' },
  EDQUOT: { reason: 'disk-full', what: 'disk quota exceeded' },
  ENOTFOUND: { reason: 'network-unreachable', what: 'host not found' },
  EAI_AGAIN: { reason: 'network-unreachable', what: 'host name lookup failed' },
  ECONNREFUSED: { reason: 'network-unreachable', what: 'connection refused' },
  ENETUNREACH: { reason: 'network-unreachable', what: 'network unreachable' },
  EHOSTUNREACH: { reason: 'network-unreachable', what: 'host unreachable' },
  ENETDOWN: { reason: 'network-unreachable', what: 'network is down' },
  ECONNRESET: { reason: 'transient', what: 'connection reset' },
  ETIMEDOUT: { reason: 'transient', what: 'timed out' },
  EPIPE: { reason: 'transient', what: 'broken pipe' },
};

/** The errno code of `e` or of one of its causes (fetch wraps the socket error). */
function errnoOf(e: Error): string | undefined {
  for (let cur: unknown = e, n = 0; cur instanceof Error && n < 6; cur = cur.cause, n++) {
    const code = (cur as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && Object.hasOwn(ERRNO_REASONS, code)) return code;
  }
  return undefined;
}

/**
 * The failure an OS or network error code means, with `where` (what was being done) in its
 * message; undefined when `e` (or its causes) has no code we know.
 */
export function errnoFailure(e: unknown, where: string): Failure | undefined {
  if (!(e instanceof Error)) return undefined;
  const code = errnoOf(e);
  const known = code === undefined ? undefined : ERRNO_REASONS[code];
  if (code === undefined || known === undefined) return undefined;
  return { reason: known.reason, message: `${where}: ${known.what} (${code})` };
}

/**
 * Turns an exception caught at a task boundary into a Failure (the task-boundary catch): what
 * happened when it is known (permission denied, disk full, network unreachable, a Failure thrown
 * as FailureError), else `internal-error` — a bug, with its stack kept for `--debug`.
 */
export function convertExceptionToFailure(e: unknown, signal?: AbortSignal): Failure {
  if (signal?.aborted === true) return stoppedFailure(signal);
  if (e instanceof FailureError) return e.failure;
  if (e instanceof Error) {
    if (e.name === 'AbortError') return { reason: 'aborted', message: 'interrupted' };
    const code = errnoOf(e);
    const known = code === undefined ? undefined : ERRNO_REASONS[code];
    if (code !== undefined && known !== undefined) {
      const message = e.message.includes(code)
        ? `${known.what}: ${e.message}`
        : `${known.what} (${code}): ${e.message}`;
      return { reason: known.reason, message };
    }
    return { reason: 'internal-error', message: e.message, ...(e.stack ? { stack: e.stack } : {}) };
  }
  return { reason: 'internal-error', message: String(e) };
}

/** A position in a source file, 1-based line and column. */
export interface Location {
  /** File name as shown to the user (relative to cwd when possible). */
  file: string;
  line: number;
  column: number;
  /** Length of the underline, at least 1. */
  length: number;
}

/** A config problem pointing at the YAML that caused it. */
export interface Diagnostic {
  severity: 'error' | 'warning';
  message: string;
  location: Location;
  /** Further places that explain the error, e.g. each edge of a dependency cycle. */
  supplemental?: { message: string; location: Location }[];
}

/** Exhaustiveness check for switches over unions. */
export function unreachable(x: never): never {
  throw new Error(`Internal error: unreachable value ${JSON.stringify(x)}`);
}
