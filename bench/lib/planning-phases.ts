/**
 * Where a dry run's time goes, phase by phase, for bench/planning.ts (run as a child process so
 * each measurement starts cold, like the CLI):
 *
 *   node --import tsx bench/lib/planning-phases.ts <pipeline.yaml> <cache dir>
 *
 * Prints one JSON object: milliseconds per phase, in the order `stackflow run --dry-run` runs
 * them (lib/cli.ts → lib/session.ts `snapshot` → lib/planner.ts `plan` → lib/report.ts), through
 * the same functions, each phase measured alone; their sum plus Node's startup and the CLI's
 * imports is the dry run. A CPU profile attributes time to functions; this attributes it to
 * steps, which async stacks blur in a profile.
 */
import { readFileSync } from 'node:fs';
import { parsePipeline } from '../../lib/config/parse.js';
import { fingerprintGraph } from '../../lib/fingerprint.js';
import { expandGraph, selectSubgraph } from '../../lib/graph.js';
import { readManifest, snapshotMarkers } from '../../lib/io/state/markers.js';
import { forEachKey, forEachKeySized, listAll } from '../../lib/io/stores/object-store.js';
import type { Manifest, TaskId } from '../../lib/model.js';
import { bucketPrefixes, indexListing, missingOutputs, packObjectOf } from '../../lib/outputs.js';
import { plan } from '../../lib/planner.js';
import { renderPlan } from '../../lib/report.js';
import { openSession } from '../../lib/session.js';
import { registry } from '../../tasks/index.js';
import { TARGETS } from './planning-fixture.js';

const [file, cacheDir] = process.argv.slice(2);
if (file === undefined || cacheDir === undefined) {
  throw new Error('usage: planning-phases.ts <pipeline.yaml> <cache dir>');
}
const ms: Record<string, number> = {};
const counts: Record<string, number> = {};
async function phase<T>(name: string, f: () => Promise<T> | T): Promise<T> {
  const t0 = performance.now();
  const v = await f();
  ms[name] = Math.round(performance.now() - t0);
  return v;
}
const must = <T>(r: { ok: true; value: T } | { ok: false; error: { message: string } }): T => {
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
};

const pipeline = await phase('parse pipeline.yaml', () => {
  const r = parsePipeline(readFileSync(file, 'utf8'), { path: file, displayName: file, cacheDir });
  if (!r.ok) throw new Error(`${file} does not parse`);
  return r.value;
});
const session = must(openSession(pipeline, cacheDir, registry));
const langs = pipeline.dataset.languages === 'all' ? [] : [...pipeline.dataset.languages].sort();
const markers = await phase('list markers (state store)', async () =>
  must(await snapshotMarkers(session.stores.state)),
);
counts.markers = [...markers.values()].reduce((a, m) => a + m.length, 0);
const manifests = await phase('read manifests (one per language)', async () => {
  const out = new Map<string, Manifest>();
  const keys: string[] = [];
  for (const o of must(await listAll(session.stores.state, 'manifests/'))) keys.push(o.key);
  for (const l of langs) {
    const fp = keys.find((k) => k.startsWith(`manifests/${encodeURIComponent(l)}/`));
    const hash = fp?.slice(fp.lastIndexOf('/') + 1, -'.json'.length);
    if (hash === undefined) continue;
    const m = must(await readManifest(session.stores.state, l, hash));
    if (m.state === 'ok') out.set(l, m.value);
  }
  return out;
});
const graph = await phase(
  'expand graph + select targets',
  () => selectSubgraph(expandGraph(pipeline, langs, manifests), [...TARGETS]).graph,
);
counts.tasks = graph.order.length;
const fingerprints = await phase('fingerprint every task', () =>
  // The engine's own function (no shell stage here, so no local inputs to gather).
  fingerprintGraph({
    graph,
    stages: pipeline.stages,
    kinds: registry,
    revision: pipeline.dataset.revision,
  }),
);
const listing = await phase('list outputs (work store + bucket)', async () => {
  const work = new Set<string>();
  must(await forEachKey(session.stores.work, '', (k) => work.add(k)));
  const bucket = new Set<string>();
  const sizes = new Map<string, number>();
  for (const prefix of bucketPrefixes(pipeline)) {
    must(
      await forEachKeySized(
        session.stores.bucket,
        prefix,
        (k) => packObjectOf(k) !== undefined,
        (o) => {
          bucket.add(o.key);
          if (o.size !== undefined) sizes.set(o.key, o.size);
        },
      ),
    );
  }
  counts.outputObjects = work.size + bucket.size;
  return indexListing(work, bucket, sizes);
});
const missing = await phase('check outputs of fresh tasks', () => {
  const out = new Map<TaskId, string[]>();
  for (const id of graph.order) {
    const t = graph.tasks.get(id);
    const fresh = markers.get(id)?.find((r) => r.fingerprint === fingerprints.get(id)?.hash);
    const m = t === undefined ? [] : missingOutputs(t, graph, listing, fresh?.outputs);
    if (m.length > 0) out.set(id, m);
  }
  return out;
});
const p = await phase('plan()', () =>
  plan({
    graph,
    fingerprints,
    markers,
    stageParams: new Map(),
    paramsArchive: new Map(),
    missingOutputs: missing,
    forced: () => false,
  }),
);
await phase('render the plan', () => renderPlan(p));
counts.skip = p.steps.filter((s) => s.action === 'skip').length;
process.stdout.write(JSON.stringify({ ms, counts }) + '\n');
