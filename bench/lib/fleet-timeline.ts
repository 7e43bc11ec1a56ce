/**
 * Where the slot-time of a fleet rehearsal's pack phase went (bench/fleet-rehearsal.ts), from the
 * workers' events and the recording proxy's requests. The phase's slot-time (slots × phase) is
 * split into what the model planned, the task bodies' time beyond it (task-started →
 * task-succeeded, minus the plan), and idle slots:
 *
 * - start-up: a worker's slots before its first task started (its process start, manifests,
 *   first plan came later than the first worker's);
 * - between tasks: a slot freed and the next task not yet started while tasks were still left
 *   to start (claim round trips, lost claims, the dependency's marker read, a stale plan's
 *   view refresh, a new plan round);
 * - tail: after the last task of the run started, slots freed with nothing left to start
 *   (the end-of-run drain).
 *
 * Claims are timed from the proxy (create-only puts of a lease), and each lost one is set
 * against the winner's: how long before the loser's attempt the winning lease existed (a view
 * at most that old would have shown it taken).
 */
import type { ProxiedRequest } from './fleet-proxy.js';
import { median } from './stats.js';

/** A worker event as the timeline reads it (fleet-run.ts `WorkerEvent` plus its worker). */
export interface TimelineEvent {
  worker: number;
  at: number;
  type: string;
  task?: string;
  stage?: string;
  ms?: number;
}

export interface SlotTime {
  /** Slots × pack phase, slot-seconds. */
  slotS: number;
  /** What the model planned for all tasks. */
  plannedS: number;
  /** Task bodies beyond the plan (task-started → task-succeeded, summed, minus `plannedS`). */
  bodyOverS: number;
  /** The same per task: median and 90th percentile, seconds. */
  bodyOverPerTaskS: { median: number; p90: number };
  /** Idle slot-seconds before each worker's first task. */
  startupIdleS: number;
  /** Idle slot-seconds while tasks were left to start. */
  betweenIdleS: number;
  /** Idle slot-seconds after the last task started. */
  tailIdleS: number;
  /** A freed slot's wait for its next task (while tasks were left), seconds: median, p90, count. */
  slotGapS: { median: number; p90: number; count: number };
  /** From the last task started to the phase's end, seconds. */
  tailS: number;
}

export interface ClaimTimes {
  /** Create-only lease puts: won, lost (412). */
  won: number;
  lost: number;
  /** Round trip of a claim's create, as the proxy saw it (ms): median and p90. */
  roundTripMs: { median: number; p90: number };
  /** Slot-seconds spent in lost creates. */
  lostS: number;
  /**
   * For each lost create: how long before it the winner's create had been answered (ms),
   * median and p90; and the share of lost creates a view at most 2 s / 0.5 s old would have
   * answered without a request.
   */
  winnerAheadMs: { median: number; p90: number };
  lostKnowableWithin2s: number;
  lostKnowableWithin500ms: number;
}

const quantile = (xs: readonly number[], q: number): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
};
const r2 = (x: number) => Number(x.toFixed(2));

/**
 * The slot-time split of the pack phase. `planned` maps a task id to its planned seconds;
 * `jobs` is the slots per worker.
 */
export function slotTime(
  events: readonly TimelineEvent[],
  o: { stage: string; jobs: number; workers: number; planned: ReadonlyMap<string, number> },
): SlotTime {
  const ev = events.filter((e) => e.stage === o.stage && e.task !== undefined);
  const starts = ev.filter((e) => e.type === 'task-started');
  const dones = ev.filter((e) => e.type === 'task-succeeded');
  const t0 = Math.min(...starts.map((e) => e.at));
  const t1 = Math.max(...dones.map((e) => e.at));
  const lastStart = Math.max(...starts.map((e) => e.at));
  const slots = o.jobs * o.workers;
  let plannedS = 0;
  let bodyS = 0;
  const over: number[] = [];
  for (const d of dones) {
    const p = o.planned.get(d.task ?? '') ?? 0;
    plannedS += p;
    bodyS += (d.ms ?? 0) / 1000;
    over.push((d.ms ?? 0) / 1000 - p);
  }
  let startupIdleS = 0;
  let betweenIdleS = 0;
  let tailIdleS = 0;
  const gaps: number[] = [];
  for (let w = 0; w < o.workers; w++) {
    const mine = ev
      .filter((e) => e.worker === w && (e.type === 'task-started' || e.type === 'task-succeeded'))
      .sort((a, b) => a.at - b.at);
    const first = mine.find((e) => e.type === 'task-started')?.at ?? t1;
    startupIdleS += (o.jobs * (first - t0)) / 1000;
    // Walk the worker's busy count from its first start; idle slot-time is split at lastStart.
    let busy = 0;
    let at = first;
    const freed: number[] = [];
    const idle = (from: number, to: number, n: number): void => {
      if (to <= from || n <= 0) return;
      const cut = Math.min(Math.max(lastStart, from), to);
      betweenIdleS += (n * (cut - from)) / 1000;
      tailIdleS += (n * (to - cut)) / 1000;
    };
    for (const e of mine) {
      idle(at, e.at, o.jobs - busy);
      at = e.at;
      if (e.type === 'task-started') {
        busy++;
        const f = freed.shift();
        if (f !== undefined) gaps.push((e.at - f) / 1000);
      } else {
        busy--;
        if (e.at < lastStart) freed.push(e.at);
      }
    }
    idle(at, t1, o.jobs - busy);
  }
  return {
    slotS: r2((slots * (t1 - t0)) / 1000),
    plannedS: r2(plannedS),
    bodyOverS: r2(bodyS - plannedS),
    bodyOverPerTaskS: { median: r2(median(over)), p90: r2(quantile(over, 0.9)) },
    startupIdleS: r2(startupIdleS),
    betweenIdleS: r2(betweenIdleS),
    tailIdleS: r2(tailIdleS),
    slotGapS: { median: r2(median(gaps)), p90: r2(quantile(gaps, 0.9)), count: gaps.length },
    tailS: r2((t1 - lastStart) / 1000),
  };
}

/** Lease claims from the proxy: round trips, lost ones, and how far behind their winner. */
export function claimTimes(reqs: readonly ProxiedRequest[]): ClaimTimes {
  const creates = reqs.filter(
    (r) => r.op === 'PutObject(create-only)' && r.area === 'state/leases',
  );
  const wonAt = new Map<string, number>();
  for (const r of creates) if (r.status < 300) wonAt.set(r.key, r.end);
  const lost = creates.filter((r) => r.status === 412);
  const ahead = lost.flatMap((r) => {
    const w = wonAt.get(r.key);
    return w === undefined ? [] : [r.start - w];
  });
  return {
    won: creates.length - lost.length,
    lost: lost.length,
    roundTripMs: {
      median: r2(median(creates.map((r) => r.end - r.start))),
      p90: r2(
        quantile(
          creates.map((r) => r.end - r.start),
          0.9,
        ),
      ),
    },
    lostS: r2(lost.reduce((a, r) => a + (r.end - r.start), 0) / 1000),
    winnerAheadMs: { median: r2(median(ahead)), p90: r2(quantile(ahead, 0.9)) },
    lostKnowableWithin2s: r2(ahead.filter((a) => a >= 2000).length / Math.max(1, lost.length)),
    lostKnowableWithin500ms: r2(ahead.filter((a) => a >= 500).length / Math.max(1, lost.length)),
  };
}
