/**
 * EFFECTS. Gathers what the pure planner needs (languages, manifests, marker snapshot, output
 * listings, input digests, params archive), in as few store requests as possible: one paginated
 * listing of markers, one of the work store, one of the bucket, one manifest read per language.
 */
import { join } from 'node:path';
import pLimit from 'p-limit';
import type { Result } from './errors.js';
import { err, ok } from './errors.js';
import type { Fingerprint } from './fingerprint.js';
import {
  cmp,
  fingerprintGraph,
  freshMarker,
  redactSecrets,
  stageKeyedParams,
} from './fingerprint.js';
import type { Graph } from './graph.js';
import { expandGraph, filterLanguages, selectSubgraph, taskId } from './graph.js';
import type { HubSource } from './io/hub/hub.js';
import { MirrorHub } from './io/hub/hub-mirror.js';
import { openHfHub } from './io/hub/hub-hf.js';
import { readManifest, readParamsArchive, snapshotState } from './io/state/markers.js';
import type { ObjectStore } from './io/stores/object-store.js';
import { forEachKey, forEachKeySized } from './io/stores/object-store.js';
import { openStore } from './io/stores/store-url.js';
import type { Manifest, Pipeline, StageName, TaskId, TaskKind } from './model.js';
import { objectKey } from './model.js';
import type { OutputListing } from './outputs.js';
import { bucketPrefixes, indexListing, missingOutputs, packObjectOf } from './outputs.js';
import type { MarkerRef, PlannerInput } from './planner.js';
import type { TaskDefinition } from './task-api.js';
import type { Stores } from './executor.js';
import { gatherLocalInputs } from './inputs.js';
import type { RetryNotice } from './util/retry.js';

/** Manifest reads in flight at once while planning (each is one small GET). */
const MANIFEST_READS = 32;

/** Everything opened for one pipeline. */
export interface Session {
  pipeline: Pipeline;
  cacheDir: string;
  stores: Stores;
  hub: HubSource;
  content: ObjectStore;
  registry: { readonly [K in TaskKind]: TaskDefinition };
  /**
   * Requests to S3 or the Hub repeated after a transient failure, so far; `notify` (set by the
   * command that prints) hears each one.
   */
  requestRetries: { count: number; notify?: (n: RetryNotice) => void };
  /**
   * Manifests read so far, by `<language>/<discover fingerprint>`: a manifest is written once
   * per fingerprint (the revision is pinned), so a worker's later planning rounds need not read
   * it again.
   */
  manifests: Map<string, Manifest>;
}

export interface SessionOptions {
  /** Where endpoints, regions and tokens are read from (default: process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** The run's interrupt, handed to the stores (lock waits end when it aborts). */
  signal?: AbortSignal;
}

/**
 * Sockets for the content store: enough for the pack stages' fetches in flight, each stage's
 * `concurrency` per pack times the packs it runs at once (what the host's sizing set).
 */
function contentSockets(pipeline: Pipeline): number {
  const wanted = pipeline.stages
    .filter((st) => st.kind === 'pack')
    .map(
      (st) =>
        (typeof st.params.concurrency === 'number' ? st.params.concurrency : 64) * (st.limit ?? 1),
    );
  return Math.max(
    64,
    wanted.reduce((a, b) => a + b, 0),
  );
}

/**
 * The content store's S3 client options: `maxSockets` keep-alive sockets and one attempt per GET
 * (pack's fetcher retries, outside its adaptive fetch window, and must see every 503 SlowDown; a
 * retry inside the SDK would hide it from the window). bench/lib/scale-bare.ts builds its
 * reference client from these too (with lib/io/stores/s3-store.ts s3ClientConfig), so the bench
 * compares pack with the very client pack uses.
 */
export const contentStoreOptions = (
  maxSockets: number,
): { maxSockets: number; retries: number } => ({
  maxSockets,
  retries: 0,
});

export function openSession(
  pipeline: Pipeline,
  cacheDir: string,
  registry: Session['registry'],
  opts: SessionOptions = {},
): Result<Session> {
  const env = opts.env ?? process.env;
  const requestRetries: Session['requestRetries'] = { count: 0 };
  const onRetry = (n: RetryNotice) => {
    requestRetries.count++;
    requestRetries.notify?.(n);
  };
  const storeOpts = (maxSockets = 64) => ({
    s3: pipeline.s3,
    env,
    s3Store: { onRetry, maxSockets },
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const bucket = openStore(pipeline.bucket, storeOpts());
  if (!bucket.ok) return bucket;
  const state = openStore(pipeline.state, storeOpts());
  if (!state.ok) return state;
  const work = openStore(pipeline.work, storeOpts());
  if (!work.ok) return work;
  const content = openStore(pipeline.content.source, {
    s3: pipeline.s3,
    env,
    s3Store: { ...contentStoreOptions(contentSockets(pipeline)), onRetry },
  });
  if (!content.ok) return content;
  const src = pipeline.dataset.source;
  let hub: HubSource;
  if (src.startsWith('file://')) hub = new MirrorHub(src.slice('file://'.length));
  else {
    const hf = openHfHub(src, env, { downloadsDir: join(cacheDir, 'downloads'), onRetry });
    if (!hf.ok) return hf;
    hub = hf.value;
  }
  return ok({
    pipeline,
    cacheDir,
    stores: { work: work.value, bucket: bucket.value, state: state.value },
    hub,
    content: content.value,
    registry,
    requestRetries,
    manifests: new Map(),
  });
}

/** The languages a run covers: the configured list or every folder, then `--only`. */
export async function resolveLanguages(
  s: Session,
  only: readonly string[] | undefined,
): Promise<Result<string[]>> {
  let langs: string[];
  const cfg = s.pipeline.dataset.languages;
  if (cfg === 'all') {
    const r = await s.hub.listLanguages(s.pipeline.dataset.revision);
    if (!r.ok) return r;
    langs = r.value;
  } else langs = [...cfg];
  const f = filterLanguages(langs.sort(cmp), only);
  if (f.unknown.length > 0) {
    return err({
      reason: 'invalid-input',
      message: `--only names languages that are not in the pipeline: ${f.unknown.join(', ')}`,
    });
  }
  return ok(f.languages);
}

/** A planned snapshot: the graph with fingerprints and the planner's input. */
export interface Snapshot {
  graph: Graph;
  fingerprints: Map<TaskId, Fingerprint>;
  markers: Map<TaskId, MarkerRef[]>;
  manifests: Map<string, Manifest>;
  /** Tasks with a failure record. */
  failures: Set<TaskId>;
  /** Damaged state objects found (and treated as absent), to be reported as notes. */
  notes: { task?: TaskId; message: string }[];
  plannerInput: Omit<PlannerInput, 'forced'>;
}

/**
 * Reads the state, expands the graph for `targets` and computes fingerprints. With `preview`,
 * languages without a manifest are listed directly (read-only) so a dry run shows the full plan.
 */
export async function snapshot(
  s: Session,
  languages: readonly string[],
  targets: readonly string[],
  opts: {
    preview: boolean;
    /** Delete damaged state objects found (a real run; never a dry run or `status`). */
    heal?: boolean;
  },
): Promise<Result<Snapshot & { unknownTargets: string[] }>> {
  const state = await snapshotState(s.stores.state);
  if (!state.ok) return state;
  const { markers, failures } = state.value;
  const notes: Snapshot['notes'] = [];
  const discover = s.pipeline.stages.find((st) => st.kind === 'discover');
  const manifests = new Map<string, Manifest>();
  const discoverFps = new Map<TaskId, Fingerprint>();
  const missingManifest = new Set<TaskId>();
  if (discover !== undefined) {
    const g0 = expandGraph({ ...s.pipeline, stages: [discover] }, languages, new Map());
    const fps0 = await fingerprintAll(s, g0);
    // The manifests not read yet, read MANIFEST_READS at a time: a worker's first round reads
    // one per language (658 for the whole dataset), which one after the other is 658 round trips.
    const toRead = languages.flatMap((lang) => {
      const fp = fps0.get(taskId(discover.name, lang));
      const wanted =
        fp !== undefined &&
        !s.manifests.has(`${lang}/${fp.hash}`) &&
        freshMarker(markers.get(taskId(discover.name, lang)), fp) !== undefined;
      return wanted ? [{ lang, fp }] : [];
    });
    const limit = pLimit(MANIFEST_READS);
    const read = new Map(
      await Promise.all(
        toRead.map(({ lang, fp }) =>
          limit(async () => [lang, await readManifest(s.stores.state, lang, fp.hash)] as const),
        ),
      ),
    );
    for (const lang of languages) {
      const id = taskId(discover.name, lang);
      const fp = fps0.get(id);
      if (fp === undefined) continue;
      discoverFps.set(id, fp);
      const fresh = freshMarker(markers.get(id), fp) !== undefined;
      if (fresh) {
        const known = s.manifests.get(`${lang}/${fp.hash}`);
        const m =
          known !== undefined
            ? ok({ state: 'ok' as const, value: known })
            : (read.get(lang) ?? (await readManifest(s.stores.state, lang, fp.hash)));
        if (m.ok && m.value.state === 'ok') {
          manifests.set(lang, m.value.value);
          s.manifests.set(`${lang}/${fp.hash}`, m.value.value);
        } else {
          // Absent, damaged or unreadable: discover runs again and writes it anew.
          missingManifest.add(id);
          if (m.ok && m.value.state === 'damaged') {
            notes.push({
              task: id,
              message: `its manifest was damaged (${m.value.why}): discover runs again`,
            });
          }
        }
      }
      if (!manifests.has(lang) && opts.preview) {
        const files = await s.hub.listFiles(lang, s.pipeline.dataset.revision);
        if (files.ok) {
          manifests.set(lang, {
            language: lang,
            revision: s.pipeline.dataset.revision,
            files: files.value,
          });
        }
      }
    }
  }
  const full = expandGraph(s.pipeline, languages, manifests);
  const { graph, unknown } = selectSubgraph(full, targets);
  const fingerprints = await fingerprintAll(s, graph);
  const freshRefs = new Map<TaskId, MarkerRef>();
  for (const id of graph.order) {
    const ref = freshMarker(markers.get(id), fingerprints.get(id));
    if (ref !== undefined) freshRefs.set(id, ref);
  }
  const missing = new Map<TaskId, string[]>();
  for (const id of missingManifest) missing.set(id, ['manifest']);
  if (freshRefs.size > 0) {
    const listing = await listOutputs(s);
    if (!listing.ok) return listing;
    for (const [id, ref] of freshRefs) {
      const t = graph.tasks.get(id);
      if (t === undefined) continue;
      const m = missingOutputs(t, graph, listing.value, ref.outputs);
      if (m.length > 0) missing.set(id, m);
    }
  }
  const staleParams = new Set<string>();
  for (const id of graph.order) {
    const fp = fingerprints.get(id);
    const t = graph.tasks.get(id);
    for (const m of markers.get(id) ?? []) {
      if (t && fp && m.params !== fp.components.params) staleParams.add(`${t.stage}/${m.params}`);
    }
  }
  // Compared with archived params, which are stored with secrets redacted.
  const stageParams = new Map<StageName, unknown>(
    s.pipeline.stages.map((st) => [st.name, redactSecrets(stageKeyedParams(st, s.registry))]),
  );
  const archived = await readParamsArchive(s.stores.state, staleParams);
  for (const key of archived.damaged) {
    notes.push({ message: `params archive entry ${key} was damaged: ignored` });
    // Reported once: the entry only explains old markers, and stays absent from now on.
    if (opts.heal === true) await s.stores.state.delete(objectKey(key));
  }
  return ok({
    graph,
    fingerprints,
    notes,
    markers: markers,
    manifests,
    failures: failures,
    unknownTargets: unknown,
    plannerInput: {
      graph,
      fingerprints,
      markers: markers,
      stageParams,
      paramsArchive: archived.params,
      missingOutputs: missing,
    },
  });
}

/** Fingerprints in topological order: local input digests gathered, then one pure function. */
async function fingerprintAll(s: Session, g: Graph): Promise<Map<TaskId, Fingerprint>> {
  return fingerprintGraph({
    graph: g,
    stages: s.pipeline.stages,
    kinds: s.registry,
    revision: s.pipeline.dataset.revision,
    localInputs: await gatherLocalInputs(g, s.registry, join(s.pipeline.file, '..')),
  });
}

/**
 * One listing of the work store, and one of each bucket prefix the stages write under, with the
 * sizes of pack objects (free in an S3 listing; a local stat each on a filesystem store).
 */
async function listOutputs(s: Session): Promise<Result<OutputListing>> {
  const work = new Set<string>();
  const w = await forEachKey(s.stores.work, '', (k) => work.add(k));
  if (!w.ok) return w;
  const bucket = new Set<string>();
  const sizes = new Map<string, number>();
  const sized = (k: string): boolean => packObjectOf(k) !== undefined;
  for (const prefix of bucketPrefixes(s.pipeline)) {
    const b = await forEachKeySized(s.stores.bucket, prefix, sized, (o) => {
      bucket.add(o.key);
      if (o.size !== undefined) sizes.set(o.key, o.size);
    });
    if (!b.ok) return b;
  }
  return ok(indexListing(work, bucket, sizes));
}
