/**
 * PURE. Where every output lives: the one module that knows key shapes in the work store, the
 * bucket and the state store. Tasks, the planner's output check and the markers all use it.
 *
 *   work store   data/<Language>/<stem>.parquet           (fetch; mirrors the Hub layout)
 *                cmds/<Language>/<stem>.cmd.txt           (cmds)
 *                <shell outputs as declared>              (shell)
 *   bucket       <sync prefix><work key>                  (sync)
 *                <pack prefix><Language>/<Language>-<NNNNN>-<part:06d>-of-<total:06d>.jsonl.zst
 *                … same name with .errors.jsonl            (pack, only when a part has bad rows)
 *                <stats prefix><Language>.json             (stats)
 *                <stats-merge prefix>summary.json          (stats-merge)
 *   state        markers/<task path>@<fingerprint>.c<code>.p<params>.i<inputs>[.w<worker>].json
 *                parts/<stage>/<task path>/<fingerprint>/<part:06d>.json
 *                params/<stage>/<params component>.json
 *                manifests/<Language>/<discover fingerprint>.json
 *                revisions/<owner>/<name>/<ref>.json       (the commit a branch or tag was pinned to)
 */
import type { ManifestEntry } from './model.js';

export const workParquetKey = (file: ManifestEntry): string => file.path;

export const cmdKey = (language: string, stem: string): string =>
  `cmds/${language}/${stem}.cmd.txt`;

export const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** Prefix shared by every part of one parquet's pack output. */
export const packFamilyPrefix = (prefix: string, language: string, shard: string): string =>
  `${prefix}${language}/${language}-${shard}-`;

export const packPartKey = (
  prefix: string,
  language: string,
  shard: string,
  part: number,
  total: number,
): string =>
  `${packFamilyPrefix(prefix, language, shard)}${pad(part, 6)}-of-${pad(total, 6)}.jsonl.zst`;

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

/** Encodes one path segment of a state key (languages may contain `+`, `(`, `.`). */
export const seg = (s: string): string => encodeURIComponent(s);

/** `<stage>/<lang>/<stem>` (segments URI-encoded, `@` for no language): a task in state keys. */
export function taskPath(stage: string, language?: string, stem?: string): string {
  const parts = [seg(stage), language === undefined ? '@' : seg(language)];
  if (stem !== undefined) parts.push(seg(stem));
  return parts.join('/');
}

export const manifestKey = (language: string, fingerprint: string): string =>
  `manifests/${seg(language)}/${fingerprint}.json`;

export const paramsKey = (stage: string, paramsComponent: string): string =>
  `params/${seg(stage)}/${paramsComponent}.json`;

/**
 * `revisions/<owner>/<name>/<ref>.json`: the commit a symbolic revision (branch, tag) of a Hub
 * dataset was first resolved to on this state, which every later run on it uses
 * (lib/revision.ts). The ref is one encoded segment, so `refs/pr/1` stays one object.
 */
export function revisionKey(repo: string, ref: string): string {
  // `.` and `..` are not path segments a store should ever see.
  const part = (s: string): string => (/^\.+$/.test(s) ? s.replaceAll('.', '%2E') : seg(s));
  return `revisions/${repo.split('/').map(part).join('/')}/${part(ref)}.json`;
}
