/**
 * EFFECTS. What a task's dependencies produced, for its context (`ctx.upstream`): their marker
 * bodies (this run's, else read from the state store). The planner trusts marker keys without
 * reading bodies, so this is where a damaged marker shows; it is handled here, once.
 */
import type { Result } from './errors.js';
import { ok } from './errors.js';
import type { ExecEnv } from './executor.js';
import { freshMarker } from './fingerprint.js';
import type { MarkerBody, OutputRecord } from './io/state/markers.js';
import { readMarkerState } from './io/state/markers.js';
import type { TaskId, TaskInstance, TaskKind } from './model.js';
import { objectKey } from './model.js';
import { markerKey } from './io/state/keys.js';

type UpstreamEnv = Pick<ExecEnv, 'graph' | 'fingerprints' | 'markers' | 'emit'> & {
  stores: Pick<ExecEnv['stores'], 'state'>;
};

/**
 * Outputs of each dependency: from this run's markers, else read from the state store. A
 * dependency whose marker is damaged (torn, foreign) or gone is not done, whatever the plan
 * said: its marker is deleted, the damage reported once as a note, and it is listed in
 * `damaged` so that it runs again before this task.
 */
export async function upstreamOutputs(
  task: TaskInstance,
  env: UpstreamEnv,
  bodies: Map<TaskId, MarkerBody>,
): Promise<
  Result<{ outputs: Map<TaskId, { kind: TaskKind; outputs: OutputRecord[] }>; damaged: TaskId[] }>
> {
  const outputs = new Map<TaskId, { kind: TaskKind; outputs: OutputRecord[] }>();
  const damaged: TaskId[] = [];
  for (const d of task.deps) {
    const dep = env.graph.tasks.get(d);
    const fp = env.fingerprints.get(d);
    if (dep === undefined || fp === undefined) throw new Error(`Internal error: dep ${d} unknown`);
    let body = bodies.get(d);
    if (body === undefined) {
      const ref = freshMarker(env.markers.get(d), fp);
      const key = ref?.key ?? markerKey(dep, fp);
      const r = await readMarkerState(env.stores.state, key);
      if (!r.ok) return r;
      if (r.value.state !== 'ok') {
        if (r.value.state === 'damaged') {
          const dropped = await env.stores.state.delete(objectKey(key));
          if (!dropped.ok) return dropped;
        }
        env.emit({
          type: 'note',
          task: d,
          message:
            r.value.state === 'damaged'
              ? `its marker was damaged (${r.value.why}): it runs again before ${task.id}`
              : `its marker is gone: it runs again before ${task.id}`,
        });
        damaged.push(d);
        continue;
      }
      body = r.value.value;
      bodies.set(d, body);
    }
    outputs.set(d, { kind: dep.kind, outputs: body.outputs });
  }
  return ok({ outputs, damaged });
}
