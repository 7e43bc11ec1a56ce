/**
 * PURE. What the state store says about a run → the data of the report page (types.ts).
 *
 * A task is done (a marker at its current fingerprint), running (a live lease, not finished),
 * failed (a failure record), stale (only markers of older fingerprints) or pending, exactly as
 * `stackflow status` counts it; blocked expansions (a language whose manifest is not known yet)
 * are counted per stage × language. Rows and bytes come from the markers' counts, and for a
 * running pack from its part records, so a half-done pack already shows its finished parts.
 */
import type { Graph } from '../graph.js';
import type { TaskId, TaskKind } from '../model.js';
import type { KindMetrics } from '../kind.js';
import { noMetrics } from '../kind.js';
import { kindOf } from '../kinds.js';
import type { MarkerRef } from '../planner.js';
import type { OutputRecord } from '../io/state/markers.js';
import type {
  Counters,
  DagView,
  FailedTask,
  Lane,
  NotPackedRow,
  ReportModel,
  Series,
  StageInfo,
  StatsView,
  TaskView,
} from './types.js';

/** What a marker body holds that the report uses. */
export interface MarkerFacts {
  counts: Record<string, number>;
  outputs: readonly OutputRecord[];
  host: string;
  worker: string;
  startedAt: string;
  finishedAt: string;
  attempts?: number;
}

/** A failure record (`markers/<task>@failed.json`). */
export interface FailureFacts {
  failure: { reason?: string; message?: string };
  at?: string;
  host?: string;
  worker?: string;
  attempts?: number;
}

/** A lease group's latest epoch, judged by the caller against the store's clock. */
export interface LeaseFacts {
  task: TaskId;
  /** The fingerprint prefix in the lease key. */
  fingerprint: string;
  epoch: number;
  /** `finished`: a marker exists at this fingerprint (the lease is the record of the claim). */
  state: 'live' | 'stale' | 'finished';
  worker?: string;
  host?: string;
  /** The holder's claim time (ms), for live leases whose body was read. */
  claimedAt?: number;
}

export interface ReportInput {
  now: number;
  pipeline: {
    file: string;
    repo: string;
    revision: string;
    source: string;
    state: string;
    bucket: string;
    stages: readonly { name: string; kind: TaskKind; foreach: string; needs: readonly string[] }[];
  };
  graph: Graph;
  /** Current fingerprint hash per task. */
  fingerprints: ReadonlyMap<TaskId, string>;
  markers: ReadonlyMap<TaskId, readonly MarkerRef[]>;
  /** Bodies of current markers, by marker key (absent: unreadable, counted without numbers). */
  bodies: ReadonlyMap<string, MarkerFacts>;
  failures: ReadonlyMap<TaskId, FailureFacts>;
  /** Part records of unfinished tasks at their current fingerprint. */
  parts: ReadonlyMap<
    TaskId,
    readonly {
      part: number;
      total: number;
      counts: Record<string, number>;
      outputs: readonly OutputRecord[];
    }[]
  >;
  leases: readonly LeaseFacts[];
  stats?: StatsView;
}

/** Task graphs up to this size get a task-level DAG picture too. */
export const TASK_DAG_LIMIT = 150;
/** Throughput charts have at most about this many buckets. */
const TARGET_BUCKETS = 200;
/** Reasons a row is left out of a part (tasks/pack/part.ts). */
export const NOT_PACKED_REASONS = ['missing', 'corrupt_gzip', 'undecodable'] as const;

type Metrics = KindMetrics;

const n = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** What a task's counts mean for the totals: its kind says (`metrics`), else nothing. */
const metricsOf = (kind: TaskKind, counts: Record<string, number>): Metrics =>
  kindOf(kind).metrics?.(counts) ?? noMetrics();

export function emptyCounters(): Counters {
  return {
    tasks: 0,
    done: 0,
    running: 0,
    failed: 0,
    stale: 0,
    pending: 0,
    blocked: 0,
    rowsIn: 0,
    rowsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    notPacked: {},
    busyMs: 0,
  };
}

function addMetrics(c: Counters, m: Metrics, counts: Record<string, number>): void {
  c.rowsIn += m.rowsIn;
  c.rowsOut += m.rowsOut;
  c.bytesIn += m.bytesIn;
  c.bytesOut += m.bytesOut;
  for (const r of NOT_PACKED_REASONS) {
    const v = n(counts[r]);
    if (v > 0) c.notPacked[r] = (c.notPacked[r] ?? 0) + v;
  }
}

/** Sums part records' counts (a running pack's finished parts). */
function sumCounts(parts: readonly { counts: Record<string, number> }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of parts)
    for (const [k, v] of Object.entries(p.counts)) out[k] = (out[k] ?? 0) + n(v);
  return out;
}

const parseTime = (s: string | undefined): number | undefined => {
  if (s === undefined) return undefined;
  const t = Date.parse(s);
  return Number.isFinite(t) ? t : undefined;
};

/** A value as one shell word (single quotes), for the retry commands shown on the page. */
export const shellWord = (s: string): string =>
  /^[A-Za-z0-9_./:@=-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;

/** The store URL of an output, for links to `.errors.jsonl` objects. */
const outputUrl = (input: ReportInput, o: OutputRecord): string => {
  const base =
    o.store === 'bucket' ? input.pipeline.bucket : o.store === 'state' ? input.pipeline.state : '';
  return base === '' ? o.key : `${base.replace(/\/+$/, '')}/${o.key}`;
};

export function buildReport(input: ReportInput): ReportModel {
  const { graph } = input;
  const stageIndex = new Map<string, number>();
  const stages: StageInfo[] = input.pipeline.stages.map((s, i) => {
    stageIndex.set(s.name, i);
    return { name: s.name, kind: s.kind, foreach: s.foreach, needs: [...s.needs], color: i };
  });
  const totals = emptyCounters();
  const progress = new Map<string, { stage: number; language: string } & Counters>();
  const row = (stage: number, language: string) => {
    const k = `${String(stage)}\0${language}`;
    let r = progress.get(k);
    if (r === undefined) progress.set(k, (r = { stage, language, ...emptyCounters() }));
    return r;
  };
  const laneIndex = new Map<string, number>();
  const lanes: Lane[] = [];
  const lane = (host: string, worker: string): number => {
    const k = `${host}\0${worker}`;
    let i = laneIndex.get(k);
    if (i === undefined) {
      i = lanes.length;
      laneIndex.set(k, i);
      lanes.push({ host, worker, slots: 1 });
    }
    return i;
  };
  // The latest lease per task (live and stale ones, and finished records for takeovers).
  const leaseOf = new Map<TaskId, LeaseFacts>();
  for (const l of input.leases) {
    const prev = leaseOf.get(l.task);
    if (prev === undefined || l.epoch > prev.epoch) leaseOf.set(l.task, l);
  }
  const tasks: TaskView[] = [];
  const notPacked = new Map<string, NotPackedRow>();
  const failed: FailedTask[] = [];
  const throughputSrc: {
    host: string;
    start: number;
    end: number;
    m: Metrics;
    finished: boolean;
  }[] = [];

  for (const id of graph.order) {
    const t = graph.tasks.get(id);
    if (t === undefined) continue;
    const si = stageIndex.get(t.stage) ?? 0;
    const fp = input.fingerprints.get(id);
    const refs = input.markers.get(id) ?? [];
    const fresh = refs.find((r) => r.fingerprint === fp);
    const lease = leaseOf.get(id);
    const live =
      lease?.state === 'live' && fp !== undefined && fp.startsWith(lease.fingerprint)
        ? lease
        : undefined;
    const failure = input.failures.get(id);
    const view: TaskView = { id, stage: si, state: 'pending' };
    if (t.language !== undefined) view.language = t.language;
    const r = row(si, t.language ?? '');
    let counts: Record<string, number> | undefined;
    if (fresh !== undefined) {
      view.state = 'done';
      const body = input.bodies.get(fresh.key);
      if (body !== undefined) {
        counts = body.counts;
        const start = parseTime(body.startedAt);
        const end = parseTime(body.finishedAt);
        view.lane = lane(body.host, body.worker);
        if (start !== undefined) view.start = start;
        if (end !== undefined) view.end = end;
        if (body.attempts !== undefined) view.attempts = body.attempts;
        if (start !== undefined && end !== undefined) {
          r.busyMs += Math.max(0, end - start);
          throughputSrc.push({
            host: body.host,
            start,
            end,
            m: metricsOf(t.kind, body.counts),
            finished: true,
          });
        }
        for (const o of body.outputs)
          if (o.key.endsWith('.errors.jsonl'))
            notPackedRow(notPacked, t.language).files.push(outputUrl(input, o));
      }
      if (lease !== undefined && fp?.startsWith(lease.fingerprint) === true && lease.epoch > 0)
        view.epoch = lease.epoch;
    } else if (live !== undefined) {
      view.state = 'running';
      view.epoch = live.epoch;
      view.lane = lane(live.host ?? '?', live.worker ?? '?');
      if (live.claimedAt !== undefined) view.start = live.claimedAt;
      const parts = input.parts.get(id) ?? [];
      if (parts.length > 0) {
        counts = sumCounts(parts);
        view.parts = [parts.length, parts[0]?.total ?? 0];
        for (const p of parts)
          for (const o of p.outputs)
            if (o.key.endsWith('.errors.jsonl'))
              notPackedRow(notPacked, t.language).files.push(outputUrl(input, o));
        if (live.claimedAt !== undefined) {
          throughputSrc.push({
            host: live.host ?? '?',
            start: live.claimedAt,
            end: Math.max(live.claimedAt, input.now),
            m: metricsOf(t.kind, counts),
            finished: false,
          });
        }
      }
    } else if (failure !== undefined) {
      view.state = 'failed';
      const f: FailedTask = {
        task: id,
        stage: t.stage,
        reason: failure.failure.reason ?? 'unknown',
        message: failure.failure.message ?? '(no message recorded)',
      };
      if (t.language !== undefined) f.language = t.language;
      const at = parseTime(failure.at);
      if (at !== undefined) f.at = at;
      if (failure.host !== undefined) f.host = failure.host;
      if (failure.worker !== undefined) f.worker = failure.worker;
      if (failure.attempts !== undefined) f.attempts = failure.attempts;
      failed.push(f);
    } else if (refs.length > 0) view.state = 'stale';
    if (counts !== undefined) {
      const m = metricsOf(t.kind, counts);
      if (m.rows !== undefined) view.rows = m.rows;
      if (m.bytes !== undefined) view.bytes = m.bytes;
      addMetrics(r, m, counts);
      if (t.kind === 'pack') {
        const np = notPackedRow(notPacked, t.language);
        for (const reason of NOT_PACKED_REASONS) {
          const v = n(counts[reason]);
          if (v > 0) np.counts[reason] = (np.counts[reason] ?? 0) + v;
        }
      }
    }
    r.tasks++;
    r[view.state]++;
    tasks.push(view);
  }
  for (const p of graph.pending) row(stageIndex.get(p.stage) ?? 0, p.language).blocked++;
  assignSlots(tasks, lanes, input.now);

  const progressRows = [...progress.values()].sort(
    (a, b) => a.stage - b.stage || (a.language < b.language ? -1 : a.language > b.language ? 1 : 0),
  );
  for (const r of progressRows) addCounters(totals, r);

  const failedStages = [...new Set(failed.map((f) => f.stage))];
  const file = shellWord(input.pipeline.file);
  return {
    schema: 1,
    generatedAt: input.now,
    pipeline: {
      file: input.pipeline.file,
      repo: input.pipeline.repo,
      revision: input.pipeline.revision,
      source: input.pipeline.source,
      state: input.pipeline.state,
      bucket: input.pipeline.bucket,
    },
    totals,
    stages,
    progress: progressRows,
    lanes,
    tasks,
    staleLeases: input.leases
      .filter((l) => l.state === 'stale')
      .map((l) => ({ task: l.task, worker: l.worker ?? '?', host: l.host ?? '?' })),
    throughput: throughput(throughputSrc, input.now),
    errors: {
      failed,
      retry: failedStages.map((s) => `npx stackflow run ${shellWord(s)} -f ${file}`),
      notPacked: [...notPacked.values()]
        .filter((x) => Object.keys(x.counts).length > 0 || x.files.length > 0)
        .sort((a, b) => (a.language < b.language ? -1 : 1)),
    },
    dag: {
      stages: stageDag(stages, progressRows),
      ...(graph.order.length <= TASK_DAG_LIMIT ? { tasks: taskDag(graph, tasks) } : {}),
    },
    ...(input.stats !== undefined ? { stats: input.stats } : {}),
  };
}

/**
 * Stacks the tasks of each lane into rows so that bars never overlap: by start time, each task
 * takes the first row free at its start (greedy interval partitioning, optimal in rows).
 */
export function assignSlots(tasks: TaskView[], lanes: Lane[], now: number): void {
  const byLane = new Map<number, TaskView[]>();
  for (const t of tasks) {
    if (t.lane === undefined || t.start === undefined) continue;
    const list = byLane.get(t.lane);
    if (list === undefined) byLane.set(t.lane, [t]);
    else list.push(t);
  }
  for (const [lane, list] of byLane) {
    list.sort((a, b) => (a.start ?? 0) - (b.start ?? 0));
    const freeAt: number[] = [];
    for (const t of list) {
      const start = t.start ?? 0;
      let slot = freeAt.findIndex((end) => end <= start);
      if (slot < 0) slot = freeAt.length;
      freeAt[slot] = t.end ?? now;
      t.slot = slot;
    }
    const l = lanes[lane];
    if (l !== undefined) l.slots = Math.max(1, freeAt.length);
  }
}

function notPackedRow(map: Map<string, NotPackedRow>, language: string | undefined): NotPackedRow {
  const k = language ?? '';
  let r = map.get(k);
  if (r === undefined) map.set(k, (r = { language: k, counts: {}, files: [] }));
  return r;
}

function addCounters(into: Counters, c: Counters): void {
  for (const k of [
    'tasks',
    'done',
    'running',
    'failed',
    'stale',
    'pending',
    'blocked',
    'rowsIn',
    'rowsOut',
    'bytesIn',
    'bytesOut',
    'busyMs',
  ] as const)
    into[k] += c[k];
  for (const [k, v] of Object.entries(c.notPacked))
    into.notPacked[k] = (into.notPacked[k] ?? 0) + v;
}

function stageDag(
  stages: readonly StageInfo[],
  rows: readonly ({ stage: number } & Counters)[],
): DagView {
  return {
    nodes: stages.map((s, i) => {
      const mine = rows.filter((r) => r.stage === i);
      return {
        id: s.name,
        label: s.name,
        stage: i,
        done: mine.reduce((a, r) => a + r.done, 0),
        total: mine.reduce((a, r) => a + r.tasks, 0),
      };
    }),
    edges: stages.flatMap((s) => s.needs.map((d): [string, string] => [d, s.name])),
  };
}

function taskDag(graph: Graph, tasks: readonly TaskView[]): DagView {
  return {
    nodes: tasks.map((t) => ({ id: t.id, label: t.id, stage: t.stage, state: t.state })),
    edges: graph.order.flatMap((id) =>
      (graph.tasks.get(id)?.deps ?? []).map((d): [string, string] => [d, id]),
    ),
  };
}

const NICE_STEPS_S = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
];

/**
 * Throughput per time bucket, for the fleet and per host: each task's rows, bytes and GETs are
 * spread evenly over its run (start to finish; a running pack: claim to now, its finished parts).
 */
export function throughput(
  src: readonly { host: string; start: number; end: number; m: Metrics; finished: boolean }[],
  now: number,
): ReportModel['throughput'] {
  const empty = (len: number): Series => ({
    rowsPerS: new Array<number>(len).fill(0),
    mbPerS: new Array<number>(len).fill(0),
    getsPerS: new Array<number>(len).fill(0),
    finished: new Array<number>(len).fill(0),
  });
  if (src.length === 0) return { t: [], stepMs: 1000, fleet: empty(0), hosts: {} };
  let t0 = Infinity;
  let t1 = -Infinity;
  for (const s of src) {
    t0 = Math.min(t0, s.start);
    t1 = Math.max(t1, s.end, s.finished ? s.end : now);
  }
  const span = Math.max(1000, t1 - t0);
  const stepS = NICE_STEPS_S.find((s) => span / 1000 / s <= TARGET_BUCKETS) ?? 86400;
  const stepMs = stepS * 1000;
  const start = Math.floor(t0 / stepMs) * stepMs;
  const len = Math.max(1, Math.ceil((t1 - start) / stepMs) + (t1 % stepMs === 0 ? 1 : 0));
  const fleet = empty(len);
  const hosts: Record<string, Series> = {};
  for (const s of src) {
    const h = (hosts[s.host] ??= empty(len));
    const dur = Math.max(1, s.end - s.start);
    const first = Math.floor((s.start - start) / stepMs);
    const last = Math.min(len - 1, Math.floor((s.end - start) / stepMs));
    for (let b = first; b <= last; b++) {
      const bs = start + b * stepMs;
      const overlap = Math.max(0, Math.min(s.end, bs + stepMs) - Math.max(s.start, bs));
      // A task shorter than a millisecond still counts, in its bucket.
      const share = s.end === s.start ? 1 : overlap / dur;
      if (share === 0) continue;
      for (const series of [fleet, h]) {
        series.rowsPerS[b] = (series.rowsPerS[b] ?? 0) + ((s.m.rows ?? 0) * share) / stepS;
        series.mbPerS[b] = (series.mbPerS[b] ?? 0) + ((s.m.bytes ?? 0) * share) / 1e6 / stepS;
        series.getsPerS[b] = (series.getsPerS[b] ?? 0) + (s.m.gets * share) / stepS;
      }
    }
    if (s.finished && last >= 0) {
      fleet.finished[last] = (fleet.finished[last] ?? 0) + 1;
      h.finished[last] = (h.finished[last] ?? 0) + 1;
    }
  }
  const round = (x: Series): Series => ({
    rowsPerS: x.rowsPerS.map((v) => Math.round(v * 100) / 100),
    mbPerS: x.mbPerS.map((v) => Math.round(v * 1000) / 1000),
    getsPerS: x.getsPerS.map((v) => Math.round(v * 100) / 100),
    finished: x.finished,
  });
  return {
    t: Array.from({ length: len }, (_, i) => start + i * stepMs),
    stepMs,
    fleet: round(fleet),
    hosts: Object.fromEntries(Object.entries(hosts).map(([k, v]) => [k, round(v)])),
  };
}
