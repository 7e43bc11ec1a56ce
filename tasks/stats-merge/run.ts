/**
 * stats-merge (once): merges the per-language statistics of the stats stages it needs into
 * `<prefix>summary.json`: `{ languages: {<Language>: <stats>}, totals }`, languages in name
 * order. The totals sum the counts; `length` percentiles are not additive and stay per language.
 */
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { err, objectKey, ok, publishFile, statsSummaryKey } from '../../lib/task-api.js';
import type { Result, TaskContext, TaskResult } from '../../lib/task-api.js';
import type { StatsMergeParams } from './index.js';
import type { LanguageStats } from '../../lib/task-api.js';

const add = (into: Record<string, number>, from: Record<string, number>): void => {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
};

/** Keys sorted by count (descending), then name: the same input gives the same bytes. */
const ordered = (r: Record<string, number>, limit?: number): Record<string, number> =>
  Object.fromEntries(
    Object.entries(r)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .slice(0, limit),
  );

export async function run(ctx: TaskContext<StatsMergeParams>): Promise<Result<TaskResult>> {
  const prefix = ctx.params.prefix;
  const inputs = [...ctx.upstream.values()]
    .filter((u) => u.kind === 'stats')
    .flatMap((u) => u.outputs)
    .filter((o) => o.key.endsWith('.json'));
  if (inputs.length === 0 && ![...ctx.upstream.values()].some((u) => u.kind === 'stats')) {
    return err({
      reason: 'invalid-input',
      message: `${ctx.task.id}: a stats-merge stage merges stats stages' output; add one to its needs`,
    });
  }
  const languages: Record<string, LanguageStats> = {};
  for (const o of inputs) {
    const r = await ctx.stores[o.store].get(objectKey(o.key));
    if (!r.ok) return r;
    let s: LanguageStats;
    try {
      s = JSON.parse(r.value.toString('utf8')) as LanguageStats;
    } catch {
      return err({ reason: 'invalid-input', message: `${o.key} is not valid JSON` });
    }
    languages[s.language] = s;
  }
  const names = Object.keys(languages).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const totals = {
    languages: names.length,
    rows: 0,
    content_bytes: 0,
    lines: 0,
    license_type: {} as Record<string, number>,
    src_encoding: {} as Record<string, number>,
    extensions: {} as Record<string, number>,
    not_packed: {} as Record<string, number>,
  };
  for (const n of names) {
    const s = languages[n];
    if (s === undefined) continue;
    totals.rows += s.rows;
    totals.content_bytes += s.content_bytes;
    totals.lines += s.lines;
    add(totals.license_type, s.license_type);
    add(totals.src_encoding, s.src_encoding);
    add(totals.extensions, s.top_extensions);
    add(totals.not_packed, s.not_packed);
  }
  const summary = {
    languages: Object.fromEntries(names.map((n) => [n, languages[n]])),
    totals: {
      ...totals,
      license_type: ordered(totals.license_type),
      src_encoding: ordered(totals.src_encoding),
      extensions: ordered(totals.extensions, 50),
      not_packed: ordered(totals.not_packed),
    },
  };
  const path = join(ctx.scratch, 'summary.json');
  await writeFile(path, JSON.stringify(summary, null, 2) + '\n');
  const pub = await publishFile(ctx.stores.bucket, 'bucket', statsSummaryKey(prefix), path);
  if (!pub.ok) return pub;
  return ok({ outputs: [pub.value], counts: { languages: names.length, rows: totals.rows } });
}
