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
      /** Anything the user has to fix: bad params, an unsupported URL scheme, a missing tool. */
      reason: 'invalid-input';
      message: string;
    }
  | {
      /** An exception escaped a task: a bug, reported with its stack for the issue tracker. */
      reason: 'internal-error';
      message: string;
      stack?: string;
    };

/** True for failures that a retry may cure. */
export const isTransient = (f: Failure): boolean =>
  f.reason === 'transient' || f.reason === 'timeout';

/** Turns an exception caught at a task boundary into a Failure (the task-boundary catch). */
export function convertExceptionToFailure(e: unknown, signal?: AbortSignal): Failure {
  if (signal?.aborted === true) return { reason: 'aborted', message: 'interrupted' };
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ECONNRESET' || code === 'ETIMEDOUT' || code === 'EPIPE' || code === 'EAI_AGAIN') {
      return { reason: 'transient', message: e.message };
    }
    if (e.name === 'AbortError') return { reason: 'aborted', message: 'interrupted' };
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
