/**
 * `stackflow status`: per stage, how many tasks are done (fresh marker), stale (a marker for an
 * older fingerprint), pending (never ran), failed (last attempt failed) or blocked (waiting for a
 * language's manifest). Read from one listing of markers and one of failure records.
 */
import type { Result } from './errors.js';
import { err, ok } from './errors.js';
import { taskId } from './graph.js';
import { listAll, StoreError } from './io/object-store.js';
import type { TaskId } from './model.js';
import type { Session } from './session.js';
import { resolveLanguages, snapshot } from './session.js';

export interface StageStatus {
  stage: string;
  done: number;
  stale: number;
  pending: number;
  failed: number;
  blocked: number;
  /** Up to 10 failed task ids with their last failure message. */
  failures: { task: string; message: string }[];
}

export async function statusOf(s: Session): Promise<Result<StageStatus[]>> {
  const langs = await resolveLanguages(s, undefined);
  if (!langs.ok) return langs;
  const snap = await snapshot(
    s,
    langs.value,
    s.pipeline.stages.map((st) => st.name),
    { preview: false },
  );
  if (!snap.ok) return snap;
  const failed = new Map<TaskId, string>();
  try {
    for await (const o of listAll(s.stores.state, 'failures/')) {
      const segs = o.key
        .slice('failures/'.length)
        .replace(/\.json$/, '')
        .split('/')
        .map(decodeURIComponent);
      const [stage, lang, stem] = segs;
      if (stage === undefined || lang === undefined) continue;
      const id = lang === '@' ? taskId(stage) : taskId(stage, lang, stem);
      const body = await s.stores.state.get(o.key);
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
  } catch (e) {
    if (e instanceof StoreError) return err(e.failure);
    throw e;
  }
  const { graph, fingerprints, markers } = snap.value;
  const out = new Map<string, StageStatus>(
    s.pipeline.stages.map((st) => [
      st.name,
      { stage: st.name, done: 0, stale: 0, pending: 0, failed: 0, blocked: 0, failures: [] },
    ]),
  );
  for (const id of graph.order) {
    const t = graph.tasks.get(id);
    const row = t && out.get(t.stage);
    if (t === undefined || row === undefined) continue;
    const refs = markers.get(id) ?? [];
    const fp = fingerprints.get(id);
    if (refs.some((r) => r.fingerprint === fp?.hash)) row.done++;
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
  return ok([...out.values()]);
}

export function renderStatus(rows: StageStatus[]): string {
  const w = Math.max(5, ...rows.map((r) => r.stage.length));
  const cols = ['done', 'stale', 'pending', 'failed', 'blocked'] as const;
  const lines = [['stage'.padEnd(w), ...cols.map((c) => c.padStart(8))].join(' ')];
  for (const r of rows)
    lines.push([r.stage.padEnd(w), ...cols.map((c) => String(r[c]).padStart(8))].join(' '));
  const fails = rows.flatMap((r) => r.failures);
  if (fails.length > 0) {
    lines.push('', 'Failed:');
    for (const f of fails) lines.push(`  ${f.task}: ${f.message}`);
  }
  if (rows.some((r) => r.blocked > 0)) {
    lines.push(
      '',
      'blocked = the stage expands per parquet once discover has listed that language.',
    );
  }
  return lines.join('\n') + '\n';
}
