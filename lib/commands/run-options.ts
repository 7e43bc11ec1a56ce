/**
 * PURE. `run`'s options, checked once, before anything is read or planned: a dry run refuses
 * exactly what a real run refuses. Also where `--shard` without a value finds its place in a
 * Slurm array.
 */
import type { Result } from '../errors.js';
import { err, ok } from '../errors.js';
import { parseShard } from '../leases.js';

/** `run`'s own options as commander hands them over (camel-cased flags). */
export interface RunOpts {
  dryRun?: boolean;
  json?: boolean;
  jobs?: number;
  packs?: number;
  lineWorkers?: number;
  window?: number;
  force?: boolean | string;
  only?: string[];
  worker?: boolean;
  workerId?: string;
  shard?: boolean | string;
  leaseTtl?: number;
  poll?: number;
  /** Stop starting tasks after the first failure (default: keep going, like make -k). */
  failFast?: boolean;
}

/** How this process shares the graph with others. */
export type RunMode =
  /** Alone (a plain run): takes the state lock so a second plain run waits. */
  | { kind: 'alone' }
  /** One of many workers claiming tasks through leases. */
  | { kind: 'worker'; ttlMs: number }
  /** Static shard `index` of `count` (0-based). */
  | { kind: 'shard'; index: number; count: number };

/** Checks the flags' combinations; the message says what to do instead. */
export function runMode(o: RunOpts, env: NodeJS.ProcessEnv): Result<RunMode> {
  const invalid = (message: string): Result<never> => err({ reason: 'invalid-input', message });
  const forced = o.force !== undefined && o.force !== false;
  if (o.leaseTtl !== undefined && o.worker !== true) {
    return invalid('--lease-ttl only applies to --worker');
  }
  if (o.shard !== undefined && o.shard !== false) {
    if (o.worker === true) return invalid('--worker and --shard exclude each other');
    const spec = o.shard === true ? slurmShard(env) : parseShard(o.shard);
    if (!spec.ok) return spec;
    return ok({ kind: 'shard', ...spec.value });
  }
  if (o.worker !== true) return ok({ kind: 'alone' });
  if (forced) {
    // Each worker would force the tasks again, or none would: a finished claim stays as the
    // record of its fingerprint (lib/leases.ts). Forgetting markers is reset's job, done once.
    return invalid(
      '--force does not combine with --worker: run `stackflow reset <pattern>` once, then start the workers',
    );
  }
  return ok({ kind: 'worker', ttlMs: (o.leaseTtl ?? 60) * 1000 });
}

/**
 * This array task's shard, 0-based, from Slurm's environment. An array started as
 * `--array=1-N` (or `0-15:4`) numbers its tasks from MIN in steps of STEP, so the shard is
 * (ID - MIN) / STEP of (MAX - MIN) / STEP + 1; only without MIN/MAX is ID/COUNT taken as is.
 * An array with gaps (`--array=1,5,9`) cannot be mapped onto shards: it is refused.
 */
export function slurmShard(env: NodeJS.ProcessEnv): Result<{ index: number; count: number }> {
  const num = (name: string): number | undefined => {
    const v = env[name];
    return v !== undefined && /^\d+$/.test(v.trim()) ? Number(v) : undefined;
  };
  const id = num('SLURM_ARRAY_TASK_ID');
  const min = num('SLURM_ARRAY_TASK_MIN');
  const max = num('SLURM_ARRAY_TASK_MAX');
  const step = num('SLURM_ARRAY_TASK_STEP') ?? 1;
  const total = num('SLURM_ARRAY_TASK_COUNT');
  const invalid = (message: string): Result<never> => err({ reason: 'invalid-input', message });
  if (id === undefined) {
    return invalid(
      '--shard without i/N runs inside a Slurm array (it reads SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_MIN/MAX); elsewhere pass --shard i/N (0-based, e.g. --shard 0/4)',
    );
  }
  if (min !== undefined && max !== undefined) {
    const count = step > 0 ? (max - min) / step + 1 : NaN;
    const index = step > 0 ? (id - min) / step : NaN;
    const contiguous = Number.isInteger(count) && (total === undefined || total === count);
    if (!contiguous || !Number.isInteger(index) || index < 0 || index >= count) {
      return invalid(
        `--shard cannot map this Slurm array onto shards (task ${String(id)} of ${String(total ?? '?')} between ${String(min)} and ${String(max)}, step ${String(step)}): use a range such as --array=0-${String((total ?? 1) - 1)}, or pass --shard i/N`,
      );
    }
    return ok({ index, count });
  }
  if (total === undefined) {
    return invalid(
      '--shard without i/N needs SLURM_ARRAY_TASK_MIN and _MAX (or _COUNT) next to SLURM_ARRAY_TASK_ID',
    );
  }
  return parseShard(`${String(id)}/${String(total)}`);
}
