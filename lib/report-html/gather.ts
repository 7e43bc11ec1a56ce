/**
 * EFFECTS. Reads what the report needs from the state store (and the stats summary from the
 * bucket), then calls the pure model. Works against any state store, so the report can be made
 * on any machine while a fleet runs:
 * - the planning snapshot (one listing of markers and failure records, manifests), as `status`;
 * - one read per current marker (counts, times, host, worker), kept in a cache across `--watch`
 *   rounds: a marker key names its task, fingerprint and worker, and is written once;
 * - one read per failure record, one listing of leases (+ a read per live lease, as `status`);
 * - one listing of `parts/` and a read per part record of a running task;
 * - the stats summary, when a stats stage finished.
 */
import type { Result } from '../errors.js';
import { ok } from '../errors.js';
import { parseTaskId } from '../graph.js';
import type { MarkerBody, PartRecord } from '../io/state/markers.js';
import type { ObjectStore } from '../io/stores/object-store.js';
import { forEachKey } from '../io/stores/object-store.js';
import type { TaskId } from '../model.js';
import type { Session } from '../session.js';
import { resolveLanguages, snapshot } from '../session.js';
import { leaseHolders } from '../status.js';
import { orderedMap } from '../util/ordered.js';
import type { FailureFacts, LeaseFacts, MarkerFacts, ReportInput } from './model.js';
import { buildReport } from './model.js';
import type { ReportModel } from './types.js';
import { readJson } from './read-json.js';
import { readStats } from './stats-source.js';
import { failureKey, PARTS_PREFIX, parsePartRecordKey } from '../io/state/keys.js';

/** Reads in flight against the state store. */
const READS = 32;

/** Marker bodies already read, by key (a `--watch` loop reads each marker once). */
export type MarkerCache = Map<string, MarkerFacts>;

export async function gatherReport(
  s: Session,
  cache: MarkerCache = new Map(),
  now: () => number = Date.now,
): Promise<Result<ReportModel>> {
  const langs = await resolveLanguages(s, undefined);
  if (!langs.ok) return langs;
  const snap = await snapshot(
    s,
    langs.value,
    s.pipeline.stages.map((st) => st.name),
    { preview: false },
  );
  if (!snap.ok) return snap;
  const { graph, markers } = snap.value;
  const fingerprints = new Map<TaskId, string>();
  for (const [id, fp] of snap.value.fingerprints) fingerprints.set(id, fp.hash);
  const state = s.stores.state;

  const freshKeys: string[] = [];
  for (const id of graph.order) {
    const fresh = markers.get(id)?.find((r) => r.fingerprint === fingerprints.get(id));
    if (fresh !== undefined && !cache.has(fresh.key)) freshKeys.push(fresh.key);
  }
  for await (const [key, body] of orderedMap(freshKeys, READS, async (k) => {
    return [k, await readJson<MarkerBody>(state, k)] as const;
  })) {
    if (body !== undefined) cache.set(key, markerFacts(body));
  }

  const failures = new Map<TaskId, FailureFacts>();
  for await (const [id, rec] of orderedMap(snap.value.failures, READS, async (id) => {
    return [id, await readJson<FailureFacts>(state, failureKey(parseTaskId(id)))] as const;
  })) {
    failures.set(id, rec ?? { failure: { message: '(unreadable failure record)' } });
  }

  const holders = await leaseHolders(s, markers);
  if (!holders.ok) return holders;
  const leases: LeaseFacts[] = [];
  for (const r of holders.value.live) leases.push(leaseFacts(r, 'live', fingerprints));
  for (const r of holders.value.stale) leases.push(leaseFacts(r, 'stale', fingerprints));
  for (const f of holders.value.finished) leases.push({ ...f, state: 'finished' });

  const running = new Set(holders.value.live.map((r) => r.task as TaskId));
  const parts = await runningParts(state, running, fingerprints);
  if (!parts.ok) return parts;

  const stats = await readStats(s, { graph, markers, fingerprints, bodies: cache });
  const input: ReportInput = {
    now: now(),
    pipeline: {
      file: s.pipeline.file,
      repo: s.pipeline.dataset.repo,
      revision: s.pipeline.dataset.revision,
      source: s.pipeline.dataset.source,
      state: s.pipeline.state,
      bucket: s.pipeline.bucket,
      stages: s.pipeline.stages,
    },
    graph,
    fingerprints,
    markers,
    bodies: cache,
    failures,
    parts: parts.value,
    leases,
    ...(stats !== undefined ? { stats } : {}),
  };
  return ok(buildReport(input));
}

function markerFacts(b: MarkerBody): MarkerFacts {
  return {
    counts: typeof b.counts === 'object' ? b.counts : {},
    outputs: Array.isArray(b.outputs) ? b.outputs : [],
    host: typeof b.host === 'string' ? b.host : '?',
    worker: typeof b.worker === 'string' ? b.worker : '?',
    startedAt: b.startedAt,
    finishedAt: b.finishedAt,
    ...(typeof b.attempts === 'number' ? { attempts: b.attempts } : {}),
  };
}

function leaseFacts(
  r: { task: string; worker: string; host: string; epoch: number; claimedAt?: string },
  state: 'live' | 'stale',
  fingerprints: ReadonlyMap<TaskId, string>,
): LeaseFacts {
  const claimed = r.claimedAt === undefined ? NaN : Date.parse(r.claimedAt);
  return {
    task: r.task as TaskId,
    // leaseHolders reports only the latest epoch of a task's current leases.
    fingerprint: (fingerprints.get(r.task as TaskId) ?? '').slice(0, 16),
    epoch: r.epoch,
    state,
    worker: r.worker,
    host: r.host,
    ...(Number.isFinite(claimed) ? { claimedAt: claimed } : {}),
  };
}

/** Part records (`parts/<task path>/<fingerprint>/<part>.json`) of running tasks. */
async function runningParts(
  state: ObjectStore,
  running: ReadonlySet<TaskId>,
  fingerprints: ReadonlyMap<TaskId, string>,
): Promise<Result<Map<TaskId, PartRecord[]>>> {
  const out = new Map<TaskId, PartRecord[]>();
  if (running.size === 0) return ok(out);
  const keys: { id: TaskId; key: string }[] = [];
  const listed = await forEachKey(state, PARTS_PREFIX, (key) => {
    const p = parsePartRecordKey(key);
    if (p?.part === undefined) return;
    if (!running.has(p.task) || fingerprints.get(p.task) !== p.fingerprint) return;
    keys.push({ id: p.task, key });
  });
  if (!listed.ok) return listed;
  for await (const [id, rec] of orderedMap(keys, READS, async ({ id, key }) => {
    return [id, await readJson<PartRecord>(state, key)] as const;
  })) {
    if (rec === undefined || typeof rec.part !== 'number') continue;
    const list = out.get(id);
    const clean: PartRecord = {
      part: rec.part,
      total: typeof rec.total === 'number' ? rec.total : 0,
      counts: typeof rec.counts === 'object' ? rec.counts : {},
      outputs: Array.isArray(rec.outputs) ? rec.outputs : [],
    };
    if (list === undefined) out.set(id, [clean]);
    else list.push(clean);
  }
  return ok(out);
}
