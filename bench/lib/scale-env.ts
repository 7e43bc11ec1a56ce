/**
 * What the parts of bench/scale.ts share: the loopback servers, the generated shards (made once
 * per size under /dev/shm or the temp dir, never in git, their generation timed), the bare SDK
 * loop in its own process, a pack run through the CLI, and the machine's state around a part
 * (load average, other work) so that a figure measured on a busy machine says so.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statfsSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { S3TestServer } from '../../test/servers/s3/harness.js';
import type { SwhConfigPatch, SwhTestServer } from '../../test/servers/swh/harness.js';
import { DEFAULT_CONFIG } from '../../test/servers/swh/model.js';
import { machineInfo } from './machine.js';
import type { MachineInfo } from './machine.js';
import type { BareResult } from './scale-bare.js';
import type { ZstdCost } from './scale-zstd.js';
import type { PackRun, PackRunOptions } from './scale-run.js';
import { runPack } from './scale-run.js';

export const REPO = resolve(import.meta.dirname, '../..');

export interface Env {
  s3: S3TestServer;
  /** Where the S3 test server keeps its data (the packed parts). */
  s3Dir: string;
  swh: SwhTestServer;
  /** Where generated shards live. */
  base: string;
  rowsPerPart: number;
  rowGroupSize: number;
  /** zstd's CPU per MB here (scale-zstd.ts), to price pack's compression. */
  zstd: ZstdCost;
}

/** /dev/shm when it has room for the largest parquet and the work copies, else the temp dir. */
export function dataBase(given: string | undefined): string {
  if (given !== undefined) return resolve(given);
  try {
    const s = statfsSync('/dev/shm');
    if (s.bavail * s.bsize > 6 * 2 ** 30) return '/dev/shm/stackflow-scale';
  } catch {
    // no /dev/shm
  }
  return join(tmpdir(), 'stackflow-scale');
}

export interface Generation {
  rows: number;
  rowGroupSize: number;
  /** Seconds DuckDB took to write it (when it was made; `reused` says if that was this run). */
  seconds: number;
  parquetBytes: number;
  reused: boolean;
}

/** The generated shard of `rows` rows (scripts/make-big-parquet.ts --swh), made once and kept. */
export function shard(env: Env, rows: number): { dir: string; generation: Generation } {
  const dir = join(env.base, `rows-${String(rows)}-rg${String(env.rowGroupSize)}`);
  const manifest = join(dir, 'manifest.json');
  const reused = existsSync(manifest);
  if (!reused) {
    console.error(`  generating a ${String(rows)}-row shard …`);
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        join(REPO, 'scripts/make-big-parquet.ts'),
        '--swh',
        '--rows',
        String(rows),
        '--row-group-size',
        String(env.rowGroupSize),
        '--out',
        dir,
      ],
      { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    if (r.status !== 0) throw new Error(`make-big-parquet failed (${String(r.status)})`);
  }
  const m = JSON.parse(readFileSync(manifest, 'utf8')) as {
    seconds: number;
    parquet: { size: number };
  };
  return {
    dir,
    generation: {
      rows,
      rowGroupSize: env.rowGroupSize,
      seconds: m.seconds,
      parquetBytes: m.parquet.size,
      reused,
    },
  };
}

/** The synthetic SWH at a median latency (p99 7.5× it, as the default 20 / 150 ms), no limit. */
export const latencyPatch = (ms: number): SwhConfigPatch => ({
  latency: { ...DEFAULT_CONFIG.latency, medianMs: ms, p99Ms: ms * 7.5 },
  rateLimit: { perSecond: null },
});

/** The bare SDK GET loop (scale-bare.ts) in its own process, `window` GETs in flight. */
export function bare(env: Env, window: number, seconds: number, offset: number): BareResult {
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      join(REPO, 'bench/lib/scale-bare.ts'),
      '--endpoint',
      env.swh.endpoint,
      '--bucket',
      env.swh.bucket,
      '--window',
      String(window),
      '--seconds',
      String(seconds),
      '--offset',
      String(offset),
    ],
    { cwd: REPO, encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  if (r.status !== 0) throw new Error(`bare loop failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as BareResult;
}

let runSeq = 0;
/** One pack of a `rows`-row shard through the CLI. */
export function pack(
  env: Env,
  rows: number,
  window: number,
  extra: Partial<PackRunOptions> = {},
  params = '',
): Promise<PackRun> {
  const { dir } = shard(env, rows);
  const mode = extra.windowMode ?? 'fixed';
  const label = `${String(++runSeq)}-${String(rows)}-w${String(window)}${mode === 'adaptive' ? 'a' : ''}${extra.cpus ? `-c${extra.cpus.replace(/,/g, '')}` : ''}`;
  console.error(`  pack ${label} …`);
  return runPack(
    {
      dataDir: dir,
      rows,
      window,
      rowsPerPart: env.rowsPerPart,
      s3: env.s3,
      s3Dir: env.s3Dir,
      swh: env.swh,
      label,
      ...extra,
      windowMode: mode,
    },
    params,
  );
}

/** A pack run without its timeline (kept only where it is the point). */
export const brief = (p: PackRun): Omit<PackRun, 'timeline'> => {
  const { timeline: _timeline, ...rest } = p;
  return rest;
};

/** Load average (1 min) and when, to put before and after a part. */
export const load = (): { at: string; loadavg1: number } => ({
  at: new Date().toISOString(),
  loadavg1: Number((loadavg()[0] ?? 0).toFixed(2)),
});

/**
 * Above this many cores of other work during a pack, its figure is flagged `noisy` (measured on
 * a busy machine); the load average before a part is shown too, but it lags by a minute.
 */
export const NOISY_OTHERS_CORES = 0.25;

/** What every part records about where and when it ran. */
export interface PartMeta {
  date: string;
  seconds: number;
  machine: MachineInfo;
  loadBefore: { at: string; loadavg1: number };
  loadAfter: { at: string; loadavg1: number };
  /** Most cores taken by other work during any of the part's packs. */
  othersCoresMax: number;
  /** True when other work took more than NOISY_OTHERS_CORES during a pack. */
  noisy: boolean;
}

/** Runs a part and wraps its figures with PartMeta. */
export async function measured<T extends object>(
  run: () => Promise<T & { packs: PackRun[] }>,
): Promise<Omit<T, 'packs'> & PartMeta> {
  const t0 = performance.now();
  const loadBefore = load();
  const { packs, ...figures } = await run();
  const othersCoresMax = Math.max(0, ...packs.map((p) => p.othersCores));
  return {
    ...(figures as Omit<T, 'packs'>),
    date: new Date().toISOString(),
    seconds: Math.round((performance.now() - t0) / 1000),
    machine: machineInfo(),
    loadBefore,
    loadAfter: load(),
    othersCoresMax,
    noisy: othersCoresMax > NOISY_OTHERS_CORES,
  };
}
