/**
 * bench/scale.ts `scaling`: the same pack with the CLI pinned (taskset) to 1 core and to 2 cores,
 * alternating (1, 2, 1, 2 … for `repeats`), rows/s compared by their medians. The loopback
 * servers stay unpinned: on a 2-core machine they share the cores with the CLI either way (their
 * CPU is recorded per run). Target: 2 cores ≥ 1.7× 1 core.
 */
import type { Env } from './scale-env.js';
import { brief, latencyPatch, pack } from './scale-env.js';
import type { PackRun } from './scale-run.js';
import { median, round } from './stats.js';

export interface ScalingInputs {
  rows: number;
  latencyMs: number;
  window: number;
  windowMode: 'fixed' | 'adaptive';
  /** Runs per core count. */
  repeats: number;
  /** The two CPU lists compared. */
  cpus: [string, string];
}

export const SCALING_TARGET = 1.7;

export async function scaling(env: Env, i: ScalingInputs) {
  await env.swh.setConfig(latencyPatch(i.latencyMs));
  const one: PackRun[] = [];
  const two: PackRun[] = [];
  for (let k = 0; k < i.repeats; k++) {
    one.push(await pack(env, i.rows, i.window, { windowMode: i.windowMode, cpus: i.cpus[0] }));
    two.push(await pack(env, i.rows, i.window, { windowMode: i.windowMode, cpus: i.cpus[1] }));
  }
  const r1 = median(one.map((p) => p.rowsPerSecond));
  const r2 = median(two.map((p) => p.rowsPerSecond));
  const ratio = round(r2 / Math.max(1, r1), 3);
  return {
    inputs: i,
    note: 'the CLI pinned with taskset; the two loopback servers unpinned (they share the cores)',
    one: one.map(brief),
    two: two.map(brief),
    oneRowsPerSecond: Math.round(r1),
    twoRowsPerSecond: Math.round(r2),
    ratio,
    pass: ratio >= SCALING_TARGET,
    target: `2 cores ≥ ${String(SCALING_TARGET)}× 1 core (rows/s, medians)`,
    packs: [...one, ...two],
  };
}
