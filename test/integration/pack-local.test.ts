/**
 * pack on a local content store (file://): the line workers read the blob files themselves, and
 * a blob they cannot read is fetched the usual way. One parquet of the sample, packed with the
 * fast path and without it (every blob through `fetch`, as on S3), must give the same bytes, the
 * same counts and the same errors sidecar, including when
 *   - a blob lives as `<id>/\object` (its key is also a directory prefix in the store),
 *   - blobs are missing (recorded as `missing`, never as a read failure),
 *   - the path hint is wrong (a hint, not a guarantee),
 *   - a batch holds more gzip bytes than a worker reads per request (it is sent in pieces).
 */
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withDuckDB } from '../../lib/io/duckdb.js';
import { FsStore } from '../../lib/io/stores/fs-store.js';
import { makeShell } from '../../lib/io/process/shell.js';
import { objectKey } from '../../lib/model.js';
import type { FetchBlob, LocalFile } from '../../tasks/pack/fetchers.js';
import { makeFetcher } from '../../tasks/pack/fetchers.js';
import { packParams } from '../../tasks/pack/run.js';
import type { PackStageParams } from '../../tasks/pack/index.js';
import { paramDefaults } from '../../lib/config/parse.js';
import type { PartCounts, RowError } from '../../tasks/pack/part.js';
import { packPart } from '../../tasks/pack/part.js';
import { SAMPLE } from '../helpers/rig.js';
import { loadDefects, parquetRows } from './verify.js';

const PARQUET = join(SAMPLE, 'hf/data/C/train-00000-of-00001.parquet');
const missing = new Set(loadDefects(SAMPLE).missing);

interface Packed {
  bytes: Buffer;
  counts: PartCounts;
  errors: RowError[];
  /** Blob ids that went through `fetch`. */
  fetched: string[];
}

describe('pack on a local content store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pack-local-'));
  const content = join(dir, 'content');
  const store = new FsStore(content);
  let rows: Record<string, unknown>[] = [];
  let moved = '';
  beforeAll(async () => {
    cpSync(join(SAMPLE, 'swh/content'), content, { recursive: true });
    rows = await parquetRows(PARQUET);
    // A present blob whose key becomes a directory prefix too: the store moves it to `<id>/\object`.
    moved = rows.map((r) => String(r.blob_id)).find((id) => !missing.has(id)) ?? '';
    const put = await store.put(objectKey(`${moved}/other`), Buffer.from('x'));
    expect(put.ok).toBe(true);
    expect(existsSync(join(content, moved, '\\object'))).toBe(true);
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  async function pack(
    name: string,
    localFile: (f: LocalFile) => LocalFile | undefined,
    parquet = PARQUET,
    to = rows.length,
  ) {
    const signal = new AbortController().signal;
    const params = packParams({
      ...(paramDefaults('pack') as PackStageParams),
      rows_per_part: 1_000_000,
      max_missing_rate: 1,
    });
    const f = makeFetcher(params, {
      $: makeShell({ cwd: dir, env: {}, signal }),
      scratch: dir,
      signal,
      content: store,
      pipeline: { dir, contentSource: `file://${content}`, s3: {} },
    });
    if (!f.ok) throw new Error(f.error.message);
    return withDuckDB(async (conn): Promise<Packed> => {
      const opened = await f.value.open({ conn, parquet, part: 0, from: 0, to });
      if (!opened.ok) throw new Error(opened.error.message);
      const hint = opened.value.localFile;
      if (hint === undefined) throw new Error('the sdk fetcher gives no path on a file:// store');
      const fetched: string[] = [];
      const fetch: FetchBlob = (id) => {
        fetched.push(id);
        return opened.value.fetch(id);
      };
      const outPath = join(dir, `${name}.jsonl.zst`);
      const r = await packPart({
        conn,
        contentKey: JSON.stringify(params.contentField),
        parquet,
        from: 0,
        to,
        fetch,
        localFile: localFile(hint),
        params,
        outPath,
        signal,
        onRows: () => undefined,
      });
      if (!r.ok) throw new Error(r.error.message);
      return { bytes: readFileSync(outPath), ...r.value, fetched };
    });
  }

  it('writes the same part through the workers’ reads as through fetch', async () => {
    const viaFetch = await pack('fetch', () => undefined);
    const viaFiles = await pack('files', (hint) => hint);
    expect(viaFetch.fetched).toHaveLength(rows.length);
    // Only what the workers could not read came back to fetch: the missing blobs and `\object`.
    const inPart = rows.map((r) => String(r.blob_id)).filter((id) => missing.has(id));
    expect(inPart.length).toBeGreaterThan(0);
    expect(viaFiles.fetched.sort()).toEqual([...inPart, moved].sort());
    expect(viaFiles.errors.filter((e) => e.reason === 'missing').map((e) => e.blob_id)).toEqual(
      inPart,
    );
    expect(viaFiles.errors.some((e) => e.blob_id === moved)).toBe(false);
    expect(viaFiles.counts).toEqual(viaFetch.counts);
    expect(viaFiles.counts.missing).toBe(inPart.length);
    expect(viaFiles.errors).toEqual(viaFetch.errors);
    expect(viaFiles.bytes.equals(viaFetch.bytes)).toBe(true);
  });

  it('falls back to fetch when the path hint is wrong', async () => {
    const viaFetch = await pack('fetch', () => undefined);
    let n = 0;
    const wrong = await pack(
      'wrong',
      (hint) => (id) => (n++ % 2 === 0 ? join(dir, 'nowhere', id) : hint(id)),
    );
    expect(wrong.fetched.length).toBeGreaterThan(rows.length / 2 - 1);
    expect(wrong.counts).toEqual(viaFetch.counts);
    expect(wrong.errors).toEqual(viaFetch.errors);
    expect(wrong.bytes.equals(viaFetch.bytes)).toBe(true);
  });

  it('reads a batch of large blobs in pieces, with the same bytes', async () => {
    // 12 blobs of ~0.75 MB of gzip each: a 256-row batch holding them is read in three requests.
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const id = randomBytes(20).toString('hex');
      ids.push(id);
      if (i === 5) continue; // missing, in the middle of a piece
      writeFileSync(join(content, id), gzipSync(randomBytes(768 << 10).toString('base64')));
    }
    const big = join(dir, 'big.parquet');
    await withDuckDB(async (conn) => {
      const values = ids.map((id, i) => `('${id}', 'UTF-8', ${i})`).join(', ');
      await conn.run(
        `COPY (SELECT * FROM (VALUES ${values}) t(blob_id, src_encoding, n)) TO '${big}' (FORMAT parquet)`,
      );
    });
    const viaFetch = await pack('big-fetch', () => undefined, big, ids.length);
    const viaFiles = await pack('big-files', (hint) => hint, big, ids.length);
    expect(viaFiles.fetched).toEqual([ids[5]]);
    expect(viaFiles.counts).toMatchObject({ rows: 12, written: 11, missing: 1 });
    expect(viaFiles.counts).toEqual(viaFetch.counts);
    expect(viaFiles.errors).toEqual(viaFetch.errors);
    expect(viaFiles.bytes.equals(viaFetch.bytes)).toBe(true);
  });
});
