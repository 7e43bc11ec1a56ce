/**
 * PURE. Where every output lives: the one module that knows key shapes in the work store and the
 * bucket. Tasks and the planner's output check use it. Keys in the state store (markers, part
 * records, params, manifests, revisions, leases, the run lock) are lib/io/state/keys.ts's.
 *
 *   work store   data/<Language>/<stem>.parquet           (fetch; mirrors the Hub layout)
 *                cmds/<Language>/<stem>.cmd.txt           (cmds)
 *                <shell outputs as declared>              (shell)
 *   bucket       <sync prefix><work key>                  (sync)
 *                <pack prefix><Language>/<Language>-<NNNNN>-<part:06d>-of-<total:06d>.jsonl.zst
 *                … same name with .errors.jsonl            (pack, only when a part has bad rows)
 *                <stats prefix><Language>.json             (stats)
 *                <stats-merge prefix>summary.json          (stats-merge)
 */
import type { ManifestEntry } from './model.js';

export const workParquetKey = (file: ManifestEntry): string => file.path;

export const cmdKey = (language: string, stem: string): string =>
  `cmds/${language}/${stem}.cmd.txt`;

export const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** Prefix shared by every part of one parquet's pack output. */
export const packFamilyPrefix = (prefix: string, language: string, shard: string): string =>
  `${prefix}${language}/${language}-${shard}-`;

/** One parquet's pack output: pack's `prefix` param, the language and the parquet's shard. */
export interface PackFamily {
  prefix: string;
  language: string;
  shard: string;
}

/** Part `part` (0-based) of `total` of a parquet's pack output. */
export const packPartKey = (f: PackFamily, part: number, total: number): string =>
  `${packFamilyPrefix(f.prefix, f.language, f.shard)}${pad(part, 6)}-of-${pad(total, 6)}.jsonl.zst`;

/** A stats task's output: `<prefix><Language>.json`. */
export const statsKey = (prefix: string, language: string): string => `${prefix}${language}.json`;

/** A stats-merge task's output: `<prefix>summary.json`. */
export const statsSummaryKey = (prefix: string): string => `${prefix}summary.json`;

export const errorsKeyFor = (partKey: string): string =>
  partKey.replace(/\.jsonl\.zst$/, '.errors.jsonl');

/** Parses `…-<part>-of-<total>.jsonl.zst` at the end of a key. */
export function parsePartKey(key: string): { part: number; total: number } | undefined {
  const m = /-(\d{6})-of-(\d{6})\.jsonl\.zst$/.exec(key);
  if (m?.[1] === undefined || m[2] === undefined) return undefined;
  return { part: Number(m[1]), total: Number(m[2]) };
}
