/**
 * Writing the sample: the gzipped blobs of swh/content (including the one corrupt gzip), the
 * parquet shards under hf/data, and the three JSON files (manifest, expected defects, recorded
 * inputs), formatted with the repo's prettier config. Everything in a fixed order, so the output
 * is a pure function of the planned rows.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import * as prettier from 'prettier';
import {
  Rng,
  gzipDeterministic,
  sha1Hex,
  sha256Hex,
  shardFileName,
  type ExpectedDefects,
  type SampleInputs,
  type SampleManifest,
  type SampleRow,
  writeParquet,
} from '../sample-spec.js';
import type { InputText } from './inputs.js';
import { LANGUAGES } from './languages.js';
import type { PlannedRow } from './plan.js';

const FORMAT_VERSION = 1;

/** gzip header (no name, mtime 0, OS Unix) followed by bytes that are no valid deflate stream. */
function corruptGzip(blobId: string): Buffer {
  const rng = new Rng(`corrupt:${blobId}`);
  const garbage = Buffer.alloc(240);
  for (let i = 0; i < garbage.length; i++) garbage[i] = rng.int(0, 255);
  garbage[0] = 0xff; // BFINAL=1, BTYPE=11: a reserved block type, so inflate fails at once
  const gz = Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0x02, 0x03]), garbage]);
  let threw = false;
  try {
    gunzipSync(gz);
  } catch {
    threw = true;
  }
  if (!threw) throw new Error('Internal error: corrupt gzip inflated');
  return gz;
}

/** JSON formatted as the repo's prettier config would (so `format:check` passes), whatever `--out`. */
async function writeJson(path: string, value: unknown): Promise<void> {
  const repoFile = fileURLToPath(new URL('../../examples/sample/manifest.json', import.meta.url));
  const options = (await prettier.resolveConfig(repoFile)) ?? {};
  writeFileSync(path, await prettier.format(JSON.stringify(value), { ...options, filepath: path }));
}

/**
 * Writes the sample for the planned rows to `out`: swh/content blobs, one parquet per shard, and
 * manifest.json, expected-defects.json and inputs.json. Replaces `out/hf` and `out/swh`.
 */
export async function writeSample(
  out: string,
  inputs: readonly InputText[],
  files: readonly (readonly PlannedRow[])[],
): Promise<SampleManifest> {
  rmSync(join(out, 'hf'), { recursive: true, force: true });
  rmSync(join(out, 'swh'), { recursive: true, force: true });
  const contentDir = join(out, 'swh', 'content');
  mkdirSync(contentDir, { recursive: true });

  const defects: ExpectedDefects = { missing: [], corrupt_gzip: [], undecodable: [] };
  const blobs = new Map<string, Buffer>();
  const sharedRows = new Map<string, number>();
  const rowsPerFile: SampleRow[][] = files.map((rows) =>
    rows.map((r) => {
      const blobId = sha1Hex(r.bytes);
      if (r.kind === 'missing') defects.missing.push(blobId);
      else if (r.kind === 'corrupt_gzip') {
        defects.corrupt_gzip.push(blobId);
        blobs.set(blobId, corruptGzip(blobId));
      } else {
        if (r.kind === 'undecodable')
          defects.undecodable.push({ blob_id: blobId, src_encoding: r.encoding });
        if (r.kind === 'shared') sharedRows.set(blobId, (sharedRows.get(blobId) ?? 0) + 1);
        const gz = gzipDeterministic(r.bytes);
        if (!gunzipSync(gz).equals(r.bytes)) throw new Error('Internal error: gzip round trip');
        blobs.set(blobId, gz);
      }
      const lengthBytes = r.kind === 'undecodable' ? r.bytes.length : Buffer.byteLength(r.text);
      return {
        key: `${r.spec.folder}:${r.shard}:${r.index}`,
        blobId,
        language: r.spec.language,
        relPath: r.relPath,
        prefixes: r.spec.prefixes,
        encoding: r.encoding,
        lengthBytes,
      };
    }),
  );
  for (const id of [...blobs.keys()].sort())
    writeFileSync(join(contentDir, id), blobs.get(id) ?? Buffer.alloc(0));

  const manifest: SampleManifest = {
    version: FORMAT_VERSION,
    parquets: [],
    languages: {},
    total_rows: 0,
    encodings: {},
    blob_files: blobs.size,
    shared_blobs: [...sharedRows.entries()].sort().map(([blob_id, rows]) => ({ blob_id, rows })),
  };
  let f = 0;
  for (const spec of LANGUAGES) {
    for (let shard = 0; shard < spec.shards.length; shard++, f++) {
      const rows = rowsPerFile[f] ?? [];
      const rel = `hf/data/${spec.folder}/${shardFileName(shard, spec.shards.length)}`;
      mkdirSync(join(out, 'hf', 'data', spec.folder), { recursive: true });
      await writeParquet(join(out, rel), rows);
      const bytes = readFileSync(join(out, rel));
      manifest.parquets.push({
        path: rel,
        size: bytes.length,
        sha256: sha256Hex(bytes),
        rows: rows.length,
      });
      manifest.languages[spec.folder] = (manifest.languages[spec.folder] ?? 0) + rows.length;
      manifest.total_rows += rows.length;
      for (const r of rows)
        manifest.encodings[r.encoding] = (manifest.encodings[r.encoding] ?? 0) + 1;
    }
  }
  manifest.parquets.sort((a, b) => (a.path < b.path ? -1 : 1));
  defects.missing.sort();
  defects.corrupt_gzip.sort();
  defects.undecodable.sort((a, b) => (a.blob_id < b.blob_id ? -1 : 1));

  const inputsJson: SampleInputs = {
    version: FORMAT_VERSION,
    roots: Object.fromEntries(LANGUAGES.map((l) => [l.folder, [...l.roots]])),
    files: Object.fromEntries(
      LANGUAGES.map((l) => [
        l.folder,
        inputs
          .filter((i) => i.language === l.folder)
          .map((i) => `${sha256Hex(readFileSync(i.source))}  ${i.source}`),
      ]),
    ),
    generated: Object.fromEntries(
      LANGUAGES.filter((l) => l.generate).map((l) => [
        l.folder,
        l.shards.reduce((a, b) => a + b, 0) - inputs.filter((i) => i.language === l.folder).length,
      ]),
    ),
  };
  await writeJson(join(out, 'manifest.json'), manifest);
  await writeJson(join(out, 'expected-defects.json'), defects);
  await writeJson(join(out, 'inputs.json'), inputsJson);
  return manifest;
}
