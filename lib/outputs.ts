/**
 * PURE. What each task leaves behind, checked against one listing of the work store and one of
 * the bucket (never one request per task). Used by the planner's `output-missing` reason.
 */
import { unreachable } from './errors.js';
import type { Graph } from './graph.js';
import { shardOf } from './graph.js';
import {
  cmdKey,
  packFamilyPrefix,
  parsePartKey,
  statsKey,
  statsSummaryKey,
  workParquetKey,
} from './layout.js';
import type { Pipeline, TaskInstance } from './model.js';
import { cmp } from './fingerprint.js';

/** Keys present in the stores, from listings. Build it with `indexListing`. */
export interface OutputListing {
  work: ReadonlySet<string>;
  bucket: ReadonlySet<string>;
  /** Pack parts in the bucket by family prefix (everything before `<part>-of-<total>`). */
  packFamilies: ReadonlyMap<string, readonly { part: number; total: number }[]>;
}

/** Indexes two listings once, so each task's check is a lookup, not a scan. */
export function indexListing(
  work: ReadonlySet<string>,
  bucket: ReadonlySet<string>,
): OutputListing {
  const packFamilies = new Map<string, { part: number; total: number }[]>();
  for (const k of bucket) {
    const p = parsePartKey(k);
    if (p === undefined) continue;
    const family = k.slice(0, k.length - '000000-of-000000.jsonl.zst'.length);
    const list = packFamilies.get(family);
    if (list === undefined) packFamilies.set(family, [p]);
    else list.push(p);
  }
  return { work, bucket, packFamilies };
}

const str = (v: unknown, fallback = ''): string => (typeof v === 'string' ? v : fallback);
const strs = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];

/** Keys a task writes into the work store (statically known kinds only). */
export function workOutputsOf(task: TaskInstance): string[] {
  switch (task.kind) {
    case 'fetch':
      return task.file ? [workParquetKey(task.file)] : [];
    case 'cmds':
      return task.file && task.language ? [cmdKey(task.language, task.file.stem)] : [];
    case 'shell':
      return strs(task.params.outputs);
    case 'discover':
    case 'sync':
    case 'pack':
    case 'stats':
    case 'stats-merge':
      return [];
    default:
      return unreachable(task.kind);
  }
}

/** Missing output keys of a task; empty when everything is there. */
export function missingOutputs(task: TaskInstance, graph: Graph, listing: OutputListing): string[] {
  switch (task.kind) {
    case 'discover':
      return [];
    case 'fetch':
    case 'cmds':
    case 'shell':
      return workOutputsOf(task).filter((k) => !listing.work.has(k));
    case 'sync': {
      const prefix = str(task.params.prefix);
      const keys = task.deps.flatMap((d) => {
        const dep = graph.tasks.get(d);
        return dep ? workOutputsOf(dep) : [];
      });
      return keys.map((k) => prefix + k).filter((k) => !listing.bucket.has(k));
    }
    case 'pack': {
      if (task.file === undefined || task.language === undefined) return [];
      const family = packFamilyPrefix(
        str(task.params.prefix, 'packed/'),
        task.language,
        shardOf(task.file.stem),
      );
      return missingParts(family, listing.packFamilies.get(family) ?? []);
    }
    case 'stats':
      return task.language === undefined
        ? []
        : [statsKey(str(task.params.prefix, 'stats/'), task.language)].filter(
            (k) => !listing.bucket.has(k),
          );
    case 'stats-merge':
      return [statsSummaryKey(str(task.params.prefix, 'stats/'))].filter(
        (k) => !listing.bucket.has(k),
      );
    default:
      return unreachable(task.kind);
  }
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
 * The bucket prefixes our stages write under (sync, pack and stats `prefix`), without nesting: a user's
 * bucket may hold much else, and only these need listing. `''` (list all) when a sync writes at
 * the root.
 */
export function bucketPrefixes(p: Pipeline): string[] {
  const all = p.stages
    .filter(
      (st) =>
        st.kind !== 'discover' && st.kind !== 'fetch' && st.kind !== 'cmds' && st.kind !== 'shell',
    )
    .map((st) => (typeof st.params.prefix === 'string' ? st.params.prefix : ''))
    .sort(cmp);
  return all.filter((x, i) => !all.slice(0, i).some((y) => x.startsWith(y)));
}
