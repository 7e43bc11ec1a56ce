/**
 * EFFECTS. The shard manager's tools for a shared graph: `unlock --stale` drops leases whose
 * holder stopped heartbeating, `reset <pattern>` forgets completion markers so those tasks run
 * again. Both report exactly what they removed.
 */
import type { Result } from './errors.js';
import { err, ok } from './errors.js';
import { globMatcher, parseTaskId } from './graph.js';
import { deleteKeys, listPartRecords, snapshotMarkers } from './io/state/markers.js';
import { listLeases } from './leases.js';
import { objectKey } from './model.js';
import type { TaskId } from './model.js';
import type { Session } from './session.js';
import type { RunningTask } from './status.js';
import { leaseHolders } from './status.js';
import { failureKey, taskIdFromPath } from './io/state/keys.js';

/**
 * Deletes every stale lease (judged by the store's clock); live ones are never touched, nor the
 * leases of finished claims (their fingerprint has a marker: they keep late planners from
 * running the task again, see leases.ts).
 */
export async function unlockStale(
  s: Session,
): Promise<Result<{ dropped: RunningTask[]; live: number }>> {
  const markers = await snapshotMarkers(s.stores.state);
  if (!markers.ok) return markers;
  const holders = await leaseHolders(s, markers.value);
  if (!holders.ok) return holders;
  for (const l of holders.value.stale) {
    for (const key of l.keys) {
      const d = await s.stores.state.delete(objectKey(key));
      if (!d.ok) return d;
    }
  }
  return ok({
    dropped: holders.value.stale.map(({ keys: _keys, ...r }) => r),
    live: holders.value.live.length,
  });
}

/** A pattern matches a task id (exact or glob such as `pack:C++/*`) or a stage name. */
export function resetMatcher(patterns: readonly string[]): (id: TaskId) => boolean {
  const ms = patterns.map((p) => ({ glob: globMatcher(p), stage: p }));
  return (id) => ms.some((m) => m.glob(id) || parseTaskId(id).stage === m.stage);
}

/**
 * Forgets the markers (every fingerprint), failure records, part records (every fingerprint: a
 * reset task starts from its first part) and finished claims (leases) of the matching tasks.
 * Markers first: a lease outlives its marker only for the moment between.
 */
export async function resetTasks(
  s: Session,
  patterns: readonly string[],
): Promise<Result<{ tasks: TaskId[]; markers: number; leases: number; parts: number }>> {
  if (patterns.length === 0) {
    return err({ reason: 'invalid-input', message: 'reset needs a task id, glob or stage name' });
  }
  return forgetTasks(s, resetMatcher(patterns));
}

/** What `reset` does, for the tasks `match` selects (`verify --repair` passes exact ids). */
export async function forgetTasks(
  s: Session,
  match: (id: TaskId) => boolean,
): Promise<Result<{ tasks: TaskId[]; markers: number; leases: number; parts: number }>> {
  const markers = await snapshotMarkers(s.stores.state);
  if (!markers.ok) return markers;
  const partRecords = await listPartRecords(s.stores.state);
  if (!partRecords.ok) return partRecords;
  const tasks = new Set<TaskId>();
  let count = 0;
  for (const [id, refs] of markers.value) {
    if (!match(id)) continue;
    tasks.add(id);
    for (const r of refs) {
      const d = await s.stores.state.delete(objectKey(r.key));
      if (!d.ok) return d;
      count++;
    }
    const t = parseTaskId(id);
    // Result dropped on purpose: the failure record is display only (status); a leftover one
    // is overwritten by the next failure or removed by the next success.
    await s.stores.state.delete(objectKey(failureKey(t)));
  }
  let parts = 0;
  for (const [id, keys] of partRecords.value) {
    if (!match(id)) continue;
    tasks.add(id);
    const d = await deleteKeys(s.stores.state, keys);
    if (!d.ok) return d;
    parts += keys.length;
  }
  let leases = 0;
  const reset = tasks;
  const held = await listLeases(s.stores.state);
  if (!held.ok) return held;
  for (const entries of held.value.values()) {
    const id = entries[0] === undefined ? undefined : taskIdFromPath(entries[0].task);
    if (id === undefined || !reset.has(id)) continue;
    // Top down, as everywhere: a lower epoch never goes missing while a higher one exists.
    for (const e of [...entries].reverse()) {
      const d = await s.stores.state.delete(objectKey(e.key));
      if (!d.ok) return d;
      leases++;
    }
  }
  return ok({ tasks: [...tasks].sort(), markers: count, leases, parts });
}
