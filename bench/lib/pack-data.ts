/**
 * Inputs for bench/pack.ts: a the-stack-v2-shaped parquet whose contents have realistic sizes and
 * compressibility, plus its gzipped blobs on local disk.
 *
 * Why not scripts/make-big-parquet.ts: its blobs are ~20 KB on average (u^2 of 60 KB; median
 * ~15 KB) and are made of 512 fixed lines, so zstd compresses them ~8x and the blob pool is small
 * enough to repeat inside a part. A throughput comparison with the zstd CLI on such bytes would
 * time zstd's match finder on an easy input, not on code. Here:
 *
 * - sizes are log-normal with a median of 4 KiB and sigma 1.3 (mean ~9.5 KiB, p99 ~85 KiB), capped
 *   at 1 MiB: the shape of source files in the-stack-v2 (many small files, a long tail);
 * - each blob has its own identifiers and string literals, lines repeat within a file now and
 *   then, and no two rows share a blob, so zstd -3 compresses the JSONL ~3-4x, like real code;
 * - the metadata columns vary per row as the real ones do (paths and repo names of real lengths).
 *
 * Layout under `<dir>` (bench/data/ is gitignored):
 *
 *   swh/content/<blob_id>                           the gzipped blobs (shared by both sizes)
 *   hf-<rows>/data/Big/train-00000-of-00001.parquet one parquet per row count
 *   manifest-<rows>.json                            what was written
 *
 * A parquet of n rows uses blobs 0..n-1, so the small input is a prefix of the big one and their
 * blobs are written once. Everything is deterministic (seeded per blob).
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import {
  Rng,
  generatedColumnsSql,
  gzipDeterministic,
  sha1Hex,
  shardFileName,
  sqlString,
} from '../../scripts/sample-spec.js';

const KEYWORDS = [
  'const',
  'let',
  'return',
  'if',
  'else',
  'for',
  'while',
  'function',
  'import',
  'export',
  'class',
  'new',
  'await',
  'async',
  'this',
  'null',
  'true',
  'false',
  'static',
  'public',
  'private',
  'int',
  'void',
  'def',
  'self',
];
const PUNCT = [' = ', '(', ')', ', ', '.', ' + ', ' - ', ' * ', ' && ', ' || ', ' == ', '[', ']'];
const SYLLABLES = 'ka to ri mu se la po ne vi da go ze xu fi ba re chi str buf len idx val'.split(
  ' ',
);
const WORDS =
  'the value of this is used when a request fails and we need to retry after some delay unless ' +
  'configured otherwise return an error with the reason so callers can decide what to do next';
const WORD_LIST = WORDS.split(' ');

/** Content size in bytes: log-normal, median 4 KiB, sigma 1.3, between 16 B and 1 MiB. */
function contentSize(rng: Rng): number {
  // Box-Muller on two uniforms (1 - u keeps log() away from 0).
  const z = Math.sqrt(-2 * Math.log(1 - rng.float())) * Math.cos(2 * Math.PI * rng.float());
  return Math.min(1 << 20, Math.max(16, Math.round(4096 * Math.exp(1.3 * z))));
}

function identifier(rng: Rng): string {
  const n = rng.int(2, 4);
  let s = '';
  for (let i = 0; i < n; i++) s += rng.pick(SYLLABLES);
  return rng.int(0, 3) === 0 ? `${s}_${rng.int(0, 99)}` : s;
}

/** Source-like text of about `size` bytes, with its own vocabulary. */
export function blobText(i: number): string {
  const rng = new Rng(`pack-bench:${i}`);
  const size = contentSize(rng);
  const idents = Array.from({ length: rng.int(12, 40) }, () => identifier(rng));
  const recent: string[] = [];
  const lines: string[] = [];
  let bytes = 0;
  while (bytes < size) {
    let line: string;
    if (recent.length > 0 && rng.int(0, 9) === 0) {
      line = rng.pick(recent);
    } else {
      let s = ' '.repeat(rng.int(0, 4) * 2);
      const tokens = rng.int(3, 12);
      for (let t = 0; t < tokens; t++) {
        const k = rng.int(0, 9);
        if (k < 4) s += rng.pick(idents);
        else if (k < 6) s += rng.pick(KEYWORDS) + ' ';
        else if (k < 8) s += rng.pick(PUNCT);
        else if (k < 9) s += String(rng.int(0, 65_535));
        else {
          const w = rng.int(1, 5);
          const words: string[] = [];
          for (let j = 0; j < w; j++) words.push(rng.pick(WORD_LIST));
          s += `"${words.join(' ')}"`;
        }
      }
      line = s + (rng.int(0, 2) === 0 ? ';' : rng.int(0, 1) === 0 ? ' {' : '');
      recent.push(line);
      if (recent.length > 32) recent.shift();
    }
    lines.push(line);
    bytes += line.length + 1;
  }
  return lines.join('\n') + '\n';
}

/** What `ensurePackData` wrote for one row count. */
export interface PackDataManifest {
  rows: number;
  /** Pipeline-relative dataset source dir (`hf-<rows>`). */
  hfDir: string;
  parquetBytes: number;
  /** Sum of the blobs' decoded sizes. */
  contentBytes: number;
  /** Median and 99th percentile of the blobs' decoded sizes. */
  contentMedian: number;
  contentP99: number;
}

/**
 * Writes (once) the blobs 0..max(rows)-1 and one parquet per row count under `dir`; returns the
 * manifests. Existing outputs are reused: everything is a function of the row count.
 */
export async function ensurePackData(
  dir: string,
  rowCounts: readonly number[],
  log: (line: string) => void,
): Promise<PackDataManifest[]> {
  const out: PackDataManifest[] = [];
  const contentDir = join(dir, 'swh', 'content');
  mkdirSync(contentDir, { recursive: true });
  for (const rows of rowCounts) {
    const manifestPath = join(dir, `manifest-${rows}.json`);
    if (existsSync(manifestPath)) {
      out.push(JSON.parse(readFileSync(manifestPath, 'utf8')) as PackDataManifest);
      continue;
    }
    const t0 = performance.now();
    const instance = await DuckDBInstance.create(':memory:');
    const conn = await instance.connect();
    try {
      await conn.run(`CREATE TABLE pool (i BIGINT, blob_id VARCHAR, length_bytes BIGINT)`);
      const appender = await conn.createAppender('pool');
      const sizes: number[] = [];
      for (let i = 0; i < rows; i++) {
        const bytes = Buffer.from(blobText(i));
        const blobId = sha1Hex(bytes);
        const path = join(contentDir, blobId);
        if (!existsSync(path)) writeFileSync(path, gzipDeterministic(bytes, 6));
        sizes.push(bytes.length);
        appender.appendBigInt(BigInt(i));
        appender.appendVarchar(blobId);
        appender.appendBigInt(BigInt(bytes.length));
        appender.endRow();
      }
      appender.flushSync();
      appender.closeSync();
      const parquetDir = join(dir, `hf-${rows}`, 'data', 'Big');
      mkdirSync(parquetDir, { recursive: true });
      const parquet = join(parquetDir, shardFileName(0, 1));
      await conn.run(
        `COPY (SELECT ${selectList()} FROM range(${rows}) r JOIN pool p ON p.i = r.range ORDER BY r.range)
         TO ${sqlString(parquet)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)`,
      );
      const sorted = [...sizes].sort((a, b) => a - b);
      const m: PackDataManifest = {
        rows,
        hfDir: `hf-${rows}`,
        parquetBytes: statSync(parquet).size,
        contentBytes: sizes.reduce((a, b) => a + b, 0),
        contentMedian: sorted[Math.floor(sorted.length / 2)] ?? 0,
        contentP99: sorted[Math.floor(sorted.length * 0.99)] ?? 0,
      };
      writeFileSync(manifestPath, JSON.stringify(m, null, 2) + '\n');
      log(
        `generated ${rows} rows (${(m.contentBytes / 1e6).toFixed(0)} MB of content, median ${m.contentMedian} B) in ${((performance.now() - t0) / 1000).toFixed(1)}s`,
      );
      out.push(m);
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
  }
  return out;
}

/** The 26 columns (sample-spec.ts), with paths and repos as long as real ones. */
function selectList(): string {
  return generatedColumnsSql({
    // Real paths are ~40-80 chars with several directory levels.
    path: `'/src/' || substr(sha256('d' || (r.range % 811)), 1, 6) || '/components/module_' || (r.range % 997) || '/' || substr(sha256('f' || r.range), 1, 10) || '_handler.js'`,
    repo_name: `'org-' || substr(sha256('o' || (r.range % 5003)), 1, 8) || '/project-' || substr(sha256('p' || (r.range % 7919)), 1, 12)`,
    github_id: '(1000 + r.range * 7)::BIGINT',
  });
}
