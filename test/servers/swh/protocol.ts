/**
 * What the synthetic Software Heritage (server.ts, a child process) and its test-side handle
 * (harness.ts) say to each other over the control API, which lives under CONTROL_PREFIX on the
 * S3 port itself (bucket names cannot contain `_`, so no S3 request reaches it):
 *
 *   GET  /__swh/config        the config in force (model.ts SwhConfig)
 *   PUT  /__swh/config        a SwhConfigPatch, applied at once (e.g. a new rate limit mid-run);
 *                             answers the new config, or 400 with every error
 *   GET  /__swh/stats         counters since the last reset (SwhStats)
 *   POST /__swh/stats/reset   zeroes the counters and the timeline
 *   POST /__swh/pool/warm     makes every pooled body now (benchmarks, before timing)
 */
import type { Outcome } from './model.js';

export const CONTROL_PREFIX = '/__swh/';

/** One second of the timeline (seconds counted from the last reset). */
export interface SecondStats {
  second: number;
  /** Requests that arrived in this second, and how they were answered. */
  requests: number;
  ok: number;
  slowDown: number;
  /** Most requests in flight (arrived, not yet answered) at any moment of this second. */
  maxInFlight: number;
}

export interface SwhStats {
  /** Object requests (GET and HEAD) since the reset. */
  requests: number;
  byOutcome: Record<Outcome, number>;
  /** Requests refused before any model ran: bad method, bad path, not our bucket. */
  rejected: number;
  /** Body bytes sent. */
  bytes: number;
  inFlight: number;
  maxInFlight: number;
  /** ms since the reset. */
  elapsedMs: number;
  /** The server process's CPU (user + system) since the reset, ms. */
  cpuMs: number;
  timeline: SecondStats[];
  /** Pooled bodies made so far. */
  pool: { bodies: number; gzBytes: number };
}

export const OUTCOMES: readonly Outcome[] = [
  'ok',
  'missing',
  'slow-down',
  'internal-error',
  'unavailable',
];
