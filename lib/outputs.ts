/**
 * PURE. What each task leaves behind, checked against one listing of the work store and one of
 * the bucket (never one request per task). Used by the planner's `output-missing` reason.
 */
import type { Graph } from './graph.js';
import { kindOf } from './kinds.js';
import { parsePartKey } from './layout.js';
import type { Pipeline, TaskInstance } from './model.js';
import { cmp, sha256Hex } from './fingerprint.js';

/** Keys present in the stores, from listings. Build it with `indexListing`. */
export interface OutputListing {
  work: ReadonlySet<string>;
  bucket: ReadonlySet<string>;
  /**
   * Pack objects in the bucket by family prefix (everything before `<part>-of-<total>`): its
   * parts, and every object of the family (parts and `.errors.jsonl` sidecars) with its size
   * when the listing gave sizes.
   */
  packFamilies: ReadonlyMap<string, PackFamily>;
}

interface PackFamily {
  parts: { part: number; total: number }[];
  objects: { key: string; size: number | undefined }[];
}

/** What a task's outputs add up to: kept in its marker's key, recomputed from listings. */
export interface OutputsSummary {
  /** Outputs outside the state store. */
  count: number;
  /** 8 hex digits of sha256 over their sorted `store, key, size` lines. */
  digest: string;
}

/**
 * The summary of outputs (those in the state store left out: they are not listed when planning).
 * Equal summaries mean the same keys with the same sizes, so a fresh marker whose summary differs
 * from what the listings hold has a missing, extra or resized output.
 */
export function outputsSummary(
  outputs: readonly { store: string; key: string; size: number }[],
): OutputsSummary {
  const lines = outputs
    .filter((o) => o.store !== 'state')
    .map((o) => `${o.store}\t${o.key}\t${String(o.size)}\n`)
    .sort(cmp);
  return { count: lines.length, digest: sha256Hex(lines.join('')).slice(0, 8) };
}

const PART_SUFFIX = '000000-of-000000.jsonl.zst'.length;

/** The pack part a bucket key belongs to (a part or its `.errors.jsonl` sidecar), if any. */
export function packObjectOf(key: string): { family: string; sidecar: boolean } | undefined {
  const sidecar = key.endsWith('.errors.jsonl');
  const name = sidecar ? key.slice(0, -'.errors.jsonl'.length) + '.jsonl.zst' : key;
  if (parsePartKey(name) === undefined) return undefined;
  return { family: name.slice(0, name.length - PART_SUFFIX), sidecar };
}

/**
 * Indexes two listings once, so each task's check is a lookup, not a scan. `sizes` (bucket key →
 * size, at least for pack objects) lets pack's check compare sizes too.
 */
export function indexListing(
  work: ReadonlySet<string>,
  bucket: ReadonlySet<string>,
  sizes?: ReadonlyMap<string, number>,
): OutputListing {
  const packFamilies = new Map<string, PackFamily>();
  for (const k of bucket) {
    const o = packObjectOf(k);
    if (o === undefined) continue;
    let f = packFamilies.get(o.family);
    if (f === undefined) packFamilies.set(o.family, (f = { parts: [], objects: [] }));
    if (!o.sidecar) f.parts.push(parsePartKey(k) ?? { part: -1, total: -1 });
    f.objects.push({ key: k, size: sizes?.get(k) });
  }
  return { work, bucket, packFamilies };
}

/** Keys a task writes into the work store (its kind's `outputs.work`). */
export function workOutputsOf(task: TaskInstance): string[] {
  return kindOf(task.kind).outputs?.work?.(task, task.params) ?? [];
}

/**
 * Missing output keys of a task; empty when everything is there. For pack, with the summary from
 * its marker's key (`expected`) and sizes in the listing, every output the marker lists is
 * checked, `.errors.jsonl` sidecars included, by size; a difference is one entry saying so.
 */
export function missingOutputs(
  task: TaskInstance,
  graph: Graph,
  listing: OutputListing,
  expected?: OutputsSummary,
): string[] {
  const missing = missingNames(task, graph, listing);
  const family = kindOf(task.kind).outputs?.partFamily?.(task, task.params);
  if (missing.length > 0 || expected === undefined || family === undefined) return missing;
  const objects = listing.packFamilies.get(family)?.objects ?? [];
  const found: { store: string; key: string; size: number }[] = [];
  for (const o of objects) {
    // A listing without sizes cannot tell: the names check above is all there is.
    if (o.size === undefined) return [];
    found.push({ store: 'bucket', key: o.key, size: o.size });
  }
  const have = outputsSummary(found);
  if (have.digest === expected.digest && have.count === expected.count) return [];
  return [
    have.count === expected.count
      ? `${family}*: a size differs from what the marker lists`
      : `${family}*: the marker lists ${String(expected.count)} objects, ${String(have.count)} found`,
  ];
}

/**
 * What the listings lack of a task's outputs: its work-store keys, its bucket keys (given its
 * dependencies' work-store keys: sync copies them) and the parts of its part family.
 */
function missingNames(task: TaskInstance, graph: Graph, listing: OutputListing): string[] {
  const outputs = kindOf(task.kind).outputs;
  if (outputs === undefined) return [];
  const upstreamWork = (): string[] =>
    task.deps.flatMap((d) => {
      const dep = graph.tasks.get(d);
      return dep ? workOutputsOf(dep) : [];
    });
  const family = outputs.partFamily?.(task, task.params);
  return [
    ...(outputs.work?.(task, task.params) ?? []).filter((k) => !listing.work.has(k)),
    ...(outputs.bucket?.(task, task.params, upstreamWork()) ?? []).filter(
      (k) => !listing.bucket.has(k),
    ),
    ...(family === undefined
      ? []
      : missingParts(family, listing.packFamilies.get(family)?.parts ?? [])),
  ];
}

/** A pack family is complete when parts 0..total-1 all exist with one consistent total. */
function missingParts(family: string, parts: readonly { part: number; total: number }[]): string[] {
  const total = parts[0]?.total;
  if (total === undefined) return [`${family}*.jsonl.zst`];
  const have = new Set(parts.filter((p) => p.total === total).map((p) => p.part));
  const missing: string[] = [];
  for (let i = 0; i < total; i++) if (!have.has(i)) missing.push(`${family}${i} of ${total}`);
  return missing;
}

/**
 * The bucket prefixes our stages write under (their kinds' `outputs.bucketPrefix`), without
 * nesting: a user's bucket may hold much else, and only these need listing. `''` (list all) when
 * a sync writes at the root.
 */
export function bucketPrefixes(p: Pipeline): string[] {
  const all = p.stages
    .flatMap((st) => {
      const outputs = kindOf(st.kind).outputs;
      return outputs?.bucketPrefix === undefined ? [] : [outputs.bucketPrefix(st.params)];
    })
    .sort(cmp);
  return all.filter((x, i) => !all.slice(0, i).some((y) => x.startsWith(y)));
}
