/**
 * Shared constants for the bundled sample (`examples/sample`) and the big benchmark parquet.
 *
 * `scripts/make-sample.ts` and `scripts/make-big-parquet.ts` generate data from these tables and
 * `test/unit/sample.test.ts` checks the committed output against them, so the schema and the
 * encoding list are written down once.
 */

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
  { label: 'windows-1252', iconv: 'windows-1252', sample: 'Café crème brûlée — “naïve” façade, 10 € œuvre' },
  { label: 'ISO-8859-1', iconv: 'iso-8859-1', sample: 'Größe, Straße, señor, ¿Qué tal? ±½ © àéîõü' },
  { label: 'ISO8859-1', iconv: 'iso-8859-1', sample: 'Déjà vu: «garçon», Ærøskøbing, 25°C, £5' },
  { label: 'Shift_JIS', iconv: 'shift_jis', sample: '日本語のコメント：設定ファイルを読み込む' },
  { label: 'EUC-JP', iconv: 'euc-jp', sample: 'ファイルの読み込み処理（日本語の説明）' },
  { label: 'IBM866', iconv: 'ibm866', sample: 'Привет, мир! Чтение файла конфигурации' },
  { label: 'KOI8-R', iconv: 'koi8-r', sample: 'Комментарий: разбор аргументов командной строки' },
  { label: 'MACCYRILLIC', iconv: 'maccyrillic', sample: 'Ошибка: не удалось открыть файл «данные»' },
  { label: 'MACINTOSH', iconv: 'macintosh', sample: 'Résumé — © 2019 “Mac” ƒ(x) ≠ π, ∑ ™' },
  { label: 'GB18030', iconv: 'gb18030', sample: '中文注释：读取配置文件并解析参数' },
  { label: 'BIG5', iconv: 'big5', sample: '繁體中文註解：讀取設定檔並解析參數' },
  { label: 'UHC', iconv: 'cp949', sample: '한국어 주석: 설정 파일을 읽습니다 (똠방각하)' },
  { label: 'IBM852', iconv: 'cp852', sample: 'Zażółć gęślą jaźń; Příliš žluťoučký kůň' },
  { label: 'windows-1250', iconv: 'windows-1250', sample: 'Příliš žluťoučký kůň úpěl ďábelské ódy' },
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
  readonly total_rows: number;
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
  /** Input files in generation order, with the sha256 of their full contents. */
  readonly files: { language: string; path: string; sha256: string }[];
  /** Rows whose text is generated (no input file), per language folder. */
  readonly generated: Record<string, number>;
}
