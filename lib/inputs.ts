/**
 * EFFECTS. The gather step before fingerprinting: digests (size + sha256) of the local files each
 * task reads, through its kind's `localInputFiles` hook. Every distinct params set is asked once
 * and every file hashed once, however many tasks share them.
 */
import type { InputDigest } from './fingerprint.js';
import type { Graph } from './graph.js';
import { sha256File } from './io/fs/files.js';
import type { TaskId, TaskKind } from './model.js';
import type { TaskDefinition } from './task-api.js';
import { canonicalJson } from './fingerprint.js';

export async function gatherLocalInputs(
  graph: Pick<Graph, 'order' | 'tasks'>,
  kinds: { readonly [K in TaskKind]: Pick<TaskDefinition, 'localInputFiles'> },
  pipelineDir: string,
): Promise<Map<TaskId, InputDigest[]>> {
  const out = new Map<TaskId, InputDigest[]>();
  const byParams = new Map<string, InputDigest[]>();
  const byFile = new Map<string, { size: number; sha256: string }>();
  for (const id of graph.order) {
    const t = graph.tasks.get(id);
    const hook = t === undefined ? undefined : kinds[t.kind].localInputFiles;
    if (t === undefined || hook === undefined) continue;
    const key = `${t.kind}\0${canonicalJson(t.params)}`;
    let digests = byParams.get(key);
    if (digests === undefined) {
      digests = [];
      for (const f of await hook(t.params, pipelineDir)) {
        let d = byFile.get(f);
        if (d === undefined) byFile.set(f, (d = await sha256File(f)));
        digests.push({ name: f.slice(pipelineDir.length + 1), ...d });
      }
      byParams.set(key, digests);
    }
    if (digests.length > 0) out.set(id, digests);
  }
  return out;
}
