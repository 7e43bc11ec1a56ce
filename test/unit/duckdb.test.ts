import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_THREADS,
  parquetPathLiteral,
  parquetRowCount,
  rowRangeSql,
  streamColumn,
  streamParquetRows,
  withDuckDB,
} from '../../lib/io/duckdb.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stackflow-duckdb-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes a parquet with a single-threaded DuckDB (so UNION ALL order and row groups are exact). */
async function writeParquet(path: string, select: string, rowGroupSize?: number): Promise<void> {
  const rg = rowGroupSize === undefined ? '' : `, ROW_GROUP_SIZE ${rowGroupSize}`;
  await withDuckDB(
    async (conn) => {
      await conn.run(`COPY (${select}) TO ${parquetPathLiteral(path)} (FORMAT parquet${rg})`);
    },
    { threads: 1 },
  );
}

async function collect<T>(gen: AsyncGenerator<T[]>): Promise<T[]> {
  const out: T[] = [];
  for await (const chunk of gen) out.push(...chunk);
  return out;
}

/** `n` rows with id = row number, in row groups of exactly `groupRows` rows. */
function idsSelect(n: number, groupRows: number): string {
  const parts: string[] = [];
  for (let start = 0; start < n; start += groupRows) {
    const end = Math.min(n, start + groupRows);
    parts.push(`SELECT i AS id, 'blob-' || i AS blob_id FROM range(${start}, ${end}) t(i)`);
  }
  return parts.join(' UNION ALL ');
}

/** One column per the-stack-v2 type (and the re-upload variants), 5 rows. */
const TYPES_SELECT = `
  SELECT
    'b' || i AS blob_id,
    CASE WHEN i % 3 = 0 THEN ['MIT', 'Apache-2.0'] WHEN i % 3 = 1 THEN [] ELSE NULL END
      AS detected_licenses,
    ('2021-03-04 05:06:07.12345678' || i)::TIMESTAMP_NS AS visit_date,
    ('2015-06-07 08:09:10.00000' || i)::TIMESTAMP AS revision_date,
    ('2019-12-31 23:59:59.12' || i)::TIMESTAMP_MS AS committer_date,
    CASE WHEN i % 2 = 0 THEN NULL
      ELSE ('1969-12-31 23:59:59.00000000' || i)::TIMESTAMP_NS END AS gha_created_at,
    '2021-03-04 05:06:07.654321+00'::TIMESTAMPTZ AS tz,
    [9007199254740991, 9007199254740992, -9007199254740993, 0][i % 4 + 1]::BIGINT
      AS star_events_count,
    (i * 1000)::BIGINT AS length_bytes,
    i % 2 = 0 AS is_vendor,
    CASE WHEN i = 4 THEN NULL ELSE i = 1 END AS is_generated,
    CASE WHEN i = 2 THEN NULL ELSE 'UTF-8' END AS src_encoding
  FROM range(5) t(i)`;

const EXPECTED_TYPES_ROWS = [
  {
    blob_id: 'b0',
    detected_licenses: ['MIT', 'Apache-2.0'],
    visit_date: '2021-03-04T05:06:07.123456780Z',
    revision_date: '2015-06-07T08:09:10.000000000Z',
    committer_date: '2019-12-31T23:59:59.120000000Z',
    gha_created_at: null,
    tz: '2021-03-04T05:06:07.654321000Z',
    star_events_count: 9007199254740991,
    length_bytes: 0,
    is_vendor: true,
    is_generated: false,
    src_encoding: 'UTF-8',
  },
  {
    blob_id: 'b1',
    detected_licenses: [],
    visit_date: '2021-03-04T05:06:07.123456781Z',
    revision_date: '2015-06-07T08:09:10.000001000Z',
    committer_date: '2019-12-31T23:59:59.121000000Z',
    gha_created_at: '1969-12-31T23:59:59.000000001Z',
    tz: '2021-03-04T05:06:07.654321000Z',
    star_events_count: '9007199254740992',
    length_bytes: 1000,
    is_vendor: false,
    is_generated: true,
    src_encoding: 'UTF-8',
  },
  {
    blob_id: 'b2',
    detected_licenses: null,
    visit_date: '2021-03-04T05:06:07.123456782Z',
    revision_date: '2015-06-07T08:09:10.000002000Z',
    committer_date: '2019-12-31T23:59:59.122000000Z',
    gha_created_at: null,
    tz: '2021-03-04T05:06:07.654321000Z',
    star_events_count: '-9007199254740993',
    length_bytes: 2000,
    is_vendor: true,
    is_generated: false,
    src_encoding: null,
  },
  {
    blob_id: 'b3',
    detected_licenses: ['MIT', 'Apache-2.0'],
    visit_date: '2021-03-04T05:06:07.123456783Z',
    revision_date: '2015-06-07T08:09:10.000003000Z',
    committer_date: '2019-12-31T23:59:59.123000000Z',
    gha_created_at: '1969-12-31T23:59:59.000000003Z',
    tz: '2021-03-04T05:06:07.654321000Z',
    star_events_count: 0,
    length_bytes: 3000,
    is_vendor: false,
    is_generated: false,
    src_encoding: 'UTF-8',
  },
  {
    blob_id: 'b4',
    detected_licenses: [],
    visit_date: '2021-03-04T05:06:07.123456784Z',
    revision_date: '2015-06-07T08:09:10.000004000Z',
    committer_date: '2019-12-31T23:59:59.124000000Z',
    gha_created_at: null,
    tz: '2021-03-04T05:06:07.654321000Z',
    star_events_count: 9007199254740991,
    length_bytes: 4000,
    is_vendor: true,
    is_generated: null,
    src_encoding: 'UTF-8',
  },
];

describe('streamParquetRows values', () => {
  it('returns every the-stack-v2 column type exactly, keys in parquet order', async () => {
    const path = join(dir, 'types.parquet');
    await writeParquet(path, TYPES_SELECT);
    await withDuckDB(async (conn) => {
      const rows = await collect(streamParquetRows(conn, path, {}));
      expect(rows).toEqual(EXPECTED_TYPES_ROWS);
      expect(rows.map((r) => Object.keys(r))).toEqual(
        EXPECTED_TYPES_ROWS.map((r) => Object.keys(r)),
      );
      // The types really are those of the dataset (DuckDB reads parquet ms as TIMESTAMP).
      const described = await conn.runAndReadAll(
        `DESCRIBE SELECT * FROM read_parquet(${parquetPathLiteral(path)})`,
      );
      expect(described.getRowObjectsJson().map((r) => r.column_type)).toEqual([
        'VARCHAR',
        'VARCHAR[]',
        'TIMESTAMP_NS',
        'TIMESTAMP',
        'TIMESTAMP',
        'TIMESTAMP_NS',
        'TIMESTAMP WITH TIME ZONE',
        'BIGINT',
        'BIGINT',
        'BOOLEAN',
        'BOOLEAN',
        'VARCHAR',
      ]);
      // The rows survive JSON unchanged (no bigint, no Date, no undefined).
      expect(JSON.parse(JSON.stringify(rows))).toEqual(rows);
    });
  });

  it('formats seconds, far dates and infinities', async () => {
    const path = join(dir, 'edge.parquet');
    await writeParquet(
      path,
      `SELECT '2024-02-29 00:00:00'::TIMESTAMP_S AS s,
              '0001-01-01 00:00:00'::TIMESTAMP AS first,
              '0044-03-15 (BC) 12:00:00'::TIMESTAMP AS bc,
              '12345-06-07 01:02:03'::TIMESTAMP AS far,
              '1677-09-22 00:00:00.000000001'::TIMESTAMP_NS AS early_ns,
              'infinity'::TIMESTAMP AS inf,
              '-infinity'::TIMESTAMP AS neg_inf,
              'infinity'::TIMESTAMP_NS AS inf_ns,
              DATE '2024-02-29' AS d,
              [TIMESTAMP_NS '2000-01-01 00:00:00.000000001'] AS list_ns`,
    );
    await withDuckDB(async (conn) => {
      expect(await collect(streamParquetRows(conn, path))).toEqual([
        {
          s: '2024-02-29T00:00:00.000000000Z',
          first: '0001-01-01T00:00:00.000000000Z',
          bc: '-000043-03-15T12:00:00.000000000Z', // ISO years: 0 is 1 BC
          far: '+012345-06-07T01:02:03.000000000Z',
          early_ns: '1677-09-22T00:00:00.000000001Z',
          inf: 'infinity',
          neg_inf: '-infinity',
          inf_ns: 'infinity',
          d: '2024-02-29',
          list_ns: ['2000-01-01T00:00:00.000000001Z'],
        },
      ]);
    });
  });

  it('reads the requested columns in the requested order', async () => {
    const path = join(dir, 'types.parquet');
    await withDuckDB(async (conn) => {
      const rows = await collect(
        streamParquetRows(conn, path, { from: 1, to: 3, columns: ['src_encoding', 'blob_id'] }),
      );
      expect(rows).toEqual([
        { src_encoding: 'UTF-8', blob_id: 'b1' },
        { src_encoding: null, blob_id: 'b2' },
      ]);
      expect(rows.map((r) => Object.keys(r))).toEqual([
        ['src_encoding', 'blob_id'],
        ['src_encoding', 'blob_id'],
      ]);
    });
  });
});

describe('row ranges and file order', () => {
  const n = 1000;
  let path: string;

  beforeAll(async () => {
    path = join(dir, 'groups.parquet');
    await writeParquet(path, idsSelect(n, 100), 100);
  });

  it('writes row groups of 100 rows', async () => {
    await withDuckDB(async (conn) => {
      const meta = await conn.runAndReadAll(
        `SELECT DISTINCT row_group_id, row_group_num_rows FROM parquet_metadata(${parquetPathLiteral(path)}) ORDER BY 1`,
      );
      expect(meta.getRowsJson().map((r) => Number(r[1]))).toEqual(Array(10).fill(100));
      expect(await parquetRowCount(conn, path)).toBe(n);
    });
  });

  const cases: [number | undefined, number | undefined, number, number][] = [
    [undefined, undefined, 0, n],
    [0, 100, 0, 100],
    [95, 205, 95, 205],
    [100, 200, 100, 200],
    [199, 201, 199, 201],
    [150, 151, 150, 151],
    [999, 1000, 999, 1000],
    [990, 5000, 990, n], // past the end: stops at the end of the file
    [500, 500, 500, 500],
    [2000, 3000, 2000, 2000],
    [333, undefined, 333, n],
  ];
  it.each(cases)('from %s to %s', async (from, to, lo, hi) => {
    await withDuckDB(
      async (conn) => {
        const rows = await collect(streamParquetRows(conn, path, { from, to }));
        const want = Array.from({ length: hi - lo }, (_, k) => ({
          id: lo + k,
          blob_id: `blob-${lo + k}`,
        }));
        expect(rows).toEqual(want);
      },
      { threads: 4 },
    );
  });

  it('keeps file order under a parallel scan of many row groups', async () => {
    const big = join(dir, 'many-groups.parquet');
    await writeParquet(big, idsSelect(60_000, 2048), 2048);
    await withDuckDB(
      async (conn) => {
        let expected = 1234;
        for await (const rows of streamParquetRows(conn, big, { from: 1234, to: 58_000 })) {
          for (const r of rows) expect(r.id).toBe(expected++);
        }
        expect(expected).toBe(58_000);
        let k = 0;
        for await (const ids of streamColumn(conn, big, 'blob_id')) {
          for (const id of ids) expect(id).toBe(`blob-${k++}`);
        }
        expect(k).toBe(60_000);
      },
      { threads: 4 },
    );
  });

  it('pushes the row range into the parquet scan (row groups outside it are skipped)', async () => {
    await withDuckDB(async (conn) => {
      const plan = await conn.runAndReadAll(`EXPLAIN ${rowRangeSql(path, { from: 150, to: 250 })}`);
      const text = plan
        .getRows()
        .map((r) => String(r[1]))
        .join('\n');
      // A single READ_PARQUET node carrying both bounds as scan filters, and no FILTER node above.
      expect(text).toMatch(
        /READ_PARQUET[\s\S]*Filters:[\s\S]*file_row_number>=150[\s\S]*file_row_number<250/,
      );
      expect(text).not.toMatch(/│\s+FILTER\s+│/);
      expect(text).not.toMatch(/ORDER_BY/);
    });
  });

  it('detects a stream cut short by another query on the same connection', async () => {
    await withDuckDB(async (conn) => {
      const a = streamParquetRows(conn, path, {});
      await a.next();
      await parquetRowCount(conn, path); // invalidates a's streaming result
      await expect(collect(a)).rejects.toThrow(/stopped at row/);
    });
  });

  it('rejects bad ranges', async () => {
    await withDuckDB(async (conn) => {
      await expect(collect(streamParquetRows(conn, path, { from: -1 }))).rejects.toThrow(/from/);
      await expect(collect(streamParquetRows(conn, path, { from: 5, to: 4 }))).rejects.toThrow(
        /to must be/,
      );
    });
  });
});

describe('paths', () => {
  it("reads paths with ' + ( ) spaces and unicode", async () => {
    const sub = join(dir, "it's C++ (x)", 'Graphviz_(DOT) ü');
    await mkdir(sub, { recursive: true });
    const path = join(sub, "train-0000'1+2.parquet");
    await writeParquet(path, idsSelect(3, 3));
    await withDuckDB(async (conn) => {
      expect(await parquetRowCount(conn, path)).toBe(3);
      expect(await collect(streamColumn(conn, path, 'blob_id'))).toEqual([
        'blob-0',
        'blob-1',
        'blob-2',
      ]);
      expect(await collect(streamParquetRows(conn, path, { from: 2 }))).toEqual([
        { id: 2, blob_id: 'blob-2' },
      ]);
    });
  });

  it('treats glob characters literally (a[1] does not read a1, * does not read the others)', async () => {
    const sub = join(dir, 'globs');
    await mkdir(sub, { recursive: true });
    await writeParquet(join(sub, 'a1.parquet'), 'SELECT 1 AS v');
    await writeParquet(join(sub, 'a[1].parquet'), 'SELECT 2 AS v');
    await writeParquet(join(sub, 'star*.parquet'), 'SELECT 3 AS v');
    await writeParquet(join(sub, 'starX.parquet'), 'SELECT 4 AS v');
    await writeParquet(join(sub, 'q?.parquet'), 'SELECT 5 AS v');
    await writeParquet(join(sub, 'qX.parquet'), 'SELECT 6 AS v');
    await withDuckDB(async (conn) => {
      for (const [name, v] of [
        ['a[1].parquet', 2],
        ['star*.parquet', 3],
        ['q?.parquet', 5],
        ['a1.parquet', 1],
      ] as const) {
        expect(await collect(streamParquetRows(conn, join(sub, name))), name).toEqual([{ v }]);
        expect(await parquetRowCount(conn, join(sub, name)), name).toBe(1);
      }
    });
  });

  it('quotes for SQL and resolves relative paths', () => {
    expect(parquetPathLiteral("/d/it's.parquet")).toBe("'/d/it''s.parquet'");
    expect(parquetPathLiteral('/d/a[1]*?.parquet')).toBe("'/d/a[[]1][*][?].parquet'");
    expect(parquetPathLiteral('~x.parquet')).toBe(`'${join(process.cwd(), '~x.parquet')}'`);
  });
});

describe('streamColumn', () => {
  it('yields a NULL as null (the caller reports it per row)', async () => {
    const path = join(dir, 'nulls.parquet');
    await writeParquet(
      path,
      `SELECT CASE WHEN i = 2 THEN NULL ELSE 'x' || i END AS blob_id FROM range(4) t(i)`,
    );
    await withDuckDB(async (conn) => {
      expect(await collect(streamColumn(conn, path, 'blob_id'))).toEqual(['x0', 'x1', null, 'x3']);
    });
  });
});

describe('withDuckDB', () => {
  it('applies settings and passes errors through', async () => {
    const got = await withDuckDB(
      async (conn: DuckDBConnection) => {
        const r = await conn.runAndReadAll(
          `SELECT current_setting('threads') AS t, current_setting('memory_limit') AS m, current_setting('preserve_insertion_order') AS p`,
        );
        return r.getRowObjectsJson()[0];
      },
      { threads: 3, memoryLimit: '512MB' },
    );
    expect(got).toMatchObject({ t: '3', p: true });
    expect(got?.m).toMatch(/^(488\.2 MiB|512\.0 MB|0\.5 GiB)$/);
    await expect(withDuckDB(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    const threads = await withDuckDB(async (conn) => {
      const r = await conn.runAndReadAll(`SELECT current_setting('threads') AS t`);
      return r.getRowObjectsJson()[0]?.t;
    });
    expect(threads).toBe(String(DEFAULT_THREADS));
  });
});

/**
 * Opt-in: writes ~100 MB of parquet and reads 1 GB of text. Reader memory follows the file's page
 * size, not our chunking: DuckDB's writer puts a whole row group's column chunk in pages of up to
 * ~100 MB, pyarrow (which wrote the-stack-v2) in 1 MiB pages. ROW_GROUP_SIZE 10240 keeps DuckDB's
 * pages near 10 MB, closer to the real files. Measured on 2 cores: +190 MiB here; +140-150 MiB for
 * a pyarrow-written file with one 1M-row row group (1-4 threads); +320/+480 MiB (1/2 threads) for
 * DuckDB's default 122,880-row groups.
 */
describe.skipIf(!process.env.STACKFLOW_MEMORY_TESTS)('memory', () => {
  it('streams 1,000,000 rows of ~1 KB with bounded RSS', async () => {
    const path = join(dir, 'million.parquet');
    await writeParquet(
      path,
      `SELECT i AS id, 'blob-' || i AS blob_id, repeat(md5(i::VARCHAR), 32) AS text,
              ('2021-03-04 05:06:07'::TIMESTAMP_NS + to_seconds(i)) AS ts FROM range(1000000) t(i)`,
      10240,
    );
    const before = process.memoryUsage().rss;
    let peak = before;
    let rows = 0;
    let textBytes = 0;
    const t0 = Date.now();
    await withDuckDB(async (conn) => {
      for await (const chunk of streamParquetRows(conn, path, {})) {
        for (const r of chunk) textBytes += (r.text as string).length;
        rows += chunk.length;
        peak = Math.max(peak, process.memoryUsage().rss);
      }
    });
    const growthMiB = (peak - before) / 2 ** 20;
    console.log(
      `memory: ${rows} rows, ${(textBytes / 2 ** 20).toFixed(0)} MiB of text in ${Date.now() - t0} ms; RSS ${(before / 2 ** 20).toFixed(0)} -> peak ${(peak / 2 ** 20).toFixed(0)} MiB (+${growthMiB.toFixed(0)} MiB)`,
    );
    expect(rows).toBe(1_000_000);
    expect(growthMiB).toBeLessThan(300);
  });
});
