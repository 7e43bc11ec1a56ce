/**
 * DuckDB as a parquet reader: connection lifecycle, row counts, and streaming rows in file order.
 *
 * Owns: how a local path becomes SQL (quoting, glob escaping), the row-range query, the file-order
 * guarantee, and the conversion of DuckDB values to lossless JSON-ready values.
 *
 * File order: DuckDB scans row groups in parallel, but with `preserve_insertion_order` (the default,
 * and set explicitly here) a streaming result keeps the scan order without a sort. We select
 * `file_row_number` with every row and check that it counts up by one from `from`: a violation
 * throws instead of writing rows out of order. An `ORDER BY` would make DuckDB buffer the whole
 * range before the first row comes out.
 *
 * Row ranges: the `file_row_number` filter is pushed into the parquet scan, so row groups outside
 * [from, to) are skipped (EXPLAIN shows the filter inside READ_PARQUET; reading 1,000 rows at row
 * 900,000 of a 1M-row file takes ~40 ms against ~1.2 s for the whole file). Resuming at part k does
 * not re-read earlier parts.
 *
 * JSON values (what `streamParquetRows` yields):
 * - timestamps of any unit (s/ms/us/ns), with or without time zone: ISO-8601 in UTC with a `Z` and
 *   always nine fractional digits, e.g. `2021-03-04T05:06:07.123456789Z`, `...07.123456000Z` from
 *   a microsecond column. Fixed width on purpose: the same instant prints the same whatever unit a
 *   shard stores (the-stack-v2 uses ns, re-uploads us; DuckDB itself reads parquet ms as us), and
 *   every unit fits. Naive timestamps are read as UTC. Years outside 0000-9999 use the expanded
 *   form `+012345-...`; DuckDB's infinities are the strings `infinity` and `-infinity`.
 * - BIGINT (and UBIGINT, HUGEINT, UHUGEINT): a number when |v| <= 2^53-1, else a decimal string, so
 *   no integer is ever rounded.
 * - DOUBLE/FLOAT: a number; NaN and infinities as the strings `NaN`, `Infinity`, `-Infinity`.
 * - DATE: `YYYY-MM-DD`; LIST/ARRAY: arrays; STRUCT: objects; NULL: null; BOOLEAN: booleans.
 * - anything else (DECIMAL, UUID, BLOB, TIME, INTERVAL...): @duckdb/node-api's JSON conversion.
 */
import { resolve } from 'node:path';
import type { Failure } from '../errors.js';
import { FailureError } from '../errors.js';
import {
  DuckDBDateValue,
  DuckDBInstance,
  DuckDBTimestampMillisecondsValue,
  DuckDBTimestampNanosecondsValue,
  DuckDBTimestampSecondsValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  DuckDBTypeId,
  JsonDuckDBValueConverter,
  type DuckDBConnection,
  type DuckDBDataChunk,
  type DuckDBValueConverter,
  type Json,
} from '@duckdb/node-api';

/** See `DuckDBOptions.threads`. */
export const DEFAULT_THREADS = 2;

/** Options for `withDuckDB`. */
export interface DuckDBOptions {
  /**
   * Worker threads; default 2 (DuckDB's own default is one per core). Each scan thread holds the
   * pages of the row group it reads, so on a many-core host DuckDB's default multiplies memory for
   * no gain: streaming rows to a network-bound consumer needs one or two threads.
   */
  threads?: number;
  /** DuckDB's `memory_limit`, e.g. `'2GB'`; its default is 80% of RAM. */
  memoryLimit?: string;
}

/**
 * Opens an in-memory DuckDB, runs fn, always closes. Anything streamed from the connection must be
 * consumed inside fn: the connection is closed when fn settles.
 */
export async function withDuckDB<T>(
  fn: (conn: DuckDBConnection) => Promise<T>,
  opts: DuckDBOptions = {},
): Promise<T> {
  const config: Record<string, string> = {
    preserve_insertion_order: 'true',
    // Extensions cannot be downloaded here, and parquet is built in: never try the network.
    autoinstall_known_extensions: 'false',
  };
  const threads = opts.threads ?? DEFAULT_THREADS;
  if (!Number.isSafeInteger(threads) || threads < 1) {
    throw new Error(`Internal error: threads must be a positive integer, got ${threads}`);
  }
  config.threads = String(threads);
  if (opts.memoryLimit !== undefined) config.memory_limit = opts.memoryLimit;
  const instance = await DuckDBInstance.create(':memory:', config);
  try {
    const conn = await instance.connect();
    try {
      return await fn(conn);
    } catch (e) {
      const bad = parquetFailure(e);
      throw bad === undefined ? e : new FailureError(bad);
    } finally {
      conn.closeSync();
    }
  } finally {
    instance.closeSync();
  }
}

/**
 * DuckDB's errors for a file that is not a readable parquet (`Invalid Input Error: No magic bytes
 * found at end of file '…'`, `… too small to be a Parquet file`, a Thrift or footer error) as the
 * `not-a-parquet` failure: bad data, said as such, not a bug.
 */
export function parquetFailure(e: unknown): Failure | undefined {
  if (!(e instanceof Error)) return undefined;
  const m = e.message;
  if (!/^(Invalid Input|Invalid|IO|Corrupt|Serialization) Error:/.test(m)) return undefined;
  if (!/parquet|magic bytes|thrift|footer|row group|column chunk/i.test(m)) return undefined;
  return { reason: 'not-a-parquet', message: `not a readable parquet file: ${m}` };
}

/**
 * A local path as a SQL string literal for DuckDB's file functions. The path is made absolute (so a
 * leading `~` is not a home directory); quotes are doubled; and because DuckDB treats a path with
 * `*`, `?` or `[` as a glob (`a[1].parquet` would read `a1.parquet`), each of those is written as a
 * one-character class (`[[]`), which matches only itself. Exported for tests.
 */
export function parquetPathLiteral(path: string): string {
  const abs = resolve(path);
  const unglobbed = /[*?[]/.test(abs) ? abs.replace(/[*?[]/g, (c) => `[${c}]`) : abs;
  return `'${unglobbed.replaceAll("'", "''")}'`;
}

/** A SQL identifier, quoted. */
function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Number of rows in a local parquet file (from the footer metadata, cheap). */
export async function parquetRowCount(conn: DuckDBConnection, path: string): Promise<number> {
  const reader = await conn.runAndReadAll(
    `SELECT num_rows FROM parquet_file_metadata(${parquetPathLiteral(path)})`,
  );
  const rows = reader.getRows();
  if (rows.length !== 1) {
    throw new Error(`Internal error: ${path} matched ${rows.length} parquet files, expected 1`);
  }
  return toSafeNumber(rows[0]?.[0], 'num_rows');
}

/** Options for `streamParquetRows`. */
export interface RowRange {
  /** First row (0-based, inclusive); default 0. */
  from?: number;
  /** End row (exclusive); default: the end of the file. */
  to?: number;
  /** Columns to read, in this order; default: every column, in parquet order. */
  columns?: string[];
}

/**
 * The range query, selecting `file_row_number` first. The filter is pushed into the scan; the
 * order comes from `preserve_insertion_order`. Exported for tests.
 */
export function rowRangeSql(path: string, range: RowRange, castToVarchar = false): string {
  const from = range.from ?? 0;
  const to = range.to;
  if (!Number.isSafeInteger(from) || from < 0) {
    throw new Error(`Internal error: from must be a non-negative integer, got ${from}`);
  }
  if (to !== undefined && (!Number.isSafeInteger(to) || to < from)) {
    throw new Error(`Internal error: to must be an integer >= from (${from}), got ${to}`);
  }
  const cols =
    range.columns === undefined
      ? '* EXCLUDE (file_row_number)'
      : range.columns
          .map((c) => (castToVarchar ? `CAST(${ident(c)} AS VARCHAR)` : ident(c)))
          .join(', ');
  const where = [
    `file_row_number >= ${from}`,
    ...(to === undefined ? [] : [`file_row_number < ${to}`]),
  ];
  return (
    `SELECT file_row_number, ${cols} ` +
    `FROM read_parquet(${parquetPathLiteral(path)}, file_row_number = true) ` +
    `WHERE ${where.join(' AND ')}`
  );
}

/**
 * Streams rows [from, to) of a local parquet in file order, one DuckDB chunk (≤ 2048 rows) at a
 * time, as plain JSON-ready objects (see the header for the value rules). Keys are in parquet
 * column order (or `columns` order); JavaScript puts integer-like keys first, which no column of
 * the-stack-v2 has. Memory does not grow with the file: JavaScript holds one chunk, DuckDB the
 * pages each scan thread is reading (see `DuckDBOptions.threads`).
 *
 * One stream per connection at a time: a query run on the connection while this generator is
 * suspended ends DuckDB's stream, which is detected and thrown as an error, not taken for the end.
 */
export async function* streamParquetRows(
  conn: DuckDBConnection,
  path: string,
  opts: RowRange = {},
): AsyncGenerator<Record<string, unknown>[], void, undefined> {
  const sql = rowRangeSql(path, opts);
  const end = await rangeEnd(conn, path, opts.to);
  const result = await conn.stream(sql);
  const names = result.columnNames().slice(1);
  let next = opts.from ?? 0;
  for (;;) {
    const chunk = await result.fetchChunk();
    if (chunk === null || chunk.rowCount === 0) {
      checkComplete(next, end, path);
      return;
    }
    next = checkRowNumbers(chunk, next, path);
    const columns = chunk.convertColumns(toJson);
    const rows: Record<string, unknown>[] = new Array<Record<string, unknown>>(chunk.rowCount);
    for (let r = 0; r < chunk.rowCount; r++) {
      const row: Record<string, unknown> = {};
      for (let c = 0; c < names.length; c++) {
        row[names[c] as string] = (columns[c + 1] as Json[])[r];
      }
      rows[r] = row;
    }
    yield rows;
  }
}

/**
 * Reads one column as strings in file order, chunked (used for blob_id by the cmds task). A NULL
 * is `null` and any other non-string its text: bad values are data for the caller to report per
 * row, never a reason to give up on the file.
 */
export async function* streamColumn(
  conn: DuckDBConnection,
  path: string,
  column: string,
): AsyncGenerator<(string | null)[], void, undefined> {
  const sql = rowRangeSql(path, { columns: [column] }, true);
  const end = await rangeEnd(conn, path, undefined);
  const result = await conn.stream(sql);
  let next = 0;
  for (;;) {
    const chunk = await result.fetchChunk();
    if (chunk === null || chunk.rowCount === 0) {
      checkComplete(next, end, path);
      return;
    }
    next = checkRowNumbers(chunk, next, path);
    const values = chunk.getColumnValues(1);
    const out: (string | null)[] = new Array<string | null>(values.length);
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      out[i] = typeof v === 'string' || v === null || v === undefined ? (v ?? null) : String(v);
    }
    yield out;
  }
}

/** The row a complete stream of [from, to) stops at: `to`, or the file's end if sooner. */
async function rangeEnd(
  conn: DuckDBConnection,
  path: string,
  to: number | undefined,
): Promise<number> {
  const total = await parquetRowCount(conn, path);
  return to === undefined ? total : Math.min(to, total);
}

/**
 * A streaming result ends early, without an error, when another query runs on the same connection
 * (DuckDB invalidates it): that must not pass for the end of the range.
 */
function checkComplete(next: number, end: number, path: string): void {
  if (next < end) {
    throw new Error(
      `Internal error: ${path}: the row stream stopped at row ${next} before row ${end}; was another query run on the same DuckDB connection meanwhile?`,
    );
  }
}

/** Checks that column 0 (file_row_number) counts up by one from `expected`; returns the next. */
function checkRowNumbers(chunk: DuckDBDataChunk, expected: number, path: string): number {
  const numbers = chunk.getColumnValues(0);
  let want = BigInt(expected);
  for (const n of numbers) {
    if (n !== want) {
      throw new Error(
        `Internal error: ${path}: DuckDB returned row ${String(n)} where row ${want} was due (file order lost)`,
      );
    }
    want++;
  }
  return Number(want);
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** A 64/128-bit integer as a number when exact, else as a decimal string. */
function exactInteger(v: bigint): number | string {
  return v <= MAX_SAFE && v >= -MAX_SAFE ? Number(v) : v.toString();
}

function toSafeNumber(v: unknown, what: string): number {
  if (typeof v === 'bigint' && v <= MAX_SAFE && v >= 0n) return Number(v);
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  throw new Error(`Internal error: ${what} is not a safe integer: ${String(v)}`);
}

/** Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days). */
function civilFromDays(days: number): { y: number; m: number; d: number } {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return { y: yoe + era * 400 + (m <= 2 ? 1 : 0), m, d };
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');

function isoDate(days: number): string {
  const { y, m, d } = civilFromDays(days);
  const year = y >= 0 && y <= 9999 ? pad(y, 4) : `${y < 0 ? '-' : '+'}${pad(Math.abs(y), 6)}`;
  return `${year}-${pad(m, 2)}-${pad(d, 2)}`;
}

/** `ticks` units since the epoch, `perSecond` (a power of ten ≤ 1e9) units a second. */
function isoTimestamp(ticks: bigint, perSecond: bigint): string {
  let seconds = ticks / perSecond;
  let frac = ticks % perSecond;
  if (frac < 0n) {
    frac += perSecond;
    seconds -= 1n;
  }
  let days = seconds / 86400n;
  let sod = seconds % 86400n;
  if (sod < 0n) {
    sod += 86400n;
    days -= 1n;
  }
  const s = Number(sod);
  const time = `${pad(Math.floor(s / 3600), 2)}:${pad(Math.floor(s / 60) % 60, 2)}:${pad(s % 60, 2)}`;
  const nanos = frac * (1_000_000_000n / perSecond);
  const fraction = `.${nanos.toString().padStart(9, '0')}`;
  return `${isoDate(Number(days))}T${time}${fraction}Z`;
}

/** Ticks since the epoch as ISO text, or DuckDB's `infinity` / `-infinity`. */
function timestamp(
  value: { readonly isFinite: boolean },
  ticks: bigint,
  perSecond: bigint,
): string {
  // (DuckDB's own toString prints the ns infinities as dates.)
  if (!value.isFinite) return ticks > 0n ? 'infinity' : '-infinity';
  return isoTimestamp(ticks, perSecond);
}

/** DuckDB value -> lossless JSON value; see the header for the rules. */
const toJson: DuckDBValueConverter<Json> = (value, type, converter) => {
  if (value === null) return null;
  switch (type.typeId) {
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UHUGEINT:
      if (typeof value === 'bigint') return exactInteger(value);
      break;
    case DuckDBTypeId.DOUBLE:
    case DuckDBTypeId.FLOAT:
      if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
      break;
    case DuckDBTypeId.TIMESTAMP_S:
      if (value instanceof DuckDBTimestampSecondsValue) {
        return timestamp(value, value.seconds, 1n);
      }
      break;
    case DuckDBTypeId.TIMESTAMP_MS:
      if (value instanceof DuckDBTimestampMillisecondsValue) {
        return timestamp(value, value.millis, 1000n);
      }
      break;
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_TZ:
      if (value instanceof DuckDBTimestampValue || value instanceof DuckDBTimestampTZValue) {
        return timestamp(value, value.micros, 1_000_000n);
      }
      break;
    case DuckDBTypeId.TIMESTAMP_NS:
      if (value instanceof DuckDBTimestampNanosecondsValue) {
        return timestamp(value, value.nanos, 1_000_000_000n);
      }
      break;
    case DuckDBTypeId.DATE:
      if (value instanceof DuckDBDateValue) {
        return value.isFinite ? isoDate(value.days) : value.toString();
      }
      break;
    default:
      return JsonDuckDBValueConverter(value, type, converter);
  }
  throw new Error(`Internal error: unexpected value for DuckDB type ${type.toString()}`);
};
