/**
 * Timing helpers for benchmarks that compare stackflow with a reference tool: each command is
 * timed as a whole child process (startup included, as a user waits for it), the commands run in
 * alternation (A B C A B C …) so that machine noise hits them alike, and a figure is the median.
 */
import { spawnSync } from 'node:child_process';
import type { SpawnSyncOptions } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** One command to time. */
export interface TimedCommand {
  /** Executable (resolved through PATH). */
  cmd: string;
  args: readonly string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
  /** Exit statuses that count as success (default [0]). */
  okStatus?: readonly number[];
}

/** One timed run. */
export interface Run {
  ms: number;
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion and measures its wall time. */
export function timeOnce(c: TimedCommand): Run {
  const opts: SpawnSyncOptions = {
    cwd: c.cwd,
    env: c.env ?? process.env,
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  };
  const t0 = performance.now();
  const r = spawnSync(c.cmd, [...c.args], opts);
  const ms = performance.now() - t0;
  if (r.error !== undefined) throw new Error(`${c.cmd}: ${r.error.message}`);
  return {
    ms,
    status: r.status,
    stdout: typeof r.stdout === 'string' ? r.stdout : '',
    stderr: typeof r.stderr === 'string' ? r.stderr : '',
  };
}

/**
 * Times every command `runs` times in alternation, after `warmup` untimed rounds (page cache,
 * Python bytecode, V8 code cache). Fails loudly on an unexpected exit status: a benchmark that
 * times an error is worse than none.
 */
export function alternate<K extends string>(
  commands: Readonly<Record<K, TimedCommand>>,
  runs: number,
  opts: { warmup?: number; onRound?: (round: number, ms: Record<K, number>) => void } = {},
): Record<K, number[]> {
  const keys = Object.keys(commands) as K[];
  const out = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  const warmup = opts.warmup ?? 1;
  for (let round = -warmup; round < runs; round++) {
    const row = {} as Record<K, number>;
    for (const k of keys) {
      const c = commands[k];
      const r = timeOnce(c);
      if (!(c.okStatus ?? [0]).includes(r.status ?? -1)) {
        throw new Error(
          `${k} (${c.cmd} ${c.args.join(' ')}) exited ${String(r.status)}: ${r.stderr.slice(-2000)}`,
        );
      }
      row[k] = r.ms;
      if (round >= 0) out[k].push(r.ms);
    }
    if (round >= 0) opts.onRound?.(round, row);
  }
  return out;
}

/** Median (mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('Internal error: median of nothing');
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const hi = s[mid] ?? 0;
  return s.length % 2 === 1 ? hi : ((s[mid - 1] ?? 0) + hi) / 2;
}

/** Rounds to `digits` decimals, for results files. */
export const round = (x: number, digits = 1): number => Number(x.toFixed(digits));

/** Writes `bench/results/<name>.json` (the file `npm run bench`'s table is read from). */
export function writeResults(name: string, out: unknown): void {
  const dir = join(import.meta.dirname, '..', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(out, null, 2) + '\n');
}
