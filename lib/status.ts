/**
 * `stackflow status`: per stage, how many tasks are done (fresh marker), stale (a marker for an
 * older fingerprint), pending (never ran), failed (last attempt failed) or blocked (waiting for a
 * language's manifest), and running (a live lease: holder and age). Per worker: tasks done (from
 * the marker keys) and running. Read from one listing of markers and failure records, one of
 * leases, plus one read per failure record (its message) and per live lease (its holder).
 */
import type { Result } from './errors.js';
import { ok } from './errors.js';
import { freshMarker } from './fingerprint.js';
import { parseTaskId } from './graph.js';
import type { TaskId } from './model.js';
import { objectKey } from './model.js';
import type { LeaseBody } from './leases.js';
import type { MarkerRef } from './planner.js';
import { isStale, listLeases, StoreClock } from './leases.js';
import type { Session } from './session.js';
import { resolveLanguages, snapshot } from './session.js';
import { failureKey, taskIdFromPath } from './io/state/keys.js';

export interface StageStatus {
  stage: string;
  done: number;
  running: number;
  stale: number;
  pending: number;
  failed: number;
  blocked: number;
  /** Up to 10 failed task ids with their last failure message. */
  failures: { task: string; message: string }[];
}

export interface RunningTask {
  task: string;
  worker: string;
  host: string;
  /** Seconds since the claim, by the holder's clock (display only). */
  ageS: number;
  /** Seconds since the last heartbeat landed, by the store's clock. */
  heartbeatAgeS: number | undefined;
  epoch: number;
  /** The holder's claim time (ISO, its own clock), when its lease body says. */
  claimedAt?: string;
}

export interface WorkerStatus {
  worker: string;
  done: number;
  running: number;
}

export interface Status {
  stages: StageStatus[];
  running: RunningTask[];
  /** Leases whose holder stopped heartbeating (`stackflow unlock --stale` drops them). */
  stale: RunningTask[];
  workers: WorkerStatus[];
}

/**
 * Live and stale leases with their holders. Leases of a fingerprint that has a marker are the
 * record of a finished claim (see leases.ts), neither running nor stale: they are left out.
 */
export async function leaseHolders(
  s: Session,
  markers: ReadonlyMap<TaskId, readonly Pick<MarkerRef, 'fingerprint'>[]>,
): Promise<
  Result<{
    live: RunningTask[];
    stale: (RunningTask & { keys: string[] })[];
    /** Finished claims (a marker exists at the lease's fingerprint): the latest epoch of each. */
    finished: { task: TaskId; fingerprint: string; epoch: number }[];
  }>
> {
  const leases = await listLeases(s.stores.state);
  if (!leases.ok) return leases;
  const live: RunningTask[] = [];
  const stale: (RunningTask & { keys: string[] })[] = [];
  const finished: { task: TaskId; fingerprint: string; epoch: number }[] = [];
  if (leases.value.size === 0) return ok({ live, stale, finished });
  const now = await new StoreClock(s.stores.state).now();
  if (!now.ok) return now;
  for (const entries of leases.value.values()) {
    const latest = entries.at(-1);
    const id = latest === undefined ? undefined : taskIdFromPath(latest.task);
    if (latest === undefined || id === undefined) continue;
    if (markers.get(id)?.some((m) => m.fingerprint.startsWith(latest.fingerprint)) === true) {
      finished.push({ task: id, fingerprint: latest.fingerprint, epoch: latest.epoch });
      continue;
    }
    const body = await s.stores.state.get(objectKey(latest.key));
    let holder: Partial<LeaseBody> = {};
    if (body.ok) {
      try {
        holder = JSON.parse(body.value.toString('utf8')) as LeaseBody;
      } catch {
        holder = {};
      }
    }
    const row: RunningTask = {
      task: id,
      worker: holder.worker ?? '?',
      host: holder.host ?? '?',
      ageS:
        holder.claimedAt !== undefined
          ? Math.max(0, Math.round((Date.now() - Date.parse(holder.claimedAt)) / 1000))
          : 0,
      heartbeatAgeS:
        latest.modified !== undefined
          ? Math.max(0, Math.round((now.value - latest.modified) / 1000))
          : undefined,
      epoch: latest.epoch,
      ...(typeof holder.claimedAt === 'string' ? { claimedAt: holder.claimedAt } : {}),
    };
    const ttlMs = typeof holder.ttlMs === 'number' ? holder.ttlMs : 60_000;
    if (isStale(latest, now.value, ttlMs)) stale.push({ ...row, keys: entries.map((e) => e.key) });
    else live.push(row);
  }
  return ok({ live, stale, finished });
}

export async function statusOf(s: Session): Promise<Result<Status>> {
  const langs = await resolveLanguages(s, undefined);
  if (!langs.ok) return langs;
  const snap = await snapshot(
    s,
    langs.value,
    s.pipeline.stages.map((st) => st.name),
    { preview: false },
  );
  if (!snap.ok) return snap;
  // The failure records the snapshot found, each read for its message.
  const failed = new Map<TaskId, string>();
  for (const id of snap.value.failures) {
    const body = await s.stores.state.get(objectKey(failureKey(parseTaskId(id))));
    let message = '';
    if (body.ok) {
      try {
        message = (JSON.parse(body.value.toString('utf8')) as { failure: { message: string } })
          .failure.message;
      } catch {
        message = '(unreadable failure record)';
      }
    }
    failed.set(id, message);
  }
  const { graph, fingerprints, markers } = snap.value;
  const out = new Map<string, StageStatus>(
    s.pipeline.stages.map((st) => [
      st.name,
      {
        stage: st.name,
        done: 0,
        running: 0,
        stale: 0,
        pending: 0,
        failed: 0,
        blocked: 0,
        failures: [],
      },
    ]),
  );
  const holders = await leaseHolders(s, markers);
  if (!holders.ok) return holders;
  const runningIds = new Set(holders.value.live.map((r) => r.task));
  const workers = new Map<string, WorkerStatus>();
  const worker = (w: string): WorkerStatus => {
    let row = workers.get(w);
    if (row === undefined) workers.set(w, (row = { worker: w, done: 0, running: 0 }));
    return row;
  };
  for (const r of holders.value.live) worker(r.worker).running++;
  for (const id of graph.order) {
    const t = graph.tasks.get(id);
    const row = t && out.get(t.stage);
    if (t === undefined || row === undefined) continue;
    const refs = markers.get(id) ?? [];
    const fp = fingerprints.get(id);
    const fresh = freshMarker(refs, fp);
    if (fresh !== undefined) {
      row.done++;
      worker(fresh.worker ?? '(unrecorded)').done++;
    } else if (runningIds.has(id)) row.running++;
    else if (failed.has(id)) {
      row.failed++;
      if (row.failures.length < 10) row.failures.push({ task: id, message: failed.get(id) ?? '' });
    } else if (refs.length > 0) row.stale++;
    else row.pending++;
  }
  for (const p of graph.pending) {
    const row = out.get(p.stage);
    if (row) row.blocked++;
  }
  return ok({
    stages: [...out.values()],
    running: holders.value.live,
    stale: holders.value.stale.map(({ keys: _keys, ...r }) => r),
    workers: [...workers.values()].sort((a, b) => (a.worker < b.worker ? -1 : 1)),
  });
}

export function renderStatus(st: Status): string {
  const rows = st.stages;
  const w = Math.max(5, ...rows.map((r) => r.stage.length));
  const cols = ['done', 'running', 'stale', 'pending', 'failed', 'blocked'] as const;
  const lines = [['stage'.padEnd(w), ...cols.map((c) => c.padStart(8))].join(' ')];
  for (const r of rows)
    lines.push([r.stage.padEnd(w), ...cols.map((c) => String(r[c]).padStart(8))].join(' '));
  const fails = rows.flatMap((r) => r.failures);
  if (fails.length > 0) {
    lines.push('', 'Failed:');
    for (const f of fails) lines.push(`  ${f.task}: ${f.message}`);
  }
  if (st.running.length > 0) {
    lines.push('', 'Running:');
    for (const r of st.running) {
      const hb =
        r.heartbeatAgeS === undefined ? '' : `, last heartbeat ${String(r.heartbeatAgeS)}s ago`;
      lines.push(`  ${r.task}: ${r.worker} on ${r.host}, for ${String(r.ageS)}s${hb}`);
    }
  }
  if (st.stale.length > 0) {
    lines.push(
      '',
      'Stale leases (holder silent past the TTL; `stackflow unlock --stale` drops them):',
    );
    for (const r of st.stale) lines.push(`  ${r.task}: ${r.worker} on ${r.host}`);
  }
  if (st.workers.length > 0) {
    lines.push('', 'Workers:');
    const ww = Math.max(6, ...st.workers.map((x) => x.worker.length));
    lines.push(`  ${'worker'.padEnd(ww)} ${'done'.padStart(8)} ${'running'.padStart(8)}`);
    for (const x of st.workers) {
      lines.push(
        `  ${x.worker.padEnd(ww)} ${String(x.done).padStart(8)} ${String(x.running).padStart(8)}`,
      );
    }
  }
  if (rows.some((r) => r.blocked > 0)) {
    lines.push(
      '',
      'blocked = the stage expands per parquet once discover has listed that language.',
    );
  }
  lines.push(
    '',
    'The run as a page (progress, timeline, throughput, errors): stackflow report -o report.html',
  );
  return lines.join('\n') + '\n';
}
