/**
 * PURE. (graph, fingerprints, marker snapshot, output listing, flags) → plan in run order.
 *
 * Each task is `run` (with a reason), `skip` (fresh) or `blocked` (its expansion waits for a
 * manifest). The reason for a stale task comes from the component hashes in its marker's key, so
 * no marker is read to explain it; "which param" comes from the params archive, which has one
 * entry per distinct params set of a stage, not one per task.
 */
import { changedParams, freshMarker } from './fingerprint.js';
import type { Fingerprint } from './fingerprint.js';
import type { Graph } from './graph.js';
import type { Plan, PlanStep, StageName, TaskId } from './model.js';
import type { OutputsSummary } from './outputs.js';

/** What a marker's key says about it (see lib/io/state/markers.ts for the key shape). */
export interface MarkerRef {
  /** The marker's key in the state store. */
  key: string;
  /** Full fingerprint hash the task had when it completed. */
  fingerprint: string;
  /** Component hashes at that time. */
  code: string;
  params: string;
  inputs: string;
  /**
   * What the marker's outputs add up to (count and digest, see outputs.ts), when the key says
   * (markers since the summary was added).
   */
  outputs?: OutputsSummary;
  /** The worker that completed it, when the key says (markers since workers were added). */
  worker?: string;
}

export interface PlannerInput {
  graph: Graph;
  fingerprints: ReadonlyMap<TaskId, Fingerprint>;
  /** Markers found by listing, per task. */
  markers: ReadonlyMap<TaskId, readonly MarkerRef[]>;
  /** Current params template per stage. */
  stageParams: ReadonlyMap<StageName, unknown>;
  /** Old params templates by `<stage>/<params component>`, as far as they could be read. */
  paramsArchive: ReadonlyMap<string, unknown>;
  /** Fresh-by-marker tasks whose outputs are gone, with the missing keys. */
  missingOutputs: ReadonlyMap<TaskId, readonly string[]>;
  /** Tasks to run even when fresh. */
  forced: (id: TaskId) => boolean;
}

export function plan(input: PlannerInput): Plan {
  const steps: PlanStep[] = [];
  for (const id of input.graph.order) {
    const task = input.graph.tasks.get(id);
    const fp = input.fingerprints.get(id);
    if (task === undefined || fp === undefined) {
      throw new Error(`Internal error: task ${id} has no instance or fingerprint`);
    }
    const base = { task: id, stage: task.stage };
    const refs = input.markers.get(id) ?? [];
    const fresh = freshMarker(refs, fp);
    if (fresh !== undefined) {
      const missing = input.missingOutputs.get(id);
      if (input.forced(id)) steps.push({ ...base, action: 'run', reason: 'forced' });
      else if (missing !== undefined && missing.length > 0) {
        steps.push({
          ...base,
          action: 'run',
          reason: 'output-missing',
          detail: summarize(missing),
        });
      } else steps.push({ ...base, action: 'skip', reason: 'fresh' });
      continue;
    }
    const old = refs[0];
    if (old === undefined) {
      steps.push({ ...base, action: 'run', reason: input.forced(id) ? 'forced' : 'missing' });
    } else if (old.code !== fp.components.code) {
      steps.push({ ...base, action: 'run', reason: 'code-changed' });
    } else if (old.params !== fp.components.params) {
      const before = input.paramsArchive.get(`${task.stage}/${old.params}`);
      const names =
        before === undefined ? [] : changedParams(before, input.stageParams.get(task.stage));
      steps.push({
        ...base,
        action: 'run',
        reason: 'params-changed',
        detail: names.length > 0 ? names.join(', ') : 'params changed',
      });
    } else {
      steps.push({ ...base, action: 'run', reason: 'input-changed' });
    }
  }
  for (const p of input.graph.pending) {
    steps.push({
      task: p.id,
      stage: p.stage,
      action: 'blocked',
      reason: 'awaiting-manifest',
      detail: `expands once ${p.awaiting} has listed the files`,
    });
  }
  return { steps };
}

function summarize(keys: readonly string[]): string {
  const first = keys[0] ?? '';
  return keys.length === 1 ? first : `${first} and ${keys.length - 1} more`;
}

/** Counts per stage and action/reason, for the dry-run table. */
export function summarizePlan(p: Plan): Map<StageName, Map<string, number>> {
  const out = new Map<StageName, Map<string, number>>();
  for (const s of p.steps) {
    const m = out.get(s.stage) ?? new Map<string, number>();
    const k = s.action === 'skip' ? 'fresh' : s.action === 'blocked' ? 'blocked' : s.reason;
    m.set(k, (m.get(k) ?? 0) + 1);
    out.set(s.stage, m);
  }
  return out;
}
