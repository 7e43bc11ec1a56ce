/**
 * `stackflow explain <task>`: why a task would run, field by field. Compares the fingerprint data
 * stored in the task's marker with the one computed now (one marker read: this is a question
 * about one task, not planning).
 */
import type { Result } from './errors.js';
import { err, ok } from './errors.js';
import { canonicalJson, freshMarker } from './fingerprint.js';
import type { FingerprintData } from './fingerprint.js';
import { readMarker } from './io/state/markers.js';
import type { TaskId } from './model.js';
import type { Session } from './session.js';
import { resolveLanguages, snapshot } from './session.js';

export interface Explanation {
  task: string;
  /** `fresh`: the marker matches; `missing`: no marker; `changed`: see `changes`. */
  state: 'fresh' | 'missing' | 'changed' | 'awaiting-manifest';
  fingerprint?: string;
  marker?: { key: string; finishedAt: string; host: string };
  /** Differences between the stored fingerprint data and the current one. */
  changes: { field: string; before: string; after: string }[];
}

export async function explain(s: Session, id: string): Promise<Result<Explanation>> {
  const langs = await resolveLanguages(s, undefined);
  if (!langs.ok) return langs;
  const snap = await snapshot(s, langs.value, [id], { preview: true });
  if (!snap.ok) return snap;
  const { fingerprints, markers, unknownTargets } = snap.value;
  if (unknownTargets.length > 0 || id.includes('*')) {
    return err({
      reason: 'invalid-input',
      message: `no task ${JSON.stringify(id)} (give one task id, e.g. pack:C++/train-00000-of-00002)`,
    });
  }
  const fp = fingerprints.get(id as TaskId);
  if (fp === undefined) return ok({ task: id, state: 'awaiting-manifest', changes: [] });
  const refs = markers.get(id as TaskId) ?? [];
  const ref = freshMarker(refs, fp) ?? refs[0];
  if (ref === undefined)
    return ok({ task: id, state: 'missing', fingerprint: fp.hash, changes: [] });
  const body = await readMarker(s.stores.state, ref.key);
  if (!body.ok) return body;
  const marker = { key: ref.key, finishedAt: body.value.finishedAt, host: body.value.host };
  if (ref.fingerprint === fp.hash) {
    return ok({ task: id, state: 'fresh', fingerprint: fp.hash, marker, changes: [] });
  }
  return ok({
    task: id,
    state: 'changed',
    fingerprint: fp.hash,
    marker,
    changes: diff(body.value.fingerprintData, fp.data),
  });
}

/** Leaf-level differences between two fingerprint data objects, with dotted paths. */
export function diff(before: FingerprintData, after: FingerprintData) {
  const out: { field: string; before: string; after: string }[] = [];
  const walk = (a: unknown, b: unknown, path: string): void => {
    if (canonicalJson(a) === canonicalJson(b)) return;
    const isObj = (v: unknown): v is Record<string, unknown> =>
      v !== null && typeof v === 'object' && !Array.isArray(v);
    if (isObj(a) && isObj(b)) {
      for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
        walk(a[k], b[k], path ? `${path}.${k}` : k);
      }
      return;
    }
    const show = (v: unknown): string => (v === undefined ? '(absent)' : canonicalJson(v));
    out.push({ field: path, before: show(a), after: show(b) });
  };
  walk(before, after, '');
  return out;
}

export function renderExplanation(e: Explanation): string {
  const lines = [`${e.task}: ${e.state}`];
  if (e.marker)
    lines.push(`  marker: ${e.marker.key} (finished ${e.marker.finishedAt} on ${e.marker.host})`);
  if (e.state === 'missing')
    lines.push('  no completion marker: it has never finished (or was reset).');
  if (e.state === 'awaiting-manifest') lines.push('  its language has not been discovered yet.');
  for (const c of e.changes) {
    const cut = (s: string): string => (s.length > 120 ? `${s.slice(0, 117)}...` : s);
    lines.push(`  ${c.field}:`, `    was: ${cut(c.before)}`, `    now: ${cut(c.after)}`);
  }
  return lines.join('\n') + '\n';
}
