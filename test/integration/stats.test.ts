/**
 * The stats and stats-merge stages on the sample, through the CLI: each language's statistics
 * match what this test computes itself from the packed parts (decompressed with the zstd CLI,
 * counted in JavaScript) and from the sample's list of defects; the summary merges them; the
 * statistics are content-hashed like every task (a rerun starts nothing, a changed top_n reruns
 * only the stats stages).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rig, SAMPLE, started } from '../helpers/rig.js';
import type { CliResult } from '../helpers/rig.js';
import type { Defects } from './verify.js';
import { unzstd } from './verify.js';
import { BATCH_PARTS } from '../../tasks/stats/run.js';

interface Stats {
  language: string;
  rows: number;
  content_bytes: number;
  lines: number;
  length: { p50: number; p90: number; p99: number; max: number };
  generated_share: number;
  vendor_share: number;
  license_type: Record<string, number>;
  src_encoding: Record<string, number>;
  top_extensions: Record<string, number>;
  not_packed: Record<string, number>;
}

/** The same statistics, computed here from the parts' JSON lines. */
async function expected(dir: string, language: string, topN: number) {
  const rows: Record<string, unknown>[] = [];
  const notPacked: Record<string, number> = {};
  for (const f of readdirSync(dir).sort()) {
    if (f.endsWith('.jsonl.zst')) {
      for (const line of (await unzstd(join(dir, f))).split('\n'))
        if (line !== '') rows.push(JSON.parse(line) as Record<string, unknown>);
    } else if (f.endsWith('.errors.jsonl')) {
      for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
        if (line === '') continue;
        // Named as pack's counts name them: corrupt-gzip → corrupt_gzip.
        const reason = (JSON.parse(line) as { reason: string }).reason.replace('-', '_');
        notPacked[reason] = (notPacked[reason] ?? 0) + 1;
      }
    }
  }
  const count = (key: string, limit?: number): Record<string, number> => {
    const m = new Map<string, number>();
    for (const r of rows) {
      const v = r[key];
      const k = typeof v === 'string' ? v : '';
      m.set(k, (m.get(k) ?? 0) + 1);
    }
    return Object.fromEntries(
      [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, limit),
    );
  };
  const lens = rows.map((r) => Number(r.length_bytes)).sort((a, b) => a - b);
  const rank = (q: number) => lens[Math.max(0, Math.ceil(q * lens.length) - 1)] ?? 0;
  const content = rows.map((r) => String(r.content));
  return {
    language,
    rows: rows.length,
    content_bytes: content.reduce((a, c) => a + Buffer.byteLength(c), 0),
    lines: content.reduce(
      (a, c) => a + (c.match(/\n/g)?.length ?? 0) + (c !== '' && !c.endsWith('\n') ? 1 : 0),
      0,
    ),
    length: { p50: rank(0.5), p90: rank(0.9), p99: rank(0.99), max: lens.at(-1) ?? 0 },
    generated_share: rows.filter((r) => r.is_generated === true).length / rows.length,
    vendor_share: rows.filter((r) => r.is_vendor === true).length / rows.length,
    license_type: count('license_type'),
    src_encoding: count('src_encoding'),
    top_extensions: count('extension', topN),
    not_packed: notPacked,
  };
}

/**
 * The `progress` events of `task`: how many came before it ended (and after: none), and the
 * last one's rows and bytes (JSON progress carries the task's running totals, at most one line
 * a second).
 */
function progressOf(r: CliResult, task: string) {
  const end = r.events.findIndex((e) => e.type === 'task-succeeded' && e.task === task);
  const mine = (from: number, to?: number) =>
    r.events.slice(from, to).filter((e) => e.type === 'progress' && e.task === task);
  const last = mine(0, end).at(-1);
  return {
    before: mine(0, end).length,
    after: mine(end).length,
    rows: Number(last?.rows ?? 0),
    bytes: Number(last?.bytes ?? 0),
  };
}

const readStats = (rig: Rig, lang: string) =>
  JSON.parse(readFileSync(join(rig.cache, 'bucket/stats', `${lang}.json`), 'utf8')) as Stats;

describe('stats on the sample', () => {
  const rig = new Rig();
  let first: CliResult | undefined;
  beforeAll(async () => {
    first = await rig.run(['run', '--cache-dir', 'cache']);
    expect(first.code, first.stderr).toBe(0);
  }, 300_000);
  afterAll(() => {
    rig.cleanup();
  });
  const languages = readdirSync(join(SAMPLE, 'hf/data')).sort();

  it('computes each language from its packed parts, and rows not packed from their lists', async () => {
    const defects = JSON.parse(
      readFileSync(join(SAMPLE, 'expected-defects.json'), 'utf8'),
    ) as Defects;
    const notPacked: Record<string, number> = {};
    for (const lang of languages) {
      const got = JSON.parse(
        readFileSync(join(rig.cache, 'bucket/stats', `${lang}.json`), 'utf8'),
      ) as Stats;
      const want = await expected(join(rig.cache, 'bucket/packed', lang), lang, 20);
      expect(got).toEqual({
        ...want,
        generated_share: expect.closeTo(want.generated_share, 12) as unknown,
        vendor_share: expect.closeTo(want.vendor_share, 12) as unknown,
      });
      expect(got.rows).toBeGreaterThan(0);
      for (const [k, v] of Object.entries(got.not_packed)) notPacked[k] = (notPacked[k] ?? 0) + v;
    }
    expect(notPacked).toEqual({
      missing: defects.missing.length,
      corrupt_gzip: defects.corrupt_gzip.length,
      undecodable: defects.undecodable.length,
    });
  });

  it('reports its rows and content bytes as progress while it reads the parts', () => {
    if (first === undefined) throw new Error('the run did not happen');
    for (const lang of languages) {
      const got = readStats(rig, lang);
      // The sample's languages fit in one batch: one progress event with all of it.
      expect(progressOf(first, `stats:${lang}`), lang).toEqual({
        before: 1,
        after: 0,
        rows: got.rows,
        bytes: got.content_bytes,
      });
    }
  });

  it('merges every language into summary.json', () => {
    const summary = JSON.parse(
      readFileSync(join(rig.cache, 'bucket/stats/summary.json'), 'utf8'),
    ) as { languages: Record<string, Stats>; totals: { rows: number; languages: number } };
    expect(Object.keys(summary.languages)).toEqual(languages);
    for (const lang of languages) {
      expect(summary.languages[lang]).toEqual(
        JSON.parse(readFileSync(join(rig.cache, 'bucket/stats', `${lang}.json`), 'utf8')),
      );
    }
    expect(summary.totals.languages).toBe(languages.length);
    expect(summary.totals.rows).toBe(
      Object.values(summary.languages).reduce((a, s) => a + s.rows, 0),
    );
  });

  it('is content-hashed: a rerun starts nothing; top_n reruns only the statistics', async () => {
    const again = await rig.run(['run', '--cache-dir', 'cache']);
    expect(started(again)).toEqual([]);
    rig.writePipeline(
      readFileSync(join(rig.dir, 'pipeline.yaml'), 'utf8').replace(
        '    kind: stats\n    needs: [pack]\n',
        '    kind: stats\n    needs: [pack]\n    params: { top_n: 2 }\n',
      ),
    );
    const r = await rig.run(['run', '--cache-dir', 'cache']);
    expect(r.code, r.stderr).toBe(0);
    expect(started(r).sort()).toEqual(
      [...languages.map((l) => `stats:${l}`), 'stats-summary'].sort(),
    );
    const cpp = JSON.parse(readFileSync(join(rig.cache, 'bucket/stats/C++.json'), 'utf8')) as Stats;
    expect(Object.keys(cpp.top_extensions)).toHaveLength(2);
  });
});

describe('stats over many parts', () => {
  const rig = new Rig();
  afterAll(() => {
    rig.cleanup();
  });

  it('reads them a batch at a time: the same statistics, progress as it goes', async () => {
    // A few rows per part: the larger languages have more parts than one batch takes.
    rig.writePipeline(
      readFileSync(join(rig.dir, 'pipeline.yaml'), 'utf8').replace(
        'rows_per_part: 250',
        'rows_per_part: 40\n      max_missing_rate: 1',
      ),
    );
    const r = await rig.run(['run', 'stats', '--cache-dir', 'cache']);
    expect(r.code, r.stderr).toBe(0);
    const languages = readdirSync(join(rig.cache, 'bucket/packed')).sort();
    let batched = 0;
    for (const lang of languages) {
      const dir = join(rig.cache, 'bucket/packed', lang);
      const parts = readdirSync(dir).filter((f) => f.endsWith('.jsonl.zst')).length;
      const want = await expected(dir, lang, 20);
      const got = readStats(rig, lang);
      expect(got).toEqual({
        ...want,
        generated_share: expect.closeTo(want.generated_share, 12) as unknown,
        vendor_share: expect.closeTo(want.vendor_share, 12) as unknown,
      });
      // Running totals, sampled: the last one at most the whole, and some of it.
      const p = progressOf(r, `stats:${lang}`);
      expect(p.before, lang).toBeGreaterThan(0);
      expect(p.after).toBe(0);
      expect(p.rows).toBeGreaterThan(0);
      expect(p.rows).toBeLessThanOrEqual(got.rows);
      expect(p.bytes).toBeGreaterThan(0);
      expect(p.bytes).toBeLessThanOrEqual(got.content_bytes);
      if (parts > BATCH_PARTS) batched++;
    }
    expect(batched).toBeGreaterThan(0);
  }, 300_000);
});
