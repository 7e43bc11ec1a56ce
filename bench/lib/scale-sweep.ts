/**
 * bench/scale.ts `sweep`: pack's end-to-end GET rate against the bare SDK GET loop (scale-bare.ts)
 * at the same latency and window, for every latency × window cell. Each cell runs bare, pack,
 * bare, one after the other, and compares pack with the mean of the two bare runs, so a drift of
 * the machine during the cell hits both sides; the two bare runs' spread is recorded. Target:
 * pack ≥ 0.8× bare.
 */
import type { Env } from './scale-env.js';
import { NOISY_OTHERS_CORES, bare, latencyPatch, pack } from './scale-env.js';
import type { PackRun } from './scale-run.js';
import { cpuSplit } from './scale-run.js';
import { round } from './stats.js';

export interface SweepInputs {
  latenciesMs: number[];
  windows: number[];
  /** Rows of the shard each cell packs. */
  cellRows: number;
  /** Seconds of each of the cell's two bare runs (after a 2 s warm-up). */
  bareSeconds: number;
  /** pack's `window:`; `fixed` keeps exactly `window` GETs in flight, as the bare loop does. */
  windowMode: 'fixed' | 'adaptive';
}

export const SWEEP_TARGET = 0.8;

export async function sweep(env: Env, i: SweepInputs) {
  const cells = [];
  const packs: PackRun[] = [];
  let offset = 0;
  for (const latencyMs of i.latenciesMs) {
    await env.swh.setConfig(latencyPatch(latencyMs));
    for (const window of i.windows) {
      const before = bare(env, window, i.bareSeconds, (offset += 10_000_000));
      const p = await pack(env, i.cellRows, window, { windowMode: i.windowMode });
      const after = bare(env, window, i.bareSeconds, (offset += 10_000_000));
      packs.push(p);
      const bareRate = (before.getsPerSecond + after.getsPerSecond) / 2;
      const ratio = round(p.getsPerSecond / Math.max(1, bareRate), 3);
      const sdkMsPerGet = (before.cpuMsPerGet + after.cpuMsPerGet) / 2;
      console.error(
        `  ${String(latencyMs)} ms × ${String(window)}: pack ${String(p.getsPerSecond)} GETs/s, bare ${String(before.getsPerSecond)} / ${String(after.getsPerSecond)}: ${String(ratio)}×`,
      );
      cells.push({
        latencyMs,
        window,
        rows: i.cellRows,
        pack: p,
        bare: [before, after],
        bareGetsPerSecond: Math.round(bareRate),
        /** |before − after| / their mean: how much the machine moved during the cell. */
        bareSpread: round(
          Math.abs(before.getsPerSecond - after.getsPerSecond) / Math.max(1, bareRate),
          3,
        ),
        /** pack GETs/s over the bare loop's, same latency and window. */
        ratio,
        cpuSecondsPer1MRows: cpuSplit(p, sdkMsPerGet, env.zstd.cpuSecondsPerMB),
        noisy: p.othersCores > NOISY_OTHERS_CORES,
        pass: ratio >= SWEEP_TARGET,
      });
    }
  }
  await env.swh.setConfig(latencyPatch(20));
  return {
    inputs: i,
    target: `pack GETs/s ≥ ${String(SWEEP_TARGET)}× the bare SDK loop at equal latency and window (bare, pack, bare per cell; the mean of the two bare runs)`,
    cells,
    pass: cells.every((c) => c.pass),
    packs,
  };
}
