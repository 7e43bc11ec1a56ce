/**
 * What each store request of a fleet run was for, from its operation and key (recorded by
 * fleet-proxy.ts). The key layout is the one README "Markers and state layout" documents, under
 * the bench pipeline's roots `state/`, `work/` and `out/`.
 */
import type { ProxiedRequest } from './fleet-proxy.js';

/** Where a request belongs. */
export type Group = 'startup' | 'planning' | 'task' | 'other';

export interface Purpose {
  group: Group;
  /** The stage a per-task request served (from the key), when it names one. */
  stage?: string;
  /** Short label: what the protocol does with this request. */
  what: string;
}

/** Labels for per-task requests, by `<op> <area>` (412 answers get their own). */
const LABELS: Readonly<Record<string, string>> = {
  'PutObject(create-only) state/leases': 'claim: create lease epoch 0 (won)',
  'PutObject(create-only)→412 state/leases': 'claim: create lease epoch 0 (lost, 412)',
  'ListObjectsV2 state/leases': 'claim lost: list the lease dir (stale?) / heartbeat check',
  'GetObject state/leases': 'claim lost: read holder TTL',
  'PutObject state/leases': 'heartbeat',
  'DeleteObject state/leases': 'release: delete lease',
  'ListObjectsV2 state/markers': 'after a won claim: done-check (marker list, 1 key)',
  'GetObject state/markers': 'read upstream marker (dependency outputs)',
  'DeleteObject state/markers': 'delete the old marker',
  'PutObject state/markers': 'write marker',
  'DeleteObject state/failures': 'delete failure record',
  'PutObject state/failures': 'write failure record',
  'HeadObject state/params': 'params archive: exists?',
  'PutObject state/params': 'params archive: write',
  'PutObject(create-only) state/params': 'params archive: write (create-only)',
  'PutObject(create-only)→412 state/params': 'params archive: write (412, exists)',
  'ListObjectsV2 state/parts': 'part records: clear',
  'PutObject state/manifests': 'write manifest (discover)',
  'PutObject work/': 'publish output',
  'HeadObject work/': 'verify output',
};

/**
 * Names what a request was for. `runningStage` is the stage of the task its worker was running
 * when it was sent (workers run one task at a time in the bench), which is who a request inside a
 * task window served: a task reads its dependency's marker, whose key names the dependency.
 */
export function purposeOf(r: ProxiedRequest, runningStage?: string): Purpose {
  const key = r.key;
  const segs = key.split('/');
  if (key.startsWith('state/_probe/')) {
    return { group: 'startup', what: '--worker store probe (create-only, If-Match, deletes)' };
  }
  if (key.startsWith('state/_clock/')) {
    return { group: 'startup', what: 'store clock (write + HEAD + delete)' };
  }
  // A listing of a whole root or area is the planner's snapshot.
  if (r.op === 'ListObjectsV2' && /^(state\/[^/]+\/|work\/|out\/|state\/)?$/.test(key)) {
    return { group: 'planning', what: `plan: list ${key === '' ? '(bucket)' : key}` };
  }
  if (r.op === 'GetObject' && key.startsWith('state/manifests/')) {
    return { group: 'planning', what: 'plan: read manifest' };
  }
  const op = r.status === 412 ? `${r.op}→412` : r.op;
  if (key.startsWith('state/')) {
    const area = segs.slice(0, 2).join('/');
    const stage = runningStage ?? (area === 'state/manifests' ? 'discover' : segs[2]);
    const what = LABELS[`${op} ${area}`] ?? `${op} ${area}`;
    return { group: 'task', ...(stage !== undefined ? { stage } : {}), what };
  }
  if (key.startsWith('work/')) {
    const what = LABELS[`${op} work/`] ?? `${op} work/`;
    const stage = runningStage ?? segs[1];
    return { group: 'task', ...(stage !== undefined ? { stage } : {}), what };
  }
  return { group: 'other', what: `${op} ${r.area}` };
}

/** When one worker ran one task (task-started to its end event), by the events' clock. */
export interface TaskWindow {
  worker: number;
  stage: string;
  from: number;
  to: number;
}

export interface AttributionRow {
  group: Group;
  stage: string;
  what: string;
  requests: number;
  /** Requests per task of `stage` (per shell task for planning and startup rows). */
  perTask: number;
  /** Median latency seen through the proxy, ms. */
  p50Ms: number;
}

/**
 * Rows by (group, stage, what), with per-task rates: task rows per task of their stage,
 * planning and startup rows per task of `mainStage` (amortized).
 */
export function attribute(
  requests: readonly ProxiedRequest[],
  tasksPerStage: ReadonlyMap<string, number>,
  mainStage: string,
  windows: readonly TaskWindow[],
): AttributionRow[] {
  const byWorker = new Map<number, TaskWindow[]>();
  for (const w of windows) byWorker.set(w.worker, [...(byWorker.get(w.worker) ?? []), w]);
  const runningStage = (r: ProxiedRequest) =>
    byWorker.get(r.worker)?.find((w) => r.start >= w.from && r.start <= w.to)?.stage;
  const rows = new Map<string, { p: Purpose; stage: string; lat: number[] }>();
  for (const r of requests) {
    const p = purposeOf(r, runningStage(r));
    const stage = p.group === 'task' ? (p.stage ?? '?') : '(all)';
    const k = `${p.group}\0${stage}\0${p.what}`;
    const row = rows.get(k) ?? { p, stage, lat: [] };
    row.lat.push(r.end - r.start);
    rows.set(k, row);
  }
  const order: Record<Group, number> = { task: 0, planning: 1, startup: 2, other: 3 };
  return [...rows.values()]
    .map(({ p, stage, lat }) => {
      const per = tasksPerStage.get(p.group === 'task' ? stage : mainStage) ?? 0;
      lat.sort((a, b) => a - b);
      return {
        group: p.group,
        stage,
        what: p.what,
        requests: lat.length,
        perTask: per === 0 ? 0 : round(lat.length / per, 3),
        p50Ms: lat[Math.floor(lat.length / 2)] ?? 0,
      };
    })
    .sort(
      (a, b) =>
        order[a.group] - order[b.group] ||
        a.stage.localeCompare(b.stage) ||
        b.requests - a.requests,
    );
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));
