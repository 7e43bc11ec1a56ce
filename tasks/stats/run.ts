/**
 * stats (per language, after pack): dataset statistics of the packed parts, computed by DuckDB
 * straight from the `.jsonl.zst` files (its json reader is built in and decompresses zstd), like
 * datatrove's DocStats/LineStats but content-hashed like every task. Writes
 * `<prefix><Language>.json`:
 *
 *   { language, rows, content_bytes, lines, length: {p50, p90, p99, max},
 *     generated_share, vendor_share, license_type: {…}, src_encoding: {…},
 *     top_extensions: {…}, not_packed: {missing, corrupt_gzip, undecodable} }
 *
 * `length` is over `length_bytes` (the file's size as the dataset records it), exact (the nearest
 * rank), from one sort that DuckDB may spill to the scratch dir; `content_bytes` and `lines` are
 * over the decoded content as packed (UTF-8). Rows left out of the parts are counted from the
 * parts' `.errors.jsonl` lists, by reason as pack's counts name them. Counts are integers and
 * shares are ratios of them, so the same parts give the same bytes.
 *
 * The parts are read in batches (`batches`: a few parts, at most 256 MiB): a batch is copied to
 * the scratch dir (unless its store is local), read into one narrow table, its copies deleted,
 * and its rows and content bytes reported as progress — so the stall watchdog sees a language
 * of thousands of parts move, and the scratch disk holds one batch. An interrupt or a time limit
 * interrupts the query in flight.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { LanguageStats, OutputRecord } from '../../lib/task-api.js';
import type { Result, TaskContext, TaskResult } from '../../lib/task-api.js';
import type { StatsParams } from './index.js';
import {
  err,
  localCopy,
  objectKey,
  ok,
  publishFile,
  statsKey,
  withDuckDB,
} from '../../lib/task-api.js';

/** A local path as a DuckDB string literal (quotes doubled; glob characters as classes). */
const literal = (path: string): string =>
  `'${path.replace(/[*?[]/g, (c) => `[${c}]`).replaceAll("'", "''")}'`;
const ident = (name: string): string => `"${name.replaceAll('"', '""')}"`;
const byKey = (a: OutputRecord, b: OutputRecord) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
/** The connection `withDuckDB` lends. */
type Connection = Parameters<Parameters<typeof withDuckDB>[0]>[0];

export async function run(ctx: TaskContext<StatsParams>): Promise<Result<TaskResult>> {
  const language = ctx.task.language;
  if (language === undefined) throw new Error('Internal error: stats without a language');
  const { prefix, top_n: topN, content_field: field } = ctx.params;
  const parts: OutputRecord[] = [];
  const errorLists: OutputRecord[] = [];
  for (const up of ctx.upstream.values()) {
    if (up.kind !== 'pack') continue;
    for (const o of up.outputs) {
      if (o.key.endsWith('.errors.jsonl')) errorLists.push(o);
      else if (o.key.endsWith('.jsonl.zst')) parts.push(o);
    }
  }
  if (![...ctx.upstream.values()].some((u) => u.kind === 'pack')) {
    return err({
      reason: 'invalid-input',
      message: `${ctx.task.id}: a stats stage reads pack's parts; add the pack stage to its needs`,
    });
  }
  const errorFiles: string[] = [];
  for (const o of [...errorLists].sort(byKey)) {
    const r = await localCopy(ctx.stores[o.store], objectKey(o.key), ctx.scratch, ctx.signal);
    if (!r.ok) return r;
    errorFiles.push(r.value);
  }
  const stats = await withDuckDB(async (conn) => {
    // An interrupt or a time limit stops the query in flight, not only the next one.
    const stop = (): void => {
      conn.interrupt();
    };
    ctx.signal.addEventListener('abort', stop);
    try {
      return await scan(conn, { ctx, language, field, topN, parts: batches(parts), errorFiles });
    } finally {
      ctx.signal.removeEventListener('abort', stop);
    }
  });
  if (!stats.ok) return stats;
  const path = join(ctx.scratch, 'stats.json');
  await writeFile(path, JSON.stringify(stats.value, null, 2) + '\n');
  const pub = await publishFile(ctx.stores.bucket, 'bucket', statsKey(prefix, language), path);
  if (!pub.ok) return pub;
  return ok({
    outputs: [pub.value],
    counts: {
      rows: stats.value.rows,
      content_bytes: stats.value.content_bytes,
      lines: stats.value.lines,
    },
  });
}

/** Parts per batch at most: a batch is copied, read into the table, then its copies deleted. */
export const BATCH_PARTS = 8;
/** Bytes of the parts of a batch at most (unless one part alone is larger). */
export const BATCH_BYTES = 256 << 20;

/**
 * The parts in key order, in batches of at most BATCH_PARTS parts and BATCH_BYTES bytes: each
 * batch is one progress step (and all the scratch disk the copies take at once).
 */
export function batches(parts: readonly OutputRecord[]): OutputRecord[][] {
  const out: OutputRecord[][] = [];
  let cur: OutputRecord[] = [];
  let bytes = 0;
  for (const p of [...parts].sort(byKey)) {
    if (cur.length > 0 && (cur.length >= BATCH_PARTS || bytes + p.size > BATCH_BYTES)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(p);
    bytes += p.size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

interface Scan {
  ctx: TaskContext<StatsParams>;
  language: string;
  field: string;
  topN: number;
  parts: OutputRecord[][];
  errorFiles: string[];
}

/**
 * The statistics: the parts read batch by batch into a narrow table (no content kept; each
 * batch's rows and content bytes reported as progress once read), then small queries over it.
 */
async function scan(conn: Connection, o: Scan): Promise<Result<LanguageStats>> {
  const { ctx, language, field, topN } = o;
  await conn.run(`SET temp_directory = ${literal(join(ctx.scratch, 'duckdb-tmp'))}`);
  const one = async (sql: string): Promise<unknown[]> =>
    (await conn.runAndReadAll(sql)).getRows()[0] ?? [];
  const counts = async (sql: string): Promise<Record<string, number>> => {
    const out: Record<string, number> = {};
    for (const [k, n] of (await conn.runAndReadAll(sql)).getRows())
      out[k === null ? '' : String(k)] = Number(n);
    return out;
  };
  const s: LanguageStats = {
    language,
    rows: 0,
    content_bytes: 0,
    lines: 0,
    length: { p50: 0, p90: 0, p99: 0, max: 0 },
    generated_share: 0,
    vendor_share: 0,
    license_type: {},
    src_encoding: {},
    top_extensions: {},
    not_packed: {},
  };
  if (o.parts.length > 0) {
    const content = ident(field);
    await conn.run(`CREATE TEMP TABLE t (length_bytes BIGINT, is_generated BOOLEAN,
          is_vendor BOOLEAN, license_type VARCHAR, src_encoding VARCHAR, extension VARCHAR,
          bytes BIGINT, lines BIGINT)`);
    for (const batch of o.parts) {
      if (ctx.signal.aborted) return err({ reason: 'aborted', message: 'interrupted' });
      const files: string[] = [];
      for (const part of batch) {
        const r = await localCopy(
          ctx.stores[part.store],
          objectKey(part.key),
          ctx.scratch,
          ctx.signal,
        );
        if (!r.ok) return r;
        files.push(r.value);
      }
      await conn.run(`CREATE TEMP TABLE b AS SELECT
            length_bytes, is_generated, is_vendor, license_type, src_encoding, extension,
            strlen(${content}) AS bytes,
            length(${content}) - length(replace(${content}, chr(10), ''))
              + CASE WHEN ${content} <> '' AND NOT ends_with(${content}, chr(10)) THEN 1 ELSE 0 END AS lines
          FROM read_json([${files.map(literal).join(', ')}],
            format = 'newline_delimited', compression = 'zstd',
            columns = {length_bytes: 'BIGINT', is_generated: 'BOOLEAN', is_vendor: 'BOOLEAN',
                       license_type: 'VARCHAR', src_encoding: 'VARCHAR', extension: 'VARCHAR',
                       ${content}: 'VARCHAR'})`);
      const [rows, bytes] = (await one('SELECT count(*), coalesce(sum(bytes), 0) FROM b')).map(
        Number,
      );
      await conn.run('INSERT INTO t SELECT * FROM b');
      await conn.run('DROP TABLE b');
      // Copies made for this batch go at once (a part a local store holds is read in place).
      await Promise.all(
        files.filter((f) => f.startsWith(ctx.scratch + sep)).map((f) => rm(f, { force: true })),
      );
      ctx.progress({ rows: rows ?? 0, bytes: bytes ?? 0 });
    }
    const [rows, bytes, lines, generated, vendor, max] = (
      await one(`SELECT count(*), coalesce(sum(bytes), 0), coalesce(sum(lines), 0),
            count(*) FILTER (WHERE is_generated), count(*) FILTER (WHERE is_vendor),
            coalesce(max(length_bytes), 0) FROM t`)
    ).map(Number);
    s.rows = rows ?? 0;
    s.content_bytes = bytes ?? 0;
    s.lines = lines ?? 0;
    s.generated_share = s.rows === 0 ? 0 : (generated ?? 0) / s.rows;
    s.vendor_share = s.rows === 0 ? 0 : (vendor ?? 0) / s.rows;
    // Nearest-rank percentiles from one sort (which may spill), not an in-memory quantile.
    await conn.run('CREATE TEMP TABLE lens AS SELECT length_bytes AS v FROM t ORDER BY v');
    const rank = (q: number): number => Math.max(0, Math.ceil(q * s.rows) - 1);
    const at = async (q: number): Promise<number> =>
      s.rows === 0
        ? 0
        : Number((await one(`SELECT v FROM lens LIMIT 1 OFFSET ${String(rank(q))}`))[0] ?? 0);
    s.length = { p50: await at(0.5), p90: await at(0.9), p99: await at(0.99), max: max ?? 0 };
    const by = (col: string, limit?: number) =>
      counts(
        `SELECT ${col}, count(*) AS n FROM t GROUP BY 1 ORDER BY n DESC, 1 NULLS FIRST${limit === undefined ? '' : ` LIMIT ${String(limit)}`}`,
      );
    s.license_type = await by('license_type');
    s.src_encoding = await by('src_encoding');
    s.top_extensions = await by('extension', topN);
  }
  if (o.errorFiles.length > 0) {
    // Reasons as the pack markers count them (`corrupt-gzip` → `corrupt_gzip`).
    s.not_packed = await counts(`SELECT replace(reason, '-', '_'), count(*) AS n FROM read_json(
          [${o.errorFiles.map(literal).join(', ')}], format = 'newline_delimited',
          columns = {reason: 'VARCHAR'}) GROUP BY 1 ORDER BY 1`);
  }
  return ok(s);
}
