/**
 * `stackflow estimate`: what the plan would cost on a fleet (lib/estimate/model.ts), before anyone
 * spends money. Gathers the model's inputs:
 *
 *   parquets     the pack tasks the plan would run (a dry run's plan: languages not yet
 *                discovered are listed read-only), or `--listing <file>` (`<Language>/<file>
 *                <bytes> [rows]` a line) to estimate without a pipeline's sources
 *   rows         a fetched parquet's footer (DuckDB, when the work store is local); else its
 *                listing size × the rows per byte measured on fetched and packed parquets
 *                (default 1/312: ~312 bytes of parquet per row on the dataset's big shards)
 *   calibration  `--calibration <file>` (bench/results/scale.json), improved by finished pack
 *                markers on this state (their byte counts), else the defaults
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import type { Result } from '../errors.js';
import { err, ok } from '../errors.js';
import type { Graph } from '../graph.js';
import { readMarker } from '../io/state/markers.js';
import type { ManifestEntry, Plan, TaskId } from '../model.js';
import type { MarkerRef } from '../planner.js';
import { plan } from '../planner.js';
import type { Session } from '../session.js';
import { resolveLanguages, snapshot } from '../session.js';
import type { Calibration, MarkerFigures } from '../estimate/calibration.js';
import { DEFAULT_CALIBRATION, parseCalibration, withMarkers } from '../estimate/calibration.js';
import type { EstimateInput, FleetAssumptions, PlannedParquet } from '../estimate/model.js';
import {
  DEFAULT_FLEET,
  DEFAULT_PRICES,
  estimate,
  fmtDuration,
  hostsFor,
  parseDuration,
} from '../estimate/model.js';
import { renderEstimate } from '../estimate/render.js';
import type { Common } from './common.js';
import { EXIT, failureLine, load, positiveInt, say } from './common.js';

/** Bytes of parquet per row on the dataset's big shards (DOMAIN.md §1). */
export const DEFAULT_BYTES_PER_ROW = 312;

interface EstimateOpts extends Common {
  hosts?: number;
  cores: number;
  memoryGib: number;
  deadline?: number;
  calibration?: string;
  listing?: string;
  storeRate: number;
  latencyMs: number;
  hostGbps: number;
  egressPerGb: number;
  json?: boolean;
}

const positiveNumber =
  (name: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0)
      throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };

/** Adds `estimate`'s arguments and options to `cmd`; `done` receives the exit code. */
export function configureEstimate(cmd: Command, done: (code: number) => void): Command {
  return cmd
    .description(
      'what the plan would cost on a fleet: rows, GETs, bytes, CPU-hours, makespan, S3 requests and their price',
    )
    .argument('[targets...]', 'what would run (default: every stage)')
    .option(
      '--hosts <n>',
      'hosts in the fleet (default 1, or the fewest that meet --deadline)',
      (v) => positiveInt(v, '--hosts'),
    )
    .option('--cores <n>', 'cores per host', (v) => positiveInt(v, '--cores'), DEFAULT_FLEET.cores)
    .option(
      '--memory-gib <n>',
      'memory per host, GiB',
      positiveNumber('--memory-gib'),
      DEFAULT_FLEET.memoryGiB,
    )
    .addOption(
      new Option(
        '--deadline <duration>',
        'the hosts needed to finish within it, e.g. 24h, 90m, 2d',
      ).argParser((v) => {
        const s = parseDuration(v);
        if (s === undefined)
          throw new InvalidArgumentError('--deadline must be a duration such as 24h, 90m or 2d');
        return s;
      }),
    )
    .option(
      '--calibration <file>',
      'per-row costs: bench/results/scale.json or its calibration object',
    )
    .option(
      '--listing <file>',
      'estimate these parquets instead of the plan: "<Language>/<file> <bytes> [rows]" per line',
    )
    .option(
      '--store-rate <n>',
      'content GETs per second the store serves the fleet',
      positiveNumber('--store-rate'),
      DEFAULT_FLEET.storeGetsPerSecond,
    )
    .option(
      '--latency-ms <n>',
      'median latency of a content GET',
      positiveNumber('--latency-ms'),
      DEFAULT_FLEET.latencyMs,
    )
    .option(
      '--host-gbps <n>',
      'network per host, Gbit/s',
      positiveNumber('--host-gbps'),
      DEFAULT_FLEET.hostGbps,
    )
    .option(
      '--egress-per-gb <usd>',
      'egress price per GB (0: hosts in the bucket’s region)',
      (v) => {
        const n = Number(v);
        if (!Number.isFinite(n) || n < 0)
          throw new InvalidArgumentError('--egress-per-gb must be a number ≥ 0');
        return n;
      },
      0,
    )
    .option('--json', 'machine-readable')
    .action(async (targets: string[], o: EstimateOpts) => {
      done(await cmdEstimate(targets, o));
    });
}

/** `<Language>/<file>.parquet <bytes> [rows]` lines (optionally under `data/`), `#` comments. */
export function parseListing(text: string, name: string): Result<PlannedParquet[]> {
  const out: PlannedParquet[] = [];
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    const [path, bytes, rows, ...rest] = line.split(/\s+/);
    const m = /^(?:data\/)?([^/]+)\/([^/]+)\.parquet$/.exec(path ?? '');
    const b = Number(bytes);
    const r = rows === undefined ? undefined : Number(rows);
    if (
      m === null ||
      !Number.isFinite(b) ||
      b <= 0 ||
      (r !== undefined && !(r >= 0)) ||
      rest.length > 0
    ) {
      return err({
        reason: 'invalid-input',
        message: `${name}:${i + 1}: expected "<Language>/<file>.parquet <bytes> [rows]", got ${JSON.stringify(raw.slice(0, 120))}`,
      });
    }
    out.push({
      id: `pack:${m[1] ?? ''}/${m[2] ?? ''}`,
      bytes: b,
      rows: r ?? Math.round(b / DEFAULT_BYTES_PER_ROW),
      rowsFrom: r === undefined ? 'size' : 'listing',
    });
  }
  if (out.length === 0)
    return err({ reason: 'invalid-input', message: `${name}: no parquets listed` });
  return ok(out);
}

async function cmdEstimate(targets: string[], o: EstimateOpts): Promise<number> {
  let calibration: Calibration = DEFAULT_CALIBRATION;
  if (o.calibration !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(o.calibration, 'utf8'));
    } catch (e) {
      say(`❌ cannot read calibration ${o.calibration}: ${(e as Error).message}`);
      return EXIT.usage;
    }
    const c = parseCalibration(json, o.calibration);
    if (!c.ok) {
      say(`❌ ${c.message}`);
      return EXIT.usage;
    }
    calibration = c.value;
  }
  let parquets: PlannedParquet[];
  let tasksInPlan: number;
  let remoteWork = DEFAULT_FLEET.remoteWork;
  if (o.listing !== undefined) {
    let text: string;
    try {
      text = await readFile(o.listing, 'utf8');
    } catch (e) {
      say(`❌ cannot read listing ${o.listing}: ${(e as Error).message}`);
      return EXIT.usage;
    }
    const l = parseListing(text, o.listing);
    if (!l.ok) {
      say(failureLine(l.error));
      return EXIT.usage;
    }
    parquets = l.value;
    // The root pipeline's five parquet stages and one discover per language.
    tasksInPlan = parquets.length * 4 + new Set(parquets.map((p) => p.id.split('/')[0])).size;
  } else {
    const loaded = await load(o);
    if (typeof loaded === 'number') return loaded;
    const { session } = loaded;
    remoteWork = !session.pipeline.work.startsWith('file://');
    const langs = await resolveLanguages(session, undefined);
    if (!langs.ok) {
      say(failureLine(langs.error));
      return EXIT.usage;
    }
    const all = targets.length > 0 ? targets : session.pipeline.stages.map((s) => s.name as string);
    const snap = await snapshot(session, langs.value, all, { preview: true });
    if (!snap.ok) {
      say(failureLine(snap.error));
      return EXIT.failed;
    }
    if (snap.value.unknownTargets.length > 0) {
      say(
        `❌ unknown target${snap.value.unknownTargets.length > 1 ? 's' : ''}: ${snap.value.unknownTargets.join(', ')}`,
      );
      return EXIT.usage;
    }
    const p = plan({ ...snap.value.plannerInput, forced: () => false });
    const gathered = await fromPlan(session, p, snap.value.graph, snap.value.markers);
    parquets = gathered.parquets;
    tasksInPlan = p.steps.length;
    calibration = withMarkers(calibration, gathered.markers);
  }
  const fleet: Omit<FleetAssumptions, 'hosts'> = {
    ...DEFAULT_FLEET,
    cores: o.cores,
    memoryGiB: o.memoryGib,
    latencyMs: o.latencyMs,
    storeGetsPerSecond: o.storeRate,
    hostGbps: o.hostGbps,
    remoteWork,
  };
  const base: Omit<EstimateInput, 'fleet'> = {
    parquets,
    tasksInPlan,
    calibration,
    prices: { ...DEFAULT_PRICES, egressPerGB: o.egressPerGb },
  };
  let deadline:
    { seconds: number; line: string; hosts: number | null; reason?: string } | undefined;
  let e;
  if (o.deadline !== undefined && o.hosts === undefined) {
    const h = hostsFor({ ...base, fleet }, o.deadline);
    e = h.estimate;
    deadline =
      h.hosts === null
        ? {
            seconds: o.deadline,
            hosts: null,
            reason: h.reason,
            line: `${fmtDuration(o.deadline)}: ${h.reason}`,
          }
        : {
            seconds: o.deadline,
            hosts: h.hosts,
            line: `${fmtDuration(o.deadline)} needs ${h.hosts} host${h.hosts === 1 ? '' : 's'} of ${o.cores} cores`,
          };
  } else {
    e = estimate({ ...base, fleet: { ...fleet, hosts: o.hosts ?? 1 } });
    if (o.deadline !== undefined) {
      const meets = e.makespan.seconds <= o.deadline;
      deadline = {
        seconds: o.deadline,
        hosts: meets ? e.inputs.fleet.hosts : null,
        line: `${fmtDuration(o.deadline)}: ${meets ? 'met' : `missed by ${fmtDuration(e.makespan.seconds - o.deadline)}`} with ${e.inputs.fleet.hosts} hosts`,
      };
    }
  }
  process.stdout.write(
    o.json === true
      ? JSON.stringify({ ...e, ...(deadline ? { deadline } : {}) }, null, 2) + '\n'
      : renderEstimate(e, deadline),
  );
  return EXIT.ok;
}

/**
 * The plan's pack tasks with their rows: footers of fetched local parquets, marker counts of
 * finished packs (which also measure bytes per row), else listing size × rows per byte.
 */
async function fromPlan(
  session: Session,
  p: Plan,
  graph: Graph,
  markers: ReadonlyMap<TaskId, readonly MarkerRef[]>,
): Promise<{ parquets: PlannedParquet[]; markers: MarkerFigures }> {
  const toRun: { id: TaskId; file: ManifestEntry }[] = [];
  const done: { id: TaskId; file: ManifestEntry }[] = [];
  for (const step of p.steps) {
    const t = graph.tasks.get(step.task);
    if (t?.kind !== 'pack' || t.file === undefined) continue;
    (step.action === 'skip' ? done : toRun).push({ id: t.id, file: t.file });
  }
  const figures: MarkerFigures = { packs: 0, rows: 0, rawBytes: 0, zstBytes: 0 };
  let knownRows = 0;
  let knownBytes = 0;
  for (const d of done) {
    const ref = markers.get(d.id)?.at(-1);
    if (ref === undefined) continue;
    const m = await readMarker(session.stores.state, ref.key);
    if (!m.ok) continue;
    const rows = m.value.counts.rows ?? 0;
    figures.packs++;
    figures.rows += rows;
    figures.rawBytes += m.value.counts.raw_bytes ?? 0;
    figures.zstBytes += m.value.counts.zst_bytes ?? 0;
    knownRows += rows;
    knownBytes += d.file.size;
  }
  const footers = new Map<string, number>();
  const local: ((typeof toRun)[number] & { path: string })[] = [];
  if (session.pipeline.work.startsWith('file://')) {
    // A fetched parquet of a local work store, read in place: only a regular file whose real path
    // stays inside the store's root (a link out of it is not followed).
    const root = await realpath(fileURLToPath(session.pipeline.work)).catch(() => '');
    for (const t of root === '' ? [] : toRun) {
      const real = await realpath(join(root, t.file.path)).catch(() => undefined);
      if (real === undefined || !real.startsWith(root + sep)) continue;
      if ((await stat(real)).isFile()) local.push({ ...t, path: real });
    }
  }
  if (local.length > 0) {
    const { parquetRowCount, withDuckDB } = await import('../io/duckdb.js');
    await withDuckDB(async (conn) => {
      for (const t of local) {
        try {
          footers.set(t.id, await parquetRowCount(conn, t.path));
          knownRows += footers.get(t.id) ?? 0;
          knownBytes += t.file.size;
        } catch {
          // not fetched yet (or not a parquet): its size says
        }
      }
    });
  }
  const bytesPerRow = knownRows > 0 ? knownBytes / knownRows : DEFAULT_BYTES_PER_ROW;
  return {
    parquets: toRun.map((t) => {
      const f = footers.get(t.id);
      return f !== undefined
        ? { id: t.id, bytes: t.file.size, rows: f, rowsFrom: 'footer' as const }
        : {
            id: t.id,
            bytes: t.file.size,
            rows: Math.round(t.file.size / bytesPerRow),
            rowsFrom: 'size' as const,
          };
    }),
    markers: figures,
  };
}
