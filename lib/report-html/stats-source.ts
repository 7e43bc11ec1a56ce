/**
 * EFFECTS. The dataset statistics a report shows: the stats-merge task's `summary.json` when it
 * is done, else the per-language files of the stats tasks that are done (read through their
 * markers' outputs, so a custom prefix is found). Absent or unreadable: no statistics section.
 */
import type { Graph } from '../graph.js';
import type { OutputRecord } from '../io/state/markers.js';
import type { TaskId } from '../model.js';
import type { MarkerRef } from '../planner.js';
import type { Session } from '../session.js';
import { orderedMap } from '../util/ordered.js';
import { readJson } from './read-json.js';
import type { MarkerFacts } from './model.js';
import type { LanguageStats, StatsView } from './types.js';

/** Per-language files read at most, when there is no summary yet. */
const MAX_FILES = 1000;

/** What the report already gathered: which markers are current, and their bodies. */
export interface StatsSources {
  graph: Graph;
  markers: ReadonlyMap<TaskId, readonly MarkerRef[]>;
  /** The current fingerprint hash of each task: only its marker counts. */
  fingerprints: ReadonlyMap<TaskId, string>;
  /** Marker bodies read, by marker key. */
  bodies: ReadonlyMap<string, MarkerFacts>;
}

export async function readStats(
  s: Session,
  { graph, markers, fingerprints, bodies }: StatsSources,
): Promise<StatsView | undefined> {
  const outputsOf = (kind: string): OutputRecord[] =>
    graph.order.flatMap((id) => {
      if (graph.tasks.get(id)?.kind !== kind) return [];
      const fresh = markers.get(id)?.find((r) => r.fingerprint === fingerprints.get(id));
      const body = fresh === undefined ? undefined : bodies.get(fresh.key);
      return (body?.outputs ?? []).filter((o) => o.key.endsWith('.json'));
    });
  const url = (o: OutputRecord): string =>
    `${(o.store === 'bucket' ? s.pipeline.bucket : s.pipeline.state).replace(/\/+$/, '')}/${o.key}`;
  const [summary] = outputsOf('stats-merge');
  if (summary !== undefined) {
    const doc = await readJson<{ languages?: Record<string, LanguageStats> }>(
      s.stores[summary.store],
      summary.key,
    );
    if (doc?.languages !== undefined && typeof doc.languages === 'object')
      return { source: url(summary), languages: doc.languages };
  }
  const files = outputsOf('stats').slice(0, MAX_FILES);
  if (files.length === 0) return undefined;
  const languages: Record<string, LanguageStats> = {};
  for await (const st of orderedMap(files, 16, (o) =>
    readJson<LanguageStats>(s.stores[o.store], o.key),
  )) {
    if (st !== undefined && typeof st.language === 'string') languages[st.language] = st;
  }
  return {
    source: `${String(Object.keys(languages).length)} stats files (no summary yet)`,
    languages,
  };
}
