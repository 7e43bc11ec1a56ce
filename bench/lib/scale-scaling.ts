/**
 * bench/scale.ts `scaling`: the same rehearsal pinned (taskset) to 1 core and to 2 cores,
 * alternating (1, 2, 1, 2 … for `repeats`), rows/s compared by their medians. The CLI and the two
 * loopback servers standing in for the stores are pinned to the same cores: the servers' work
 * (~0.2 core at 1,500 GETs/s) grows with the rate, so it weighs the same on both sides. Left
 * unpinned, they had the other core to themselves beside a CLI pinned to one, and shared the two
 * with it: 1 core was helped by a free ~0.2 core that 2 cores did not get (the unpinned figure is
 * kept too, as `unpinnedServers`). Target: 2 cores ≥ 1.7× 1 core.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
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

/** Pins a running process and all its threads to `cpus` (taskset -a -p). */
function pin(pid: number, cpus: string): void {
  const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`taskset ${cpus} ${String(pid)}: ${r.stderr}`);
}

export async function scaling(env: Env, i: ScalingInputs) {
  await env.swh.setConfig(latencyPatch(i.latencyMs));
  const all = `0-${String(availableParallelism() - 1)}`;
  const servers = (cpus: string) => {
    pin(env.swh.pid, cpus);
    pin(env.s3.pid, cpus);
  };
  const run = (cpus: string, pinServers: boolean) => {
    servers(pinServers ? cpus : all);
    return pack(env, i.rows, i.window, { windowMode: i.windowMode, cpus });
  };
  const one: PackRun[] = [];
  const two: PackRun[] = [];
  const unpinned: { one: PackRun[]; two: PackRun[] } = { one: [], two: [] };
  try {
    for (let k = 0; k < i.repeats; k++) {
      one.push(await run(i.cpus[0], true));
      two.push(await run(i.cpus[1], true));
    }
    // Once more with the servers unpinned, as this part measured before.
    unpinned.one.push(await run(i.cpus[0], false));
    unpinned.two.push(await run(i.cpus[1], false));
  } finally {
    servers(all);
  }
  const rate = (runs: PackRun[]) => median(runs.map((p) => p.rowsPerSecond));
  const r1 = rate(one);
  const r2 = rate(two);
  const ratio = round(r2 / Math.max(1, r1), 3);
  return {
    inputs: i,
    note: 'the CLI and the two loopback servers pinned to the same cores with taskset',
    one: one.map(brief),
    two: two.map(brief),
    oneRowsPerSecond: Math.round(r1),
    twoRowsPerSecond: Math.round(r2),
    ratio,
    pass: ratio >= SCALING_TARGET,
    target: `2 cores ≥ ${String(SCALING_TARGET)}× 1 core (rows/s, medians)`,
    unpinnedServers: {
      note: 'the CLI pinned, the servers free on every core (one run each)',
      oneRowsPerSecond: Math.round(rate(unpinned.one)),
      twoRowsPerSecond: Math.round(rate(unpinned.two)),
      ratio: round(rate(unpinned.two) / Math.max(1, rate(unpinned.one)), 3),
      one: unpinned.one.map(brief),
      two: unpinned.two.map(brief),
    },
    packs: [...one, ...two, ...unpinned.one, ...unpinned.two],
  };
}
