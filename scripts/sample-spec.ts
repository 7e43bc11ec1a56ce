/**
 * What the bundled sample (`examples/sample`) and the big benchmark parquet are made of: the
 * the-stack-v2 schema, the encodings, the JSON file shapes, the seeded PRNG, and how one row's
 * metadata is drawn and written to parquet.
 *
 * `scripts/make-sample.ts` and `scripts/make-big-parquet.ts` generate data from these tables and
 * `test/unit/sample.test.ts` checks the committed output against them, so each is written once.
 */

import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { DuckDBInstance, LIST, VARCHAR, listValue, timestampNanosValue } from '@duckdb/node-api';

/** One column of the the-stack-v2 parquet schema, as DuckDB's DESCRIBE names its type. */
export interface SchemaColumn {
  /** Column name, exactly as in the dataset. */
  readonly name: string;
  /** DuckDB type name (DESCRIBE `column_type`). */
  readonly type: string;
  /** Whether the sample puts NULLs in this column (only the gha_* columns do). */
  readonly nullable: boolean;
}

/** The 26 columns of bigcode/the-stack-v2, in file order. There is no content column. */
export const STACK_V2_SCHEMA: readonly SchemaColumn[] = [
  { name: 'blob_id', type: 'VARCHAR', nullable: false },
  { name: 'directory_id', type: 'VARCHAR', nullable: false },
  { name: 'path', type: 'VARCHAR', nullable: false },
  { name: 'content_id', type: 'VARCHAR', nullable: false },
  { name: 'detected_licenses', type: 'VARCHAR[]', nullable: false },
  { name: 'license_type', type: 'VARCHAR', nullable: false },
  { name: 'repo_name', type: 'VARCHAR', nullable: false },
  { name: 'snapshot_id', type: 'VARCHAR', nullable: false },
  { name: 'revision_id', type: 'VARCHAR', nullable: false },
  { name: 'branch_name', type: 'VARCHAR', nullable: false },
  { name: 'visit_date', type: 'TIMESTAMP_NS', nullable: false },
  { name: 'revision_date', type: 'TIMESTAMP_NS', nullable: false },
  { name: 'committer_date', type: 'TIMESTAMP_NS', nullable: false },
  { name: 'github_id', type: 'BIGINT', nullable: false },
  { name: 'star_events_count', type: 'BIGINT', nullable: false },
  { name: 'fork_events_count', type: 'BIGINT', nullable: false },
  { name: 'gha_license_id', type: 'VARCHAR', nullable: true },
  { name: 'gha_event_created_at', type: 'TIMESTAMP_NS', nullable: true },
  { name: 'gha_created_at', type: 'TIMESTAMP_NS', nullable: true },
  { name: 'gha_language', type: 'VARCHAR', nullable: true },
  { name: 'src_encoding', type: 'VARCHAR', nullable: false },
  { name: 'language', type: 'VARCHAR', nullable: false },
  { name: 'is_vendor', type: 'BOOLEAN', nullable: false },
  { name: 'is_generated', type: 'BOOLEAN', nullable: false },
  { name: 'length_bytes', type: 'BIGINT', nullable: false },
  { name: 'extension', type: 'VARCHAR', nullable: false },
];

/** `CREATE TABLE` column list for the schema above. */
export const STACK_V2_COLUMNS_DDL = STACK_V2_SCHEMA.map((c) => `${c.name} ${c.type}`).join(', ');

/**
 * The 26 columns of a generated parquet, as DuckDB expressions over `range(n) r JOIN pool p`
 * (`p.blob_id`, `p.length_bytes`), for the big-parquet and benchmark generators. Ids are
 * sha256-derived hex (40 chars, like sha1), so they compress like real ids; every 4th row has
 * NULL gha_* columns. `overrides` replaces expressions by column name.
 */
export function generatedColumnsSql(overrides: Readonly<Record<string, string>> = {}): string {
  // Two sha256 per row give four 40-hex ids (overlapping slices land in different column
  // chunks, so they do not help compression).
  const hex = (tag: 'a' | 'b', from: 1 | 25): string =>
    `substr(sha256('${tag}' || r.range), ${from}, 40)`;
  const ts = (base: bigint, step: bigint): string =>
    `make_timestamp_ns(${base} + r.range * ${step})`;
  const noGha = 'r.range % 4 = 0';
  const columns: Record<string, string> = {
    blob_id: 'p.blob_id',
    directory_id: hex('a', 1),
    path: `'/src/mod_' || (r.range % 997) || '/file_' || r.range || '.js'`,
    content_id: hex('a', 25),
    detected_licenses: `CASE r.range % 3 WHEN 0 THEN []::VARCHAR[] WHEN 1 THEN ['MIT'] ELSE ['Apache-2.0', 'BSD-3-Clause'] END`,
    license_type: `CASE r.range % 3 WHEN 0 THEN 'no_license' ELSE 'permissive' END`,
    repo_name: `'owner' || (r.range % 5003) || '/repo' || (r.range % 7919)`,
    snapshot_id: hex('b', 1),
    revision_id: hex('b', 25),
    branch_name: `'refs/heads/main'`,
    visit_date: ts(1_690_000_000_000_000_000n, 1_000_003n),
    revision_date: ts(1_420_070_400_000_000_000n, 250_000_000_000n),
    committer_date: ts(1_420_070_400_000_000_000n, 250_000_000_000n),
    github_id: '(1000 + r.range)::BIGINT',
    star_events_count: '(r.range % 1000)::BIGINT',
    fork_events_count: '(r.range % 97)::BIGINT',
    gha_license_id: `CASE WHEN ${noGha} THEN NULL ELSE 'MIT' END`,
    gha_event_created_at: `CASE WHEN ${noGha} THEN NULL ELSE ${ts(1_600_000_000_000_000_000n, 1_000_001n)} END`,
    gha_created_at: `CASE WHEN ${noGha} THEN NULL ELSE ${ts(1_300_000_000_000_000_000n, 1_000_000n)} END`,
    gha_language: `CASE WHEN ${noGha} THEN NULL ELSE 'JavaScript' END`,
    src_encoding: `'UTF-8'`,
    language: `'Big'`,
    is_vendor: 'false',
    is_generated: 'false',
    length_bytes: 'p.length_bytes',
    extension: `'js'`,
    ...overrides,
  };
  return STACK_V2_SCHEMA.map((c) => {
    const expr = columns[c.name];
    if (expr === undefined) throw new Error(`Internal error: no expression for ${c.name}`);
    return `(${expr})::${c.type} AS ${c.name}`;
  }).join(',\n  ');
}

/**
 * A non-UTF-8 `src_encoding` the sample exercises. Rows with this label store the text encoded
 * with `iconv` (an iconv-lite name) in Software Heritage; a packer must decode it back.
 */
export interface SampleEncoding {
  /** The `src_encoding` value written in the parquet, spelled as the dataset spells it. */
  readonly label: string;
  /** iconv-lite encoding used to produce (and check) the bytes. */
  readonly iconv: string;
  /** Text prepended as a comment; it needs this encoding (not ASCII, not Latin-1 by accident). */
  readonly sample: string;
}

/**
 * Encodings of the non-UTF-8 rows. Notes on the less obvious labels:
 * - `UTF-16` in the-stack-v2 means big-endian bytes without a BOM.
 * - `UHC` is Microsoft's Unified Hangul Code (cp949), a superset of EUC-KR; the sample text has
 *   a syllable (똠) that only UHC has.
 * - `ISO-8859-1` and `ISO8859-1` are both spelled in the dataset; both are here.
 * - `UTF8` is the dataset's other spelling of UTF-8.
 */
export const SAMPLE_ENCODINGS: readonly SampleEncoding[] = [
  {
    label: 'windows-1252',
    iconv: 'windows-1252',
    sample: 'Café crème brûlée — “naïve” façade, 10 € œuvre',
  },
  {
    label: 'ISO-8859-1',
    iconv: 'iso-8859-1',
    sample: 'Größe, Straße, señor, ¿Qué tal? ±½ © àéîõü',
  },
  { label: 'ISO8859-1', iconv: 'iso-8859-1', sample: 'Déjà vu: «garçon», Ærøskøbing, 25°C, £5' },
  { label: 'Shift_JIS', iconv: 'shift_jis', sample: '日本語のコメント：設定ファイルを読み込む' },
  { label: 'EUC-JP', iconv: 'euc-jp', sample: 'ファイルの読み込み処理（日本語の説明）' },
  { label: 'IBM866', iconv: 'ibm866', sample: 'Привет, мир! Чтение файла конфигурации' },
  { label: 'KOI8-R', iconv: 'koi8-r', sample: 'Комментарий: разбор аргументов командной строки' },
  {
    label: 'MACCYRILLIC',
    iconv: 'maccyrillic',
    sample: 'Ошибка: не удалось открыть файл «данные»',
  },
  { label: 'MACINTOSH', iconv: 'macintosh', sample: 'Résumé — © 2019 “Mac” ƒ(x) ≠ π, ∑ ™' },
  { label: 'GB18030', iconv: 'gb18030', sample: '中文注释：读取配置文件并解析参数' },
  { label: 'BIG5', iconv: 'big5', sample: '繁體中文註解：讀取設定檔並解析參數' },
  { label: 'UHC', iconv: 'cp949', sample: '한국어 주석: 설정 파일을 읽습니다 (똠방각하)' },
  { label: 'IBM852', iconv: 'cp852', sample: 'Zażółć gęślą jaźń; Příliš žluťoučký kůň' },
  {
    label: 'windows-1250',
    iconv: 'windows-1250',
    sample: 'Příliš žluťoučký kůň úpěl ďábelské ódy',
  },
  { label: 'UTF-16', iconv: 'utf-16be', sample: 'UTF-16BE: Ünïcödé ✓ 日本語 Привет 🚀' },
  { label: 'UTF8', iconv: 'utf-8', sample: 'UTF8 spelling: naïve café ✓ λ' },
];

/** Rows per encoding label in the sample (the brief asks for at least 5). */
export const ROWS_PER_ENCODING = 6;

/** iconv-lite name for any `src_encoding` label the sample uses, including plain `UTF-8`. */
export function iconvNameFor(label: string): string {
  if (label === 'UTF-8') return 'utf-8';
  const enc = SAMPLE_ENCODINGS.find((e) => e.label === label);
  if (enc === undefined) throw new Error(`Internal error: no iconv name for ${label}`);
  return enc.iconv;
}

/**
 * Node TextDecoder label for a `src_encoding`, where Node's (ICU-backed) decoder agrees with
 * iconv-lite; used for `fatal` checks. Deliberately absent: `windows-1252` (Node 20 decodes
 * 0x80-0x9F as C1 controls, like Latin-1) and `UHC` (Node's `euc-kr` rejects UHC-only syllables
 * such as 똠). ISO-8859-1, IBM852 have no TextDecoder at all.
 */
export const TEXT_DECODER_LABELS: Readonly<Record<string, string>> = {
  'UTF-8': 'utf-8',
  UTF8: 'utf-8',
  'UTF-16': 'utf-16be',
  Shift_JIS: 'shift_jis',
  'EUC-JP': 'euc-jp',
  GB18030: 'gb18030',
  BIG5: 'big5',
  IBM866: 'ibm866',
  'KOI8-R': 'koi8-r',
  MACCYRILLIC: 'x-mac-cyrillic',
  MACINTOSH: 'macintosh',
  'windows-1250': 'windows-1250',
};

/** Shape of `examples/sample/expected-defects.json`. */
export interface ExpectedDefects {
  /** Rows whose blob is absent from `swh/content` (a 404 on the real bucket). */
  readonly missing: string[];
  /** Rows whose blob file has a valid gzip header followed by garbage. */
  readonly corrupt_gzip: string[];
  /** Rows whose (gunzipped) bytes are not valid in their declared encoding. */
  readonly undecodable: { blob_id: string; src_encoding: string }[];
}

/** One parquet entry of `examples/sample/manifest.json`. */
export interface ManifestParquet {
  /** Path relative to the sample root, e.g. `hf/data/C++/train-00000-of-00002.parquet`. */
  readonly path: string;
  /** File size in bytes. */
  readonly size: number;
  /** sha256 of the file, hex. */
  readonly sha256: string;
  /** Number of rows. */
  readonly rows: number;
}

/** Shape of `examples/sample/manifest.json`. */
export interface SampleManifest {
  /** Bumped when the layout or the generator's choices change. */
  readonly version: number;
  /** Parquet files, sorted by path. */
  readonly parquets: ManifestParquet[];
  /** Row count per language folder name. */
  readonly languages: Record<string, number>;
  /** Total rows over all parquets. */
  total_rows: number;
  /** Row count per `src_encoding` value. */
  readonly encodings: Record<string, number>;
  /** Number of files in `swh/content`. */
  readonly blob_files: number;
  /**
   * Rows that share their blob with an earlier row (the same file in two repositories, as in the
   * real, non-deduplicated dataset): `blob_id` and how many rows point at it.
   */
  readonly shared_blobs: { blob_id: string; rows: number }[];
}

/** Shape of `examples/sample/inputs.json`: what the generator read from the generating machine. */
export interface SampleInputs {
  /** Bumped with the manifest version. */
  readonly version: number;
  /** Directories scanned for candidate files (informational). */
  readonly roots: Record<string, string[]>;
  /**
   * Input files per language folder, in generation order, as `sha256sum` lines:
   * `<sha256 of the whole file>  <absolute path>`.
   */
  readonly files: Record<string, string[]>;
  /** Rows whose text is generated (no input file), per language folder. */
  readonly generated: Record<string, number>;
}

/**
 * Small seeded PRNG (sfc32) whose 128-bit state is the sha256 of a string key. Every row of the
 * sample gets its own key, so its values do not depend on how many values other rows drew.
 */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(key: string) {
    const h = createHash('sha256').update(key).digest();
    this.#a = h.readUInt32LE(0);
    this.#b = h.readUInt32LE(4);
    this.#c = h.readUInt32LE(8);
    this.#d = h.readUInt32LE(12);
  }

  /** Next uint32. */
  u32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }

  /** Uniform float in [0, 1). */
  float(): number {
    return this.u32() / 2 ** 32;
  }

  /** Uniform integer in [lo, hi] (inclusive; hi - lo < 2^32). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  /** Uniform bigint in [lo, hi] (inclusive), for nanosecond timestamps. */
  bigint(lo: bigint, hi: bigint): bigint {
    const wide = (BigInt(this.u32()) << 32n) | BigInt(this.u32());
    return lo + (wide % (hi - lo + 1n));
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(0, items.length - 1)];
    if (item === undefined) throw new Error('Internal error: pick from an empty array');
    return item;
  }

  /** 40 hex digits: the shape of a SWH sha1 / git id. */
  hex40(): string {
    let s = '';
    for (let i = 0; i < 5; i++) s += this.u32().toString(16).padStart(8, '0');
    return s;
  }
}

/** sha1 hex of bytes: how Software Heritage keys `content/<blob_id>`. */
export function sha1Hex(bytes: Uint8Array): string {
  return createHash('sha1').update(bytes).digest('hex');
}

/** sha256 hex of bytes. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * gzip with a fixed header (mtime 0, no name, OS byte 3 = Unix), so the same input gives the same
 * bytes on every run and platform.
 */
export function gzipDeterministic(bytes: Uint8Array, level = 9): Buffer {
  const gz = gzipSync(bytes, { level });
  gz[9] = 3;
  return gz;
}

/** `train-00001-of-00002.parquet`: the real dataset's 5-digit zero-padded shard name. */
export function shardFileName(index: number, count: number): string {
  return `train-${String(index).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.parquet`;
}

/** SQL string literal. */
export function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

// ---------------------------------------------------------------------------------------------
// Row metadata and the parquet writer for the sample.

/** What the sample generator knows about a row before its metadata is drawn. */
export interface SampleRow {
  /** Stable key (`<folder>:<shard>:<index>`): seeds the row's PRNG. */
  readonly key: string;
  /** sha1 of the stored (encoded, uncompressed) bytes. */
  readonly blobId: string;
  /** `language` column value. */
  readonly language: string;
  /** Path inside the repository, without the leading slash or a prefix directory. */
  readonly relPath: string;
  /** Prefix directories the path may be put under. */
  readonly prefixes: readonly string[];
  /** `src_encoding` value. */
  readonly encoding: string;
  /** `length_bytes`: UTF-8 length of the decoded text (raw length when it does not decode). */
  readonly lengthBytes: number;
}

const PERMISSIVE_SPDX = 'MIT Apache-2.0 BSD-3-Clause BSD-2-Clause ISC Unlicense Zlib CC0-1.0'.split(
  ' ',
);
const OWNERS =
  'acme-labs jdoe octo-org k8s-tools datawise tensorlab quux byte-forge hello.world n0name the-ops-team lin_ux'.split(
    ' ',
  );
const REPOS =
  'toolkit dotfiles core sandbox my-project server.js libfoo scripts homework-2019 graph_utils engine playground'.split(
    ' ',
  );
const GHA_LANGUAGES = 'C C++ Python JavaScript Shell Go Java TypeScript'.split(' ');
const BRANCHES =
  'refs/heads/master refs/heads/master refs/heads/main refs/heads/main refs/heads/develop refs/heads/gh-pages'.split(
    ' ',
  );

const DAY = 86_400;
const sec = (y: number, m: number, d: number): number => Date.UTC(y, m - 1, d) / 1000;
const FIRST_COMMIT = sec(2015, 1, 1);
const LAST_COMMIT = sec(2023, 6, 30);
const LAST_VISIT = sec(2023, 9, 6);
const GITHUB_START = sec(2008, 2, 8);

/** Nanoseconds since the epoch; `fraction` picks whole seconds, ms, µs or sub-µs precision. */
function ns(seconds: number, rng: Rng, fraction: 'none' | 'ms' | 'mixed'): bigint {
  const base = BigInt(seconds) * 1_000_000_000n;
  if (fraction === 'none') return base;
  if (fraction === 'ms') return base + BigInt(rng.int(0, 999)) * 1_000_000n;
  const p = rng.float();
  if (p < 0.3) return base + BigInt(rng.int(0, 999_999)) * 1000n + BigInt(rng.int(1, 999));
  if (p < 0.6) return base + BigInt(rng.int(0, 999_999)) * 1000n;
  return base;
}

/** The 26 column values of one row, in schema order (timestamps as epoch nanoseconds). */
export type RowValues = readonly (string | string[] | bigint | boolean | null)[];

/** Draw a row's metadata from its own PRNG. */
export function rowValues(row: SampleRow): RowValues {
  const rng = new Rng(`row:${row.key}`);
  const nLicenses = rng.float() < 0.45 ? 0 : rng.float() < 0.8 ? 1 : 2;
  const licenses: string[] = [];
  while (licenses.length < nLicenses) {
    const l = rng.pick(PERMISSIVE_SPDX);
    if (!licenses.includes(l)) licenses.push(l);
  }
  const vendor = rng.float() < 0.03;
  const prefix = vendor ? rng.pick(['vendor/', 'third_party/']) : rng.pick(row.prefixes);
  const path = `/${prefix}${row.relPath}`;
  const base = path.slice(path.lastIndexOf('/') + 1);
  const extension = base.lastIndexOf('.') > 0 ? base.slice(base.lastIndexOf('.') + 1) : '';
  const committer = rng.int(FIRST_COMMIT, LAST_COMMIT);
  const revision = rng.float() < 0.5 ? committer : committer - rng.int(60, 3 * DAY);
  const afterCommit = committer + rng.int(3600, 400 * DAY);
  const visit = afterCommit <= LAST_VISIT ? afterCommit : LAST_VISIT - rng.int(0, 60 * DAY);
  const stars = Math.floor(Math.exp(rng.float() * 9)) - 1;
  const hasGha = rng.float() < 0.75;
  const ghaLanguage =
    rng.float() < 0.1
      ? null
      : rng.float() < 0.7 && row.language !== 'Graphviz (DOT)'
        ? row.language
        : rng.pick(GHA_LANGUAGES);
  return [
    row.blobId,
    rng.hex40(), // directory_id
    path,
    rng.hex40(), // content_id
    licenses,
    nLicenses === 0 ? 'no_license' : 'permissive',
    `${rng.pick(OWNERS)}/${rng.pick(REPOS)}`,
    rng.hex40(), // snapshot_id
    rng.hex40(), // revision_id
    rng.pick(BRANCHES),
    ns(visit, rng, 'mixed'),
    ns(revision, rng, 'none'),
    ns(committer, rng, 'none'),
    BigInt(rng.int(1_000, 700_000_000)), // github_id
    BigInt(stars),
    BigInt(Math.floor(stars * rng.float() * 0.4)), // fork_events_count
    hasGha && rng.float() < 0.65 ? rng.pick(PERMISSIVE_SPDX) : null,
    hasGha
      ? ns(
          Math.min(committer + rng.int(0, 120 * DAY), LAST_VISIT),
          rng,
          rng.float() < 0.2 ? 'mixed' : 'ms',
        )
      : null,
    hasGha ? ns(Math.max(committer - rng.int(0, 2500 * DAY), GITHUB_START), rng, 'ms') : null,
    hasGha ? ghaLanguage : null,
    row.encoding,
    row.language,
    vendor,
    rng.float() < 0.02, // is_generated
    BigInt(row.lengthBytes),
    extension,
  ];
}

/** Rows per parquet row group: small, so readers cross several row groups even in the sample. */
export const SAMPLE_ROW_GROUP_SIZE = 256;

/**
 * Write rows to a parquet file with DuckDB, single-threaded so the bytes are reproducible.
 * DuckDB's writer never closes a row group below its 2,048-row vector size on its own, so the
 * rows are fed as one UNION ALL branch per row group: each branch reaches the writer as its own
 * chunk and closes a group of SAMPLE_ROW_GROUP_SIZE rows.
 */
export async function writeParquet(path: string, rows: readonly SampleRow[]): Promise<void> {
  const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
  const conn = await instance.connect();
  try {
    await conn.run(`CREATE TABLE t (_ord INTEGER, ${STACK_V2_COLUMNS_DDL})`);
    const appender = await conn.createAppender('t');
    rows.forEach((row, ord) => {
      appender.appendInteger(ord);
      rowValues(row).forEach((v, i) => {
        const col = STACK_V2_SCHEMA[i];
        if (v === null) appender.appendNull();
        else if (Array.isArray(v)) appender.appendList(listValue(v), LIST(VARCHAR));
        else if (typeof v === 'boolean') appender.appendBoolean(v);
        else if (typeof v === 'string') appender.appendVarchar(v);
        else if (col?.type === 'TIMESTAMP_NS')
          appender.appendTimestampNanoseconds(timestampNanosValue(v));
        else appender.appendBigInt(v);
      });
      appender.endRow();
    });
    appender.flushSync();
    appender.closeSync();
    const cols = STACK_V2_SCHEMA.map((c) => c.name).join(', ');
    const groups = Math.max(1, Math.ceil(rows.length / SAMPLE_ROW_GROUP_SIZE));
    const branches = Array.from(
      { length: groups },
      (_, g) =>
        `SELECT ${cols} FROM t WHERE _ord >= ${g * SAMPLE_ROW_GROUP_SIZE} AND _ord < ${(g + 1) * SAMPLE_ROW_GROUP_SIZE}`,
    );
    await conn.run(
      `COPY (${branches.join(' UNION ALL ')}) TO ${sqlString(path)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE ${SAMPLE_ROW_GROUP_SIZE})`,
    );
    // The row order is part of the sample: check it survived.
    const back = await conn.runAndReadAll(`SELECT blob_id FROM read_parquet(${sqlString(path)})`);
    const ids = back.getRows().map((r) => String(r[0]));
    if (ids.length !== rows.length || ids.some((id, i) => id !== rows[i]?.blobId)) {
      throw new Error(`Internal error: ${path} does not hold the rows in order`);
    }
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** Split an inputs.json line (`<sha256>  <path>`). */
export function splitInputLine(line: string): [sha256: string, path: string] {
  const m = /^([0-9a-f]{64}) {2}(\/.+)$/.exec(line);
  if (!m?.[1] || !m[2]) throw new Error(`inputs.json: bad line ${JSON.stringify(line)}`);
  return [m[1], m[2]];
}
