/**
 * The bundled sample (examples/sample) is what the rest of the test suite packs, so its promises
 * are checked here: the exact the-stack-v2 schema, the HF layout, blobs that match their ids, the
 * encodings, and exactly the defects listed in expected-defects.json. The last test regenerates it
 * from the recorded inputs and compares every byte.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ROWS_PER_ENCODING,
  SAMPLE_ENCODINGS,
  STACK_V2_SCHEMA,
  TEXT_DECODER_LABELS,
  iconvNameFor,
  sha1Hex,
  sha256Hex,
  splitInputLine,
  sqlString,
  type ExpectedDefects,
  type SampleInputs,
  type SampleManifest,
} from '../../scripts/sample-spec.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const SAMPLE = join(REPO, 'examples', 'sample');
const CONTENT = join(SAMPLE, 'swh', 'content');
const MAX_TEXT_BYTES = 6144;
const GENERATED_JSON = ['expected-defects.json', 'inputs.json', 'manifest.json'];

const readJson = (name: string): unknown => JSON.parse(readFileSync(join(SAMPLE, name), 'utf8'));
const manifest = readJson('manifest.json') as SampleManifest;
const defects = readJson('expected-defects.json') as ExpectedDefects;
const inputs = readJson('inputs.json') as SampleInputs;

/** Every file under `dir`, as paths relative to `base`, sorted. */
function listFiles(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p, base));
    else out.push(relative(base, p));
  }
  return out.sort();
}

const parquets = listFiles(join(SAMPLE, 'hf')).map((p) => `hf/${p}`);

interface Row {
  file: string;
  blob_id: string;
  path: string;
  src_encoding: string;
  language: string;
  length_bytes: number;
  extension: string;
}

let instance: DuckDBInstance;
let conn: DuckDBConnection;
let rows: Row[] = [];

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const reader = await conn.runAndReadAll(sql);
  return reader.getRowObjectsJS();
}

const fileList = (): string => `[${parquets.map((p) => sqlString(join(SAMPLE, p))).join(', ')}]`;

beforeAll(async () => {
  instance = await DuckDBInstance.create(':memory:');
  conn = await instance.connect();
  const raw = await query(
    `SELECT filename, blob_id, path, src_encoding, language, length_bytes, extension
     FROM read_parquet(${fileList()}, filename = true)`,
  );
  rows = raw.map((r) => ({
    file: relative(SAMPLE, String(r.filename)),
    blob_id: String(r.blob_id),
    path: String(r.path),
    src_encoding: String(r.src_encoding),
    language: String(r.language),
    length_bytes: Number(r.length_bytes),
    extension: String(r.extension),
  }));
});

afterAll(() => {
  conn.closeSync();
  instance.closeSync();
});

describe('examples/sample parquets', () => {
  it('have exactly the 26 the-stack-v2 columns, in order, with the exact types', async () => {
    expect(parquets.length).toBeGreaterThan(0);
    for (const p of parquets) {
      const cols = await query(
        `DESCRIBE SELECT * FROM read_parquet(${sqlString(join(SAMPLE, p))})`,
      );
      expect(
        cols.map((c) => `${String(c.column_name)} ${String(c.column_type)}`),
        p,
      ).toEqual(STACK_V2_SCHEMA.map((c) => `${c.name} ${c.type}`));
    }
  });

  it('follow the HF layout: data/<Language>/train-NNNNN-of-MMMMM.parquet, shards complete', () => {
    const byFolder = new Map<string, string[]>();
    for (const p of parquets) {
      const m = /^hf\/data\/([^/]+)\/train-(\d{5})-of-(\d{5})\.parquet$/.exec(p);
      expect(m, p).not.toBeNull();
      const folder = m?.[1] ?? '';
      byFolder.set(folder, [...(byFolder.get(folder) ?? []), p]);
    }
    for (const [folder, files] of byFolder) {
      const total = files.length;
      expect(files.map((f) => f.split('/').pop())).toEqual(
        files.map(
          (_, i) =>
            `train-${String(i).padStart(5, '0')}-of-${String(total).padStart(5, '0')}.parquet`,
        ),
      );
      expect(folder).not.toMatch(/[\\/]|^\.\.?$/);
    }
    expect(byFolder.get('C++')).toHaveLength(2);
    expect([...byFolder.keys()].some((f) => /[().]/.test(f))).toBe(true);
    for (const lang of ['C++', 'C', 'Python']) expect(byFolder.has(lang), lang).toBe(true);
  });

  it('hold at least 3,000 rows, as manifest.json says', () => {
    expect(rows.length).toBeGreaterThanOrEqual(3000);
    expect(manifest.total_rows).toBe(rows.length);
    expect(manifest.parquets.map((p) => p.path)).toEqual(parquets);
    for (const entry of manifest.parquets) {
      const bytes = readFileSync(join(SAMPLE, entry.path));
      expect(bytes.length, entry.path).toBe(entry.size);
      expect(sha256Hex(bytes), entry.path).toBe(entry.sha256);
      expect(rows.filter((r) => r.file === entry.path).length, entry.path).toBe(entry.rows);
    }
    const perLanguage: Record<string, number> = {};
    for (const r of rows) {
      const folder = r.file.split('/')[2] ?? '';
      perLanguage[folder] = (perLanguage[folder] ?? 0) + 1;
    }
    expect(perLanguage).toEqual(manifest.languages);
    const perEncoding: Record<string, number> = {};
    for (const r of rows) perEncoding[r.src_encoding] = (perEncoding[r.src_encoding] ?? 0) + 1;
    expect(perEncoding).toEqual(manifest.encodings);
  });

  it('have several row groups, nulls only in gha_* columns, and sub-microsecond timestamps', async () => {
    const groups = await query(
      `SELECT file_name, count(DISTINCT row_group_id) AS n, max(row_group_num_rows) AS largest
       FROM parquet_metadata(${fileList()}) GROUP BY file_name`,
    );
    expect(groups.some((g) => Number(g.n) > 1)).toBe(true);
    for (const g of groups) expect(Number(g.largest)).toBeLessThanOrEqual(256);

    const nullCounts = await query(
      `SELECT ${STACK_V2_SCHEMA.map((c) => `count(*) FILTER (WHERE ${c.name} IS NULL) AS ${c.name}`).join(', ')}
       FROM read_parquet(${fileList()})`,
    );
    for (const c of STACK_V2_SCHEMA) {
      const n = Number(nullCounts[0]?.[c.name]);
      if (c.nullable) expect(n, c.name).toBeGreaterThan(0);
      else expect(n, c.name).toBe(0);
    }
    const [ts] = await query(
      `SELECT count(*) FILTER (WHERE epoch_ns(visit_date) % 1000 <> 0) AS sub_us,
              min(committer_date) >= TIMESTAMP '2015-01-01' AND max(visit_date) < TIMESTAMP '2024-01-01' AS in_range,
              count(*) FILTER (WHERE license_type NOT IN ('permissive', 'no_license')) AS bad_license_type,
              count(*) FILTER (WHERE (len(detected_licenses) = 0) <> (license_type = 'no_license')) AS license_mismatch
       FROM read_parquet(${fileList()})`,
    );
    expect(Number(ts?.sub_us)).toBeGreaterThan(0);
    expect(ts?.in_range).toBe(true);
    expect(Number(ts?.bad_license_type)).toBe(0);
    expect(Number(ts?.license_mismatch)).toBe(0);
  });

  it('have an extension that matches the path, and paths inside the repository', () => {
    for (const r of rows) {
      const base = r.path.slice(r.path.lastIndexOf('/') + 1);
      const ext = base.lastIndexOf('.') > 0 ? base.slice(base.lastIndexOf('.') + 1) : '';
      expect(r.extension, r.path).toBe(ext);
      expect(r.path.startsWith('/') && !r.path.split('/').includes('..'), r.path).toBe(true);
    }
  });
});

describe('examples/sample swh/content', () => {
  const missing = new Set(defects.missing);
  const corrupt = new Set(defects.corrupt_gzip);
  const undecodable = new Map(defects.undecodable.map((u) => [u.blob_id, u.src_encoding]));

  it('lists the intended defects, spread over the files, each below 1% missing', () => {
    expect(defects.missing.length).toBeGreaterThanOrEqual(12);
    expect(defects.corrupt_gzip).toHaveLength(1);
    expect(defects.undecodable.length).toBeGreaterThanOrEqual(2);
    const labels = defects.undecodable.map((u) => u.src_encoding);
    expect(labels).toContain('UTF-8');
    expect(labels).toContain('Shift_JIS');
    const ids = new Set(rows.map((r) => r.blob_id));
    for (const id of [...missing, ...corrupt, ...undecodable.keys()])
      expect(ids.has(id), id).toBe(true);
    for (const p of parquets) {
      const inFile = rows.filter((r) => r.file === p);
      const gone = inFile.filter((r) => missing.has(r.blob_id)).length;
      expect(gone / inFile.length, p).toBeLessThan(0.01);
    }
    const languages = new Set(rows.filter((r) => missing.has(r.blob_id)).map((r) => r.language));
    expect(languages.size).toBeGreaterThanOrEqual(4);
  });

  it('has a blob for every row but the missing ones, and no other files', () => {
    const files = new Set(readdirSync(CONTENT));
    for (const r of rows) expect(files.has(r.blob_id), r.blob_id).toBe(!missing.has(r.blob_id));
    const referenced = new Set(rows.map((r) => r.blob_id));
    for (const f of files) expect(referenced.has(f), f).toBe(true);
    expect(files.size).toBe(manifest.blob_files);
  });

  it('gunzips every blob but the corrupt one, to bytes whose sha1 is the blob_id', () => {
    for (const id of readdirSync(CONTENT)) {
      const gz = readFileSync(join(CONTENT, id));
      expect(gz.subarray(0, 3).toString('hex'), id).toBe('1f8b08');
      if (corrupt.has(id)) {
        expect(() => gunzipSync(gz), id).toThrow();
        continue;
      }
      expect(sha1Hex(gunzipSync(gz)), id).toBe(id);
    }
  });

  it('decodes every good blob in its src_encoding, to length_bytes UTF-8 bytes', () => {
    for (const r of rows) {
      if (missing.has(r.blob_id) || corrupt.has(r.blob_id)) continue;
      const bytes = gunzipSync(readFileSync(join(CONTENT, r.blob_id)));
      const label = TEXT_DECODER_LABELS[r.src_encoding];
      if (undecodable.has(r.blob_id)) {
        expect(undecodable.get(r.blob_id)).toBe(r.src_encoding);
        expect(label, r.src_encoding).toBeDefined();
        expect(() => new TextDecoder(label, { fatal: true }).decode(bytes), r.blob_id).toThrow();
        continue;
      }
      const text = iconv.decode(bytes, iconvNameFor(r.src_encoding));
      if (label !== undefined) {
        expect(new TextDecoder(label, { fatal: true }).decode(bytes), r.blob_id).toBe(text);
      }
      expect(Buffer.byteLength(text), r.blob_id).toBe(r.length_bytes);
      expect(r.length_bytes).toBeLessThanOrEqual(MAX_TEXT_BYTES);
      expect(iconv.encode(text, iconvNameFor(r.src_encoding)).equals(bytes), r.blob_id).toBe(true);
    }
  });

  it('covers every listed encoding with real non-ASCII text', () => {
    const undecodableIds = new Set(undecodable.keys());
    for (const enc of SAMPLE_ENCODINGS) {
      const good = rows.filter(
        (r) => r.src_encoding === enc.label && !undecodableIds.has(r.blob_id),
      );
      expect(good.length, enc.label).toBeGreaterThanOrEqual(Math.min(5, ROWS_PER_ENCODING));
      for (const r of good.filter((x) => !missing.has(x.blob_id) && !corrupt.has(x.blob_id))) {
        const bytes = gunzipSync(readFileSync(join(CONTENT, r.blob_id)));
        expect(iconv.decode(bytes, enc.iconv), r.blob_id).toContain(enc.sample);
        if (enc.label !== 'UTF8')
          expect(bytes.equals(Buffer.from(enc.sample)), r.blob_id).toBe(false);
        if (enc.label === 'UTF-16') expect(bytes.subarray(0, 2).toString('hex')).not.toBe('feff');
      }
    }
  });
});

/** The determinism check needs the very files the sample was generated from. */
function inputsUnavailable(): string | false {
  for (const lines of Object.values(inputs.files)) {
    for (const line of lines) {
      const [sha256, path] = splitInputLine(line);
      if (!existsSync(path)) return `input ${path} is absent on this machine`;
      if (sha256Hex(readFileSync(path)) !== sha256) return `input ${path} differs on this machine`;
    }
  }
  return false;
}

describe('scripts/make-sample.ts', () => {
  const skipReason = inputsUnavailable();
  if (skipReason !== false) console.warn(`skipping the determinism test: ${skipReason}`);

  it.skipIf(skipReason !== false)(
    'regenerates the committed sample byte for byte from inputs.json',
    () => {
      const out = mkdtempSync(join(tmpdir(), 'stackflow-sample-'));
      try {
        execFileSync(
          join(REPO, 'node_modules', '.bin', 'tsx'),
          ['scripts/make-sample.ts', '--out', out, '--inputs', join(SAMPLE, 'inputs.json')],
          { cwd: REPO, stdio: 'pipe' },
        );
        const generated = listFiles(out);
        // Other files in examples/sample (README.md, pipeline.yaml, ...) are not generated.
        const committed = listFiles(SAMPLE).filter(
          (f) => /^(hf|swh)\//.test(f) || GENERATED_JSON.includes(f),
        );
        expect(generated).toEqual(committed);
        for (const f of generated) {
          expect(sha256Hex(readFileSync(join(out, f))), f).toBe(
            sha256Hex(readFileSync(join(SAMPLE, f))),
          );
        }
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    },
    180_000,
  );
});
