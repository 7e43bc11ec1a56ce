/**
 * bench/scale.ts `adaptive`: pack's adaptive fetch window (AIMD, `window: adaptive`) through the
 * CLI against the synthetic SWH's bucket-wide rate limit. R1 and R2 are set from what pack takes
 * here unthrottled (a calibration pack: P GETs/s; by default R1 = 0.5 P, R2 = 0.8 P, so both are
 * below what this machine's CPU allows), the run starts at R1 and the limit is raised to R2 after
 * `phaseSeconds`. Targets: ≥ 0.9 R1 in the steady part of the first phase with < 5% of all
 * requests answered SlowDown, and the raised limit reached (0.9 R2, 3-second mean) after the raise.
 */
import type { Env } from './scale-env.js';
import { brief, latencyPatch, pack } from './scale-env.js';
import type { PackRun, TimelinePoint } from './scale-run.js';
import { median, round } from './stats.js';

export interface AdaptiveInputs {
  latencyMs: number;
  /** pack's `concurrency`: the window's upper bound. */
  window: number;
  /** [R1, R2] GETs/s; derived from the calibration pack when absent. */
  rates?: [number, number];
  /** Shares of the calibration rate P for R1 and R2 when `rates` is absent. */
  shares: [number, number];
  /** Seconds at R1 before the raise, and (about) after it. */
  phaseSeconds: number;
  /** Seconds at the start of each phase left out of the steady-state rate. */
  warmupSeconds: number;
  calibrationRows: number;
}

export const SHARE_TARGET = 0.9;
export const SLOWDOWN_TARGET = 0.05;

const mean = (xs: number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
const admitted = (t: TimelinePoint) => t.gets - t.slowDown;

/**
 * PURE: the figures of one adaptive run from its per-second timeline (seconds since pack
 * started), the limits and the second the limit was raised.
 */
export function analyzeAdaptive(
  timeline: readonly TimelinePoint[],
  r1: number,
  r2: number,
  raiseAt: number,
  warmup: number,
) {
  // The last two seconds are the pack's tail (its last GETs, then writing the last part).
  const end = Math.max(0, timeline.length - 2);
  const phase1 = timeline.filter((t) => t.s < raiseAt);
  const steady1 = phase1.filter((t) => t.s >= warmup && t.s < raiseAt - 1);
  const rate1 = mean(steady1.map(admitted));
  const after = timeline.filter((t) => t.s >= raiseAt && t.s < end);
  let recoveredAt: number | null = null;
  for (let k = 0; k + 2 < after.length; k++) {
    const m = mean(after.slice(k, k + 3).map(admitted));
    if (m >= SHARE_TARGET * r2) {
      recoveredAt = after[k]?.s ?? null;
      break;
    }
  }
  const steady2 = recoveredAt === null ? [] : after.filter((t) => t.s >= recoveredAt);
  const gets = timeline.reduce((a, t) => a + t.gets, 0);
  const slow = timeline.reduce((a, t) => a + t.slowDown, 0);
  const gets1 = phase1.reduce((a, t) => a + t.gets, 0);
  const slow1 = phase1.reduce((a, t) => a + t.slowDown, 0);
  const shareOfLimit = round(rate1 / r1, 3);
  const slowDownShare = round(slow / Math.max(1, gets), 4);
  return {
    /** Admitted GETs/s in the steady part of phase 1, and as a share of R1. */
    rate1: Math.round(rate1),
    shareOfLimit,
    steadySeconds1: steady1.length,
    /** SlowDown answers over all requests: the whole run, and phase 1 alone. */
    slowDownShare,
    slowDownShare1: round(slow1 / Math.max(1, gets1), 4),
    /** Seconds from the raise until the 3-second mean reached 0.9 R2 (null: never). */
    recoverySeconds: recoveredAt === null ? null : recoveredAt - raiseAt,
    /** Admitted GETs/s after the recovery, and as a share of R2. */
    rate2: Math.round(mean(steady2.map(admitted))),
    shareOfLimit2: round(mean(steady2.map(admitted)) / r2, 3),
    pass: shareOfLimit >= SHARE_TARGET && slowDownShare < SLOWDOWN_TARGET && recoveredAt !== null,
  };
}

export async function adaptive(env: Env, i: AdaptiveInputs) {
  await env.swh.setConfig(latencyPatch(i.latencyMs));
  const packs: PackRun[] = [];
  let calibration: { rows: number; getsPerSecond: number; run: ReturnType<typeof brief> } | null =
    null;
  let rates = i.rates;
  if (rates === undefined) {
    const c = await pack(env, i.calibrationRows, i.window, { windowMode: 'adaptive' });
    packs.push(c);
    // The rate while it ran, not over the task (DuckDB's start and the last part's write).
    const busy = c.timeline.filter((t) => t.gets > 0).map((t) => t.gets);
    const p = busy.length >= 5 ? median(busy) : c.getsPerSecond;
    calibration = { rows: i.calibrationRows, getsPerSecond: Math.round(p), run: brief(c) };
    rates = [Math.round(p * i.shares[0]), Math.round(p * i.shares[1])];
  }
  const [r1, r2] = rates;
  // Enough rows for both phases at their limits, plus a margin.
  const rows = Math.ceil(((r1 + r2) * i.phaseSeconds * 1.15) / 1000) * 1000;
  await env.swh.setConfig({ rateLimit: { perSecond: r1 } });
  const raise: { at: number | null } = { at: null };
  const run = await pack(env, rows, i.window, {
    windowMode: 'adaptive',
    onSecond: async (second) => {
      if (second !== i.phaseSeconds) return;
      await env.swh.setConfig({ rateLimit: { perSecond: r2 } });
      // In the server's timeline's seconds (both count from pack's start, within a tick).
      raise.at = Math.floor((await env.swh.stats()).elapsedMs / 1000);
    },
  });
  packs.push(run);
  await env.swh.setConfig({ rateLimit: { perSecond: null } });
  if (run.timelineStep !== 1)
    throw new Error('adaptive: the run was too long for a per-second timeline');
  const figures =
    raise.at === null ? null : analyzeAdaptive(run.timeline, r1, r2, raise.at, i.warmupSeconds);
  return {
    inputs: i,
    calibration,
    limit: r1,
    raisedLimit: r2,
    raisedAtSecond: raise.at,
    rows,
    ...(figures ?? { pass: false, note: 'the pack ended before the raise' }),
    targets: `≥ ${String(SHARE_TARGET)} R1 with < ${String(SLOWDOWN_TARGET * 100)}% SlowDown; ${String(SHARE_TARGET)} R2 reached after the raise`,
    run,
    packs,
  };
}
