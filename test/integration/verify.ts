/**
 * Independent checks of pack's output against the sample: rows read straight from the parquet
 * with DuckDB, contents decoded with zlib + iconv-lite (a different decoder than pack's), parts
 * decompressed with the zstd CLI when present.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import iconv from 'iconv-lite';
import { decompress } from '@mongodb-js/zstd';

export interface Defects {
  missing: string[];
  corrupt_gzip: string[];
  undecodable: { blob_id: string; src_encoding: string }[];
}

const ICONV: Record<string, string> = { 'UTF-16': 'utf16be', UHC: 'cp949', UTF8: 'utf8' };

export function referenceDecode(gz: Buffer, enc: string): string {
  const raw = gunzipSync(gz);
  return iconv.decode(raw, ICONV[enc.toUpperCase()] ?? enc);
}

/** Decompresses a .jsonl.zst with the zstd CLI (independent of our binding), else the binding. */
export async function unzstd(path: string): Promise<string> {
  try {
    return execFileSync('zstd', ['-dc', path], { maxBuffer: 1 << 30 }).toString('utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    return (await decompress(readFileSync(path))).toString('utf8');
  }
}

/** Every row of a parquet with timestamps as epoch nanoseconds (bigint) for exact comparison. */
export async function parquetRows(path: string): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    const q = `SELECT *, epoch_ns(committer_date) AS __committer_ns, epoch_ns(gha_event_created_at) AS __gha_ns
               FROM read_parquet('${path.replace(/'/g, "''")}')`;
    const r = await conn.runAndReadAll(q);
    return r.getRowObjectsJS();
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

/** `2021-03-04T05:06:07.123456789Z` → nanoseconds since the epoch. */
export function isoToNs(iso: string): bigint {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(iso);
  if (!m?.[1]) throw new Error(`not an ISO timestamp: ${iso}`);
  const secs = BigInt(Date.parse(`${m[1]}Z`)) / 1000n;
  const frac = BigInt((m[2] ?? '').padEnd(9, '0').slice(0, 9) || '0');
  return secs * 1_000_000_000n + frac;
}

export function loadDefects(sampleDir: string): Defects {
  return JSON.parse(readFileSync(join(sampleDir, 'expected-defects.json'), 'utf8')) as Defects;
}
