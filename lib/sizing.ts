/**
 * PURE: how much of pack one process runs at once on this host — packs at once, line workers per
 * pack, the bound of the blob-fetch window — from the host's facts (cores, memory, free scratch
 * disk, open-file limit) and what pipeline.yaml or the CLI set. Every number comes with the reason
 * that produced it, so `run --dry-run` can say why:
 *
 *   32 cores, 256 GiB, 3.40 TB free → 6 packs × 3 line workers, window ≤ 2048
 *
 * The decision changes how a run goes, never what it writes: it only sets a stage's `limit`, `-j`
 * and the pack params that are runtime params (`line_workers`, `concurrency`), which are outside
 * every fingerprint (lib/fingerprint.ts keyedParams). Two hosts of different sizes produce the
 * same bytes and the same markers.
 *
 * The model (per process; constants measured in bench/results/pack.json and pack-memory.json):
 *
 *   cores   a pack's line workers fetch its blobs (the SDK's work per GET), gunzip, decode and
 *           build its JSON lines; each one kept busy brings ~0.7 core more of the process's
 *           other threads (the pack's main thread, GC, zstd, DuckDB): ~1.7 cores per line
 *           worker (bench/results/scale.json full: per 1M rows, line workers 595 CPU-s, main
 *           thread 69, the others 335). Line workers per pack: one per core, at most 3 (more
 *           packs beyond that: packs share nothing, while a pack's lines all pass through its
 *           one reorder buffer and writer, in row order); packs = cores / (1.7 × line workers),
 *           rounded: a line worker is not busy all the time (it waits on GETs and on its turn)
 *   memory  75% of memory (the cgroup's limit when lower) for: the process base, per pack its
 *           DuckDB reader, batches and zstd frames, per line worker its heap, and the window's
 *           bodies in flight
 *   disk    80% of the scratch disk's free space for: per pack two parts in scratch (one being
 *           written, one being published), plus the parquet's scratch copy when the work store
 *           is remote (a local work store is read in place)
 *   window  GETs in flight for the whole process, shared by its packs: ≤ 2048 (at a 20 ms median
 *           latency ~100k GETs/s, more than one process's main thread issues), ≤ half the
 *           open-file limit (each GET holds a socket), and its bodies within a quarter of the
 *           memory budget
 */

/** What the host offers (gathered by lib/host.ts; tests build it by hand). */
export interface HostFacts {
  /** Cores this process may use (`os.availableParallelism()`: honours affinity, e.g. taskset). */
  cores: number;
  /** Memory this process may use: the machine's, or its cgroup's limit when lower. */
  memoryBytes: number;
  /** Free bytes on the disk holding the scratch (cache) dir; undefined if it could not be read. */
  freeDiskBytes: number | undefined;
  /** Soft limit of open files (sockets count); undefined where unknown. */
  openFilesLimit: number | undefined;
}

/** A value set by the user, and where (for the reason line). */
export interface Setting {
  value: number;
  /** `--packs`, `pipeline.yaml tasks.pack.limit`, … */
  from: string;
}

/** What the user set and what the plan implies; everything optional is decided from the host. */
export interface SizingConfig {
  /** Packs at once. */
  packs?: Setting;
  /** Line worker threads per pack. */
  lineWorkers?: Setting;
  /** GETs in flight for the whole process (`--window`). */
  windowMax?: Setting;
  /** GETs in flight per pack, at most (pack's `concurrency:` in pipeline.yaml). */
  perPack?: Setting;
  /** Tasks at once (`-j`). */
  jobs?: Setting;
  /**
   * Scratch bytes per pack for its parquet: the largest parquet it may pack when the work store
   * is remote (it is copied into scratch), 0 when the work store is a local directory.
   */
  parquetScratchBytes: number;
}

/** The resource that bounds a number. */
export type Limit = 'cores' | 'memory' | 'disk' | 'open-files' | 'cap' | 'set';

/** How one process runs pack on this host, with the reasons. */
export interface SizingDecision {
  host: HostFacts;
  /** Packs at once (the pack stage's `limit`). */
  packs: number;
  /** Line worker threads per pack (pack's `line_workers`). */
  lineWorkers: number;
  /**
   * The blob-fetch window: GETs in flight for the whole process, shared by its packs. `max` is
   * the ceiling of the process's adaptive window (`run` sets it: lib/util/fetch-window.ts); each
   * pack may use at most `perPack` of it (its `concurrency`).
   */
  window: { max: number; perPack: number };
  /** Tasks at once (`-j`): the packs plus one for the fetch that prepares the next parquet. */
  jobs: number;
  /** What bounded each number. */
  limitedBy: { packs: Limit; lineWorkers: Limit; window: Limit };
  /** One line per decision, saying why. */
  reasons: string[];
  /** `32 cores, 256 GiB, 3.40 TB free → 6 packs × 3 line workers, window ≤ 2048`. */
  summary: string;
}

const MiB = 1 << 20;
const GiB = 1 << 30;

/** The model's constants, each with where it comes from. Exported for the README and tests. */
export const SIZING = {
  /** Line workers per pack, at most: beyond, more packs side by side (they share nothing). */
  maxLineWorkers: 3,
  /**
   * Cores one busy line worker keeps busy in all: itself and ~0.7 core of the main thread, GC,
   * zstd and DuckDB (scale.json full, 3M rows: per 1M rows 595 CPU-s in line workers, 404 in
   * the rest).
   */
  coresPerLineWorker: 1.7,
  /** Share of memory the packs may plan on (the rest: OS, page cache, other processes). */
  memoryShare: 0.75,
  /** Node, the SDK, the CLI: pack-memory's RSS before the first part. */
  processBaseBytes: 256 * MiB,
  /** One pack without its workers: pack-memory measured 491 → 539 MB peak for 100k → 1M rows. */
  packBytes: 384 * MiB,
  /** One line worker (thread, isolate, iconv tables, batches): the pack bench saw 60–80 MB. */
  lineWorkerBytes: 80 * MiB,
  /** Bytes one GET in flight holds, covering the long tail (median gzip body is a few KB). */
  windowSlotBytes: 64 * 1024,
  /** Share of the memory budget the window's bodies may take. */
  windowMemoryShare: 0.25,
  /** GETs in flight per process, at most. */
  windowCap: 2048,
  /** Share of the scratch disk's free space the packs may plan on. */
  diskShare: 0.8,
  /** One part in scratch: 16,384 rows × ~20 KB of text, zstd ~4× → ~80 MB; with margin. */
  partBytes: 256 * MiB,
} as const;

const floorPow2 = (n: number): number => (n < 1 ? 0 : 2 ** Math.floor(Math.log2(n)));

/** Bytes for people: GiB for memory, decimal TB/GB for disks (as `df -H` and disk vendors). */
export function formatMemory(bytes: number): string {
  const g = bytes / GiB;
  return `${g >= 10 ? Math.round(g) : g.toFixed(1)} GiB`;
}
export function formatDisk(bytes: number): string {
  return bytes >= 1e12 ? `${(bytes / 1e12).toFixed(2)} TB` : `${(bytes / 1e9).toFixed(1)} GB`;
}

export function decideSizing(host: HostFacts, cfg: SizingConfig): SizingDecision {
  const reasons: string[] = [];
  const cores = Math.max(1, Math.floor(host.cores));
  const budget = host.memoryBytes * SIZING.memoryShare;

  // Line workers per pack: one per core beyond the main thread's, at most maxLineWorkers.
  let lineWorkers: number;
  let lwLimit: Limit;
  if (cfg.lineWorkers !== undefined) {
    lineWorkers = cfg.lineWorkers.value;
    lwLimit = 'set';
    reasons.push(`line workers per pack: ${lineWorkers}, set by ${cfg.lineWorkers.from}`);
  } else {
    lineWorkers = Math.max(1, Math.min(SIZING.maxLineWorkers, cores));
    lwLimit = lineWorkers === SIZING.maxLineWorkers ? 'cap' : 'cores';
    reasons.push(
      lwLimit === 'cap'
        ? `line workers per pack: ${lineWorkers} (one per core, at most ${SIZING.maxLineWorkers}: beyond, more packs side by side)`
        : `line workers per pack: ${lineWorkers} (one per core: ${cores} core${cores === 1 ? '' : 's'})`,
    );
  }

  // The window first: its memory comes off what the packs may use.
  let windowMax: number;
  let wLimit: Limit;
  if (cfg.windowMax !== undefined) {
    windowMax = cfg.windowMax.value;
    wLimit = 'set';
    reasons.push(`window: ≤ ${windowMax} GETs in flight, set by ${cfg.windowMax.from}`);
  } else {
    const byMemory = floorPow2((budget * SIZING.windowMemoryShare) / SIZING.windowSlotBytes);
    const byFiles =
      host.openFilesLimit === undefined ? Infinity : floorPow2(host.openFilesLimit / 2);
    windowMax = Math.max(1, Math.min(SIZING.windowCap, byMemory, byFiles));
    wLimit =
      windowMax === SIZING.windowCap ? 'cap' : windowMax === byFiles ? 'open-files' : 'memory';
    reasons.push(
      wLimit === 'cap'
        ? `window: ≤ ${windowMax} GETs in flight per process (the cap: at a 20 ms median latency that is ~100k GETs/s, more than one process issues)`
        : wLimit === 'open-files'
          ? `window: ≤ ${windowMax} GETs in flight (half the open-file limit of ${String(host.openFilesLimit)}: each GET holds a socket; raise it with ulimit -n)`
          : `window: ≤ ${windowMax} GETs in flight (${formatMemory(windowMax * SIZING.windowSlotBytes)} of bodies at ${SIZING.windowSlotBytes / 1024} KiB each within a quarter of the memory budget)`,
    );
  }

  let packs: number;
  let pLimit: Limit;
  if (cfg.packs !== undefined) {
    packs = cfg.packs.value;
    pLimit = 'set';
    reasons.push(`packs at once: ${packs}, set by ${cfg.packs.from}`);
  } else {
    const byCores = Math.max(1, Math.round(cores / (SIZING.coresPerLineWorker * lineWorkers)));
    const perPackMemory = SIZING.packBytes + lineWorkers * SIZING.lineWorkerBytes;
    const forPacks = budget - SIZING.processBaseBytes - windowMax * SIZING.windowSlotBytes;
    const byMemory = Math.floor(forPacks / perPackMemory);
    const perPackDisk = 2 * SIZING.partBytes + cfg.parquetScratchBytes;
    const byDisk =
      host.freeDiskBytes === undefined
        ? Infinity
        : Math.floor((host.freeDiskBytes * SIZING.diskShare) / perPackDisk);
    packs = Math.max(1, Math.min(byCores, byMemory, byDisk));
    pLimit =
      byMemory < byCores && byMemory <= byDisk ? 'memory' : byDisk < byCores ? 'disk' : 'cores';
    reasons.push(
      `packs at once by cores: ${byCores} (${cores} cores / (${lineWorkers} line worker${lineWorkers === 1 ? '' : 's'} × ${SIZING.coresPerLineWorker} cores: each brings the main thread's, GC's, zstd's share))`,
    );
    reasons.push(
      `packs at once by memory: ${Math.max(0, byMemory)} (${formatMemory(Math.max(0, forPacks))} of ${formatMemory(host.memoryBytes)} after the process and the window, ${formatMemory(perPackMemory)} per pack)`,
    );
    reasons.push(
      host.freeDiskBytes === undefined
        ? 'packs at once by disk: not limited (free space of the scratch dir unknown)'
        : `packs at once by disk: ${byDisk} (${formatDisk(host.freeDiskBytes)} free, ${formatDisk(perPackDisk)} of scratch per pack: two parts${cfg.parquetScratchBytes > 0 ? ' and a copy of its parquet, the work store being remote' : ''})`,
    );
    if (Math.min(byMemory, byDisk) < 1) {
      reasons.push(
        `packs at once: 1 although ${byMemory < 1 ? 'memory' : 'disk'} suggests fewer: a pack may fail for want of ${byMemory < 1 ? 'memory' : 'disk space'}`,
      );
    }
  }

  const share = Math.max(1, Math.floor(windowMax / packs));
  const perPack = cfg.perPack === undefined ? share : Math.min(cfg.perPack.value, share);
  reasons.push(
    cfg.perPack !== undefined && cfg.perPack.value <= share
      ? `each pack fetches ≤ ${perPack} blobs at once, set by ${cfg.perPack.from}`
      : `each pack fetches ≤ ${perPack} blobs at once (the window shared by ${packs} pack${packs === 1 ? '' : 's'}${cfg.perPack !== undefined ? `; ${cfg.perPack.from} allows ${cfg.perPack.value}` : ''})`,
  );
  let jobs: number;
  if (cfg.jobs !== undefined) {
    jobs = cfg.jobs.value;
    reasons.push(`tasks at once: ${jobs}, set by ${cfg.jobs.from}`);
    if (jobs < packs) reasons.push(`so at most ${jobs} packs run at once`);
  } else {
    jobs = Math.max(2, packs + 1);
    reasons.push(
      `tasks at once: ${jobs} (the packs, and a slot for the fetch of the next parquet)`,
    );
  }

  const disk =
    host.freeDiskBytes === undefined
      ? 'free disk unknown'
      : `${formatDisk(host.freeDiskBytes)} free`;
  const summary = `${cores} core${cores === 1 ? '' : 's'}, ${formatMemory(host.memoryBytes)}, ${disk} → ${packs} pack${packs === 1 ? '' : 's'} × ${lineWorkers} line worker${lineWorkers === 1 ? '' : 's'}, window ≤ ${windowMax}`;
  return {
    host,
    packs,
    lineWorkers,
    window: { max: windowMax, perPack },
    jobs,
    limitedBy: { packs: pLimit, lineWorkers: lwLimit, window: wLimit },
    reasons,
    summary,
  };
}

/** What the CLI set (`run --packs/--line-workers/--window/-j`). */
export interface SizingFlags {
  packs?: number;
  lineWorkers?: number;
  window?: number;
  jobs?: number;
}

/** The largest parquet of the dataset (its big shards are 2.3–2.9 GB): a pack's scratch copy. */
export const LARGEST_PARQUET_BYTES = 3e9;

/** Structural slice of a pipeline stage / pipeline this module reads (lib/model.ts has the rest). */
interface StageLike {
  name: string;
  kind: string;
  limit?: number;
  params: Record<string, unknown>;
}
interface PipelineLike<S extends StageLike> {
  work: string;
  stages: S[];
}

/**
 * The sizing inputs of a pipeline and the CLI: the CLI wins, then pipeline.yaml (the first pack
 * stage's `limit`, `line_workers`, `concurrency`); undefined when the pipeline has no pack stage
 * (nothing to size).
 */
export function sizingConfigOf(
  pipeline: PipelineLike<StageLike>,
  flags: SizingFlags,
): SizingConfig | undefined {
  const pack = pipeline.stages.find((s) => s.kind === 'pack');
  if (pack === undefined) return undefined;
  const at = (what: string): string => `pipeline.yaml tasks.${pack.name}.${what}`;
  const param = (k: string): number | undefined =>
    typeof pack.params[k] === 'number' ? pack.params[k] : undefined;
  const pick = (
    flag: number | undefined,
    flagName: string,
    yaml: number | undefined,
    where: string,
  ) =>
    flag !== undefined
      ? { value: flag, from: flagName }
      : yaml !== undefined
        ? { value: yaml, from: at(where) }
        : undefined;
  const packs = pick(flags.packs, '--packs', pack.limit, 'limit');
  const lineWorkers = pick(
    flags.lineWorkers,
    '--line-workers',
    param('line_workers'),
    'params.line_workers',
  );
  const perPackValue = param('concurrency');
  return {
    ...(packs ? { packs } : {}),
    ...(lineWorkers ? { lineWorkers } : {}),
    ...(flags.window !== undefined ? { windowMax: { value: flags.window, from: '--window' } } : {}),
    ...(perPackValue !== undefined
      ? { perPack: { value: perPackValue, from: at('params.concurrency') } }
      : {}),
    ...(flags.jobs !== undefined ? { jobs: { value: flags.jobs, from: '-j' } } : {}),
    parquetScratchBytes: pipeline.work.startsWith('file://') ? 0 : LARGEST_PARQUET_BYTES,
  };
}

/**
 * The pipeline as this host runs it: every pack stage gets the decided `limit` (unless `--packs`
 * or its own `limit` said otherwise), `line_workers` and `concurrency`. Only runtime params and
 * limits change, so no fingerprint does.
 */
export function applySizing<S extends StageLike, P extends PipelineLike<S>>(
  pipeline: P,
  d: SizingDecision,
  flags: SizingFlags,
): P {
  return {
    ...pipeline,
    stages: pipeline.stages.map((s) =>
      s.kind !== 'pack'
        ? s
        : {
            ...s,
            limit: flags.packs ?? s.limit ?? d.packs,
            params: { ...s.params, line_workers: d.lineWorkers, concurrency: d.window.perPack },
          },
    ),
  };
}
