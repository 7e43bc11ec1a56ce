/**
 * The fleet rehearsal's slot-time split (bench/lib/fleet-timeline.ts): every slot-second of the
 * pack phase is planned work, body time beyond the plan, or idle (start-up, between tasks, tail),
 * and the parts add up; lost claims are set against their winner.
 */
import { describe, expect, it } from 'vitest';
import { claimTimes, slotTime } from '../../bench/lib/fleet-timeline.js';
import type { TimelineEvent } from '../../bench/lib/fleet-timeline.js';
import type { ProxiedRequest } from '../../bench/lib/fleet-proxy.js';

const T = 1_000_000;
const ev = (worker: number, s: number, type: string, task: string, ms?: number): TimelineEvent => ({
  worker,
  at: T + s * 1000,
  type,
  task,
  stage: 'pack',
  ...(ms !== undefined ? { ms } : {}),
});

describe('fleet rehearsal timeline', () => {
  it('splits the pack phase into planned work, bodies beyond plan and idle slots, adding up', () => {
    // Worker 0 (2 slots): A and B, then C in the slot A freed; worker 1 starts late, runs D.
    const events = [
      ev(0, 0, 'task-started', 'A'),
      ev(0, 0.5, 'task-started', 'B'),
      ev(0, 1, 'task-succeeded', 'A', 1000),
      ev(0, 1.2, 'task-started', 'C'),
      ev(1, 1.4, 'task-started', 'D'),
      ev(0, 1.5, 'task-succeeded', 'B', 1000),
      ev(0, 1.7, 'task-succeeded', 'C', 500),
      ev(1, 2, 'task-succeeded', 'D', 600),
    ];
    const planned = new Map([
      ['A', 1],
      ['B', 1],
      ['C', 0.5],
      ['D', 0.4],
    ]);
    const s = slotTime(events, { stage: 'pack', jobs: 2, workers: 2, planned });
    expect(s.slotS).toBe(8); // 4 slots × 2 s
    expect(s.plannedS).toBe(2.9);
    expect(s.bodyOverS).toBe(0.2); // D: 0.6 s for 0.4 planned
    expect(s.startupIdleS).toBe(2.8); // worker 1: 2 slots × 1.4 s
    // Worker 0: one slot idle 0–0.5 and 1–1.2; worker 1: its other slot 1.4–1.4 (last start).
    expect(s.betweenIdleS).toBe(0.7);
    // After the last start (1.4 s): worker 0 one slot 1.5–1.7, both 1.7–2; worker 1 one slot.
    expect(s.tailIdleS).toBe(1.4);
    expect(s.plannedS + s.bodyOverS + s.startupIdleS + s.betweenIdleS + s.tailIdleS).toBeCloseTo(
      s.slotS,
    );
    expect(s.slotGapS).toEqual({ median: 0.2, p90: 0.2, count: 1 });
    expect(s.tailS).toBe(0.6);
  });

  it("times claims and sets each lost one against its winner's answer", () => {
    const r = (key: string, status: number, start: number, end: number): ProxiedRequest => ({
      worker: 0,
      op: 'PutObject(create-only)',
      area: 'state/leases',
      key,
      status,
      start,
      end,
    });
    const c = claimTimes([
      r('state/leases/a/e0', 200, 0, 10),
      r('state/leases/a/e0', 412, 2_010, 2_030),
      r('state/leases/b/e0', 200, 100, 120),
      r('state/leases/b/e0', 412, 400, 440),
    ]);
    expect(c.won).toBe(2);
    expect(c.lost).toBe(2);
    expect(c.lostS).toBe(0.06);
    // a: the winner answered 2 s before; b: 0.28 s before.
    expect(c.lostKnowableWithin2s).toBe(0.5);
    expect(c.lostKnowableWithin500ms).toBe(0.5);
  });
});
