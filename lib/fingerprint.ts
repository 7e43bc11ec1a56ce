/**
 * PURE. A fingerprint is canonical data: a plain object with sorted keys, serialised to JSON and
 * hashed with sha256. Two runs that would produce the same bytes have the same fingerprint; any
 * difference that could change the bytes changes it.
 *
 * Besides the full hash we keep three short component hashes (code, params, inputs). They go into
 * the marker's key, so the planner can say *why* a task is stale from a listing alone, without
 * reading one marker per task.
 */
import * as crypto from 'node:crypto';
import type { FingerprintHash, StageName, TaskId, TaskInstance, TaskKind } from './model.js';

/** Bump when the shape of FingerprintData changes: every old marker then reads as code-changed. */
export const FINGERPRINT_SCHEMA = 1;

/** The content of a task's key. Every field says why it is in the key. */
export interface FingerprintData {
  /** The layout of this object itself; see FINGERPRINT_SCHEMA. */
  schema: number;
  /** Different kinds produce different outputs from the same inputs. */
  kind: string;
  /** The kind's implementation version: bumping it reruns exactly that kind's tasks. */
  implVersion: string;
  /** Versions of libraries whose output bytes the task depends on (DuckDB, zstd). */
  tools: Record<string, string>;
  /** The task's identity: tasks with equal inputs but different ids write different outputs. */
  task: string;
  /** Params after defaults and templating: any param can change the output. */
  params: unknown;
  /** The pinned dataset revision: a new revision may list different bytes under the same path. */
  revision: string;
  /** Identities of the files the task reads, sorted by name so order never matters. */
  inputs: { name: string; size: number; sha256: string }[];
  /** Fingerprints of the tasks it depends on, sorted by task id: a changed upstream reruns us. */
  upstream: { task: string; fingerprint: string }[];
}

/** A computed fingerprint. */
export interface Fingerprint {
  hash: FingerprintHash;
  data: FingerprintData;
  /** Short hashes of parts of the data, used in marker keys to explain staleness. */
  components: FingerprintComponents;
}

export interface FingerprintComponents {
  /** kind + implVersion + tools + schema. */
  code: string;
  /** The stage's params template (same for every task of a stage). */
  params: string;
  /** task id + revision + inputs + upstream. */
  inputs: string;
}

/** JSON with object keys sorted recursively; arrays keep their order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = sortKeys(v);
    }
    return out;
  }
  return value;
}

/**
 * sha256 as hex. `crypto.hash` (Node ≥ 20.12) is the one-shot form, about twice as fast for the
 * small inputs fingerprints hash (two per task); older Node 20 releases use a Hash object.
 */
export const sha256Hex: (s: string | Uint8Array) => string =
  typeof crypto.hash === 'function'
    ? (s) => crypto.hash('sha256', s, 'hex')
    : (s) => crypto.createHash('sha256').update(s).digest('hex');

const short = (v: unknown): string => sha256Hex(canonicalJson(v)).slice(0, 8);

/** Per-object memo for values shared by every task of a stage (same object, same hash). */
const memo = new WeakMap<object, Map<string, string>>();
function memoized(obj: unknown, key: string, compute: () => string): string {
  if (obj === null || typeof obj !== 'object') return compute();
  let m = memo.get(obj);
  if (m === undefined) memo.set(obj, (m = new Map<string, string>()));
  let v = m.get(key);
  if (v === undefined) m.set(key, (v = compute()));
  return v;
}

/** Hash of a stage's params template: the `params` component. */
export const paramsComponent = (stageParams: unknown): string =>
  memoized(stageParams, 'params', () => short(stageParams));

export interface FingerprintInput {
  task: TaskInstance;
  implVersion: string;
  tools: Record<string, string>;
  revision: string;
  /** The stage's params before templating (defaults applied). */
  stageParams: unknown;
  inputs: { name: string; size: number; sha256: string }[];
  upstream: ReadonlyMap<TaskId, Fingerprint>;
}

export function computeFingerprint(x: FingerprintInput): Fingerprint {
  const upstream = x.task.deps
    .map((d) => {
      const f = x.upstream.get(d);
      if (f === undefined) throw new Error(`Internal error: no fingerprint for dependency ${d}`);
      return { task: d, fingerprint: f.hash };
    })
    .sort((a, b) => cmp(a.task, b.task));
  const inputs = [...x.inputs].sort((a, b) => cmp(a.name, b.name));
  const data: FingerprintData = {
    schema: FINGERPRINT_SCHEMA,
    kind: x.task.kind,
    implVersion: x.implVersion,
    tools: x.tools,
    task: x.task.id,
    params: redactSecrets(x.task.params),
    revision: x.revision,
    inputs,
    upstream,
  };
  // canonicalJson(data) and the inputs component's canonical JSON, assembled from pieces that
  // are each canonicalised once (keys in the order sortKeys gives them): the same bytes, at
  // half the cost for a graph of 100,000 tasks. test/unit/fingerprint.test.ts holds them equal.
  const J = JSON.stringify;
  const inputsJ = canonicalJson(inputs);
  const upstreamJ = canonicalJson(upstream);
  const toolsJ = memoized(x.tools, 'json', () => canonicalJson(x.tools));
  const canonical = `{"implVersion":${J(data.implVersion)},"inputs":${inputsJ},"kind":${J(data.kind)},"params":${canonicalJson(data.params)},"revision":${J(data.revision)},"schema":${J(data.schema)},"task":${J(data.task)},"tools":${toolsJ},"upstream":${upstreamJ}}`;
  const inputsCanonical = `{"inputs":${inputsJ},"rev":${J(data.revision)},"task":${J(data.task)},"upstream":${upstreamJ}}`;
  return {
    hash: sha256Hex(canonical) as FingerprintHash,
    data,
    components: {
      code: memoized(x.tools, `${data.kind}\0${data.implVersion}`, () =>
        short({ schema: data.schema, kind: data.kind, v: data.implVersion, tools: data.tools }),
      ),
      params: paramsComponent(x.stageParams),
      inputs: sha256Hex(inputsCanonical).slice(0, 8),
    },
  };
}

/** What fingerprinting needs of a task kind (a TaskDefinition has it). */
export interface KindIdentity {
  version: string;
  tools: Record<string, string>;
  runtimeParams?: readonly string[];
}

/** A local file's identity, as it enters a fingerprint. */
export interface InputDigest {
  name: string;
  size: number;
  sha256: string;
}

export interface GraphFingerprintInput {
  /** The expanded graph (lib/graph.ts Graph): its tasks and a run order, dependencies first. */
  graph: { order: readonly TaskId[]; tasks: ReadonlyMap<TaskId, TaskInstance> };
  stages: readonly { name: StageName; kind: TaskKind; params: Record<string, unknown> }[];
  kinds: { readonly [K in TaskKind]: KindIdentity };
  /** The pinned dataset revision. */
  revision: string;
  /** Digests of the local files each task reads (lib/inputs.ts gathers them); absent: none. */
  localInputs?: ReadonlyMap<TaskId, readonly InputDigest[]>;
}

/**
 * Every task's fingerprint, in topological order (dependencies first): the one place that
 * decides what enters a task's key. A task's inputs are its parquet (size + sha256 from the
 * manifest) and the local files it reads; its params are the keyed ones (runtime params left
 * out), and its params component is the stage's keyed params template.
 */
export function fingerprintGraph(x: GraphFingerprintInput): Map<TaskId, Fingerprint> {
  const out = new Map<TaskId, Fingerprint>();
  // One object per stage: the params component is memoized by object identity.
  const stageParams = new Map(x.stages.map((st) => [st.name, stageKeyedParams(st, x.kinds)]));
  for (const id of x.graph.order) {
    const t = x.graph.tasks.get(id);
    if (t === undefined) continue;
    const def = x.kinds[t.kind];
    const local = x.localInputs?.get(id) ?? [];
    const inputs: InputDigest[] =
      t.file !== undefined
        ? [{ name: t.file.path, size: t.file.size, sha256: t.file.sha256 }, ...local]
        : [...local];
    out.set(
      id,
      computeFingerprint({
        task: { ...t, params: keyedParams(t.params, def.runtimeParams ?? []) },
        implVersion: def.version,
        tools: def.tools,
        revision: x.revision,
        stageParams: stageParams.get(t.stage) ?? {},
        inputs,
        upstream: out,
      }),
    );
  }
  return out;
}

/** A stage's params as they enter its fingerprints' params component (runtime params left out). */
export function stageKeyedParams(
  stage: { kind: TaskKind; params: Record<string, unknown> },
  kinds: { readonly [K in TaskKind]: KindIdentity },
): Record<string, unknown> {
  return keyedParams(stage.params, kinds[stage.kind].runtimeParams ?? []);
}

/** The marker of `fp` among a task's markers: the task is done at this fingerprint. */
export function freshMarker<M extends { fingerprint: string }>(
  refs: readonly M[] | undefined,
  fp: Pick<Fingerprint, 'hash'> | undefined,
): M | undefined {
  return fp === undefined ? undefined : refs?.find((r) => r.fingerprint === fp.hash);
}

/**
 * The params that enter a fingerprint: all but the kind's runtime params, which tune how a task
 * runs (fetches in flight, which fetcher) and never the bytes it writes, so changing them reruns
 * nothing.
 */
export function keyedParams(
  params: Record<string, unknown>,
  runtimeParams: readonly string[],
): Record<string, unknown> {
  return runtimeParams.length === 0
    ? params
    : Object.fromEntries(Object.entries(params).filter(([k]) => !runtimeParams.includes(k)));
}

/** Env var names whose values must never be stored (markers keep the fingerprint data). */
const SECRET_NAME = /TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|(^|_)KEY($|_)|ACCESS_KEY/i;

/**
 * Replaces secret-looking `env` values with their sha256: the fingerprint still changes when a
 * secret changes, but the marker that stores the fingerprint data never holds the secret.
 */
export function redactSecrets(params: Record<string, unknown>): Record<string, unknown> {
  const env = params.env;
  if (env === null || typeof env !== 'object' || Array.isArray(env)) return params;
  const redacted = Object.fromEntries(
    Object.entries(env as Record<string, unknown>).map(([k, v]) =>
      SECRET_NAME.test(k) && typeof v === 'string' ? [k, `sha256:${sha256Hex(v)}`] : [k, v],
    ),
  );
  return { ...params, env: redacted };
}

/** Byte-order string comparison (what S3 listings use), independent of locale. */
export const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Names of top-level params that differ between two params objects. */
export function changedParams(before: unknown, after: unknown): string[] {
  const b = (before ?? {}) as Record<string, unknown>;
  const a = (after ?? {}) as Record<string, unknown>;
  const keys = new Set([...Object.keys(b), ...Object.keys(a)]);
  return [...keys].filter((k) => canonicalJson(b[k]) !== canonicalJson(a[k])).sort(cmp);
}
