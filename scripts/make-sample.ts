/**
 * Generates the bundled sample in `examples/sample` (see its README.md):
 *
 *   hf/data/<Language>/train-NNNNN-of-MMMMM.parquet   the-stack-v2's 26 columns, no content
 *   swh/content/<blob_id>                             gzip of the file bytes, as on Software Heritage
 *   manifest.json, expected-defects.json, inputs.json
 *
 * Usage:
 *   npx tsx scripts/make-sample.ts [--out <dir>] [--inputs <inputs.json>]
 *
 * The text of the rows is real source code read from the generating machine (system headers, the
 * Python stdlib, npm's JavaScript, shell scripts, Graphviz files); which files were used, and their
 * sha256, is recorded in inputs.json. With `--inputs` the generator skips the scan and reads exactly
 * those files, so the output is a pure function of the inputs: same bytes on every run (no clock,
 * seeded PRNG per row, fixed file order, single-threaded DuckDB).
 */
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import iconv from 'iconv-lite';
import * as prettier from 'prettier';
import {
  ROWS_PER_ENCODING,
  Rng,
  SAMPLE_ENCODINGS,
  TEXT_DECODER_LABELS,
  splitInputLine,
  gzipDeterministic,
  sha1Hex,
  sha256Hex,
  shardFileName,
  type ExpectedDefects,
  type SampleInputs,
  type SampleManifest,
  type SampleRow,
  writeParquet,
} from './sample-spec.js';

const FORMAT_VERSION = 1;
/** Max bytes of text per row; longer files are cut at the last line break before this. */
const MAX_TEXT_BYTES = 6144;

/** One language folder of the sample: where its text comes from and what goes wrong in it. */
interface LanguageSpec {
  /** Folder name under hf/data (the real dataset's spelling). */
  readonly folder: string;
  /** Value of the `language` column (spaces where the folder has underscores). */
  readonly language: string;
  /** Target rows per shard; the shard count is the array length. */
  readonly shards: readonly number[];
  /** Fewest input rows acceptable when scanning (below that the machine lacks files). */
  readonly minRows: number;
  /** Directories scanned, recursively (symlinks are not followed). */
  readonly roots: readonly string[];
  /** Cheap filter on the path (and, where needed, the first line). */
  readonly accept: (path: string, firstLine: () => string) => boolean;
  /** Filter on the prepared text. */
  readonly acceptText?: (text: string) => boolean;
  /** Deterministic text for rows the machine has no file for (Graphviz only). */
  readonly generate?: (rng: Rng, index: number) => string;
  /** Line-comment prefix, for the non-UTF-8 sample lines. */
  readonly comment: string;
  /** Repository-path prefixes the row paths are put under. */
  readonly prefixes: readonly string[];
  /** Rows per shard whose blob is left out of swh/content. Kept under 1% of the shard. */
  readonly missing: readonly number[];
}

const looksLikeCxx = /^\s*(namespace\s+\w*\s*\{|template\s*<|class\s+\w+\s*[:{])/m;
const shellShebang = /^#!\s*\S*\/(env\s+)?(ba|da|k|z)?sh\b/;

const LANGUAGES: readonly LanguageSpec[] = [
  {
    folder: 'C++',
    language: 'C++',
    shards: [370, 370],
    minRows: 600,
    roots: ['/usr/include'],
    accept: (p) => p.includes('/c++/') || /\.(hpp|hh|hxx|tcc)$/.test(p),
    comment: '//',
    prefixes: ['include/', 'src/', '', 'lib/'],
    missing: [2, 2],
  },
  {
    folder: 'C',
    language: 'C',
    shards: [850],
    minRows: 850,
    roots: ['/usr/include'],
    accept: (p) => p.endsWith('.h') && !p.includes('/c++/'),
    acceptText: (t) => !looksLikeCxx.test(t),
    comment: '//',
    prefixes: ['include/', 'src/', ''],
    missing: [3],
  },
  {
    folder: 'Python',
    language: 'Python',
    shards: [850],
    minRows: 850,
    roots: pythonRoots(),
    accept: (p) => p.endsWith('.py'),
    comment: '#',
    prefixes: ['', 'src/', 'lib/'],
    missing: [3],
  },
  {
    folder: 'Shell',
    language: 'Shell',
    shards: [200],
    minRows: 120,
    roots: ['/etc', '/usr/bin', '/usr/lib', '/usr/sbin', '/usr/share'],
    accept: (p, firstLine) =>
      p.endsWith('.sh') || (/^\/usr\/s?bin\//.test(p) && shellShebang.test(firstLine())),
    comment: '#',
    prefixes: ['scripts/', 'bin/', ''],
    missing: [1],
  },
  {
    folder: 'JavaScript',
    language: 'JavaScript',
    shards: [260],
    minRows: 260,
    roots: ['/usr/lib/node_modules', '/usr/share/javascript'],
    accept: (p) => /\.(c|m)?js$/.test(p) && !p.endsWith('.min.js'),
    comment: '//',
    prefixes: ['', 'src/', 'lib/'],
    missing: [1],
  },
  {
    // A folder name with `(`, `)` and `_`; the machine has at most a few .dot files, so most
    // rows are generated graphs.
    folder: 'Graphviz_(DOT)',
    language: 'Graphviz (DOT)',
    shards: [150],
    minRows: 0,
    roots: ['/usr/share'],
    accept: (p) => /\.(dot|gv)$/.test(p),
    generate: generateDot,
    comment: '//',
    prefixes: ['docs/', 'graphs/', ''],
    missing: [1],
  },
];

function pythonRoots(): string[] {
  try {
    return readdirSync('/usr/lib')
      .filter((n) => /^python3(\.\d+)?$/.test(n))
      .sort()
      .map((n) => `/usr/lib/${n}`);
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------
// Input selection

/** A chosen input: the prepared text and where it came from. */
interface InputText {
  readonly language: string;
  /** Absolute path of the input file, or `generated:<folder>/<file name>`. */
  readonly source: string;
  /** Root the path is under ('' when generated). */
  readonly root: string;
  readonly text: string;
}

/** All regular files under `root`, sorted by path (code-unit order, no locale). */
function walk(root: string, cache: Map<string, string[]>): string[] {
  const hit = cache.get(root);
  if (hit) return hit;
  const out: string[] = [];
  const visit = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory()) visit(p);
      else if (e.isFile()) out.push(p);
    }
  };
  visit(root);
  out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  cache.set(root, out);
  return out;
}

function readHead(path: string, bytes: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    const n = readSync(fd, buf, 0, bytes, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/**
 * The text a row carries for a file, from its first MAX_TEXT_BYTES + 1 bytes: at most
 * MAX_TEXT_BYTES, cut at a line break, valid UTF-8, no NUL byte, no BOM, not blank.
 * `undefined` when the file does not qualify.
 */
function prepareText(head: Buffer): string | undefined {
  let bytes = head;
  if (head.length > MAX_TEXT_BYTES) {
    const nl = head.lastIndexOf(0x0a, MAX_TEXT_BYTES - 1);
    if (nl < 0) return undefined;
    bytes = head.subarray(0, nl + 1);
  }
  if (bytes.includes(0)) return undefined;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return undefined;
  }
  if (text.startsWith('\uFEFF') || text.trim() === '') return undefined;
  return text;
}

/** Reads one byte past the limit, to know whether the file has to be cut. */
function prepareFile(path: string): string | undefined {
  return prepareText(readHead(path, MAX_TEXT_BYTES + 1));
}

function rootOf(spec: LanguageSpec, path: string): string {
  const root = spec.roots.find((r) => path.startsWith(`${r}/`));
  if (root === undefined)
    throw new Error(`input ${path} is under none of ${spec.roots.join(', ')}`);
  return root;
}

/** Scan the machine: per language, files sorted by path, picked evenly over the valid ones. */
function scanInputs(): InputText[] {
  const walkCache = new Map<string, string[]>();
  const seen = new Set<string>();
  const chosen: InputText[] = [];
  for (const spec of LANGUAGES) {
    const target = spec.shards.reduce((a, b) => a + b, 0);
    const valid: InputText[] = [];
    for (const root of spec.roots) {
      for (const path of walk(root, walkCache)) {
        const firstLine = (): string => readHead(path, 256).toString('latin1').split('\n')[0] ?? '';
        if (!spec.accept(path, firstLine)) continue;
        const text = prepareFile(path);
        if (text === undefined || (spec.acceptText && !spec.acceptText(text))) continue;
        const key = sha1Hex(Buffer.from(text));
        if (seen.has(key)) continue;
        seen.add(key);
        valid.push({ language: spec.folder, source: path, root, text });
      }
    }
    const picked =
      valid.length <= target
        ? valid
        : Array.from({ length: target }, (_, i) => valid[Math.floor((i * valid.length) / target)]);
    for (const p of picked) if (p) chosen.push(p);
    if (picked.length < spec.minRows) {
      throw new Error(
        `${spec.folder}: only ${picked.length} usable files under ${spec.roots.join(', ')}`,
      );
    }
    console.log(
      `${spec.folder}: ${picked.length} of ${valid.length} usable files from ${spec.roots.join(', ')}`,
    );
  }
  return chosen;
}

/** Re-read exactly the files recorded in inputs.json, checking their sha256. */
function recordedInputs(inputs: SampleInputs): InputText[] {
  return LANGUAGES.flatMap((spec) =>
    (inputs.files[spec.folder] ?? []).map((line) => {
      const [sha256, path] = splitInputLine(line);
      const sha = sha256Hex(readFileSync(path));
      if (sha !== sha256) throw new Error(`inputs.json: ${path} changed (sha256 ${sha})`);
      const text = prepareFile(path);
      if (text === undefined) throw new Error(`inputs.json: ${path} no longer qualifies`);
      return { language: spec.folder, source: path, root: rootOf(spec, path), text };
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Row planning

/** What a row's blob looks like on the fake Software Heritage. */
type RowKind = 'ok' | 'missing' | 'corrupt_gzip' | 'undecodable' | 'shared';

/** A row before metadata: its text, encoding and stored bytes. */
interface PlannedRow {
  readonly spec: LanguageSpec;
  readonly shard: number;
  readonly index: number;
  readonly source: string;
  readonly relPath: string;
  text: string;
  encoding: string;
  kind: RowKind;
  /** Bytes stored (gzipped) in swh/content; blob_id = sha1 of these. */
  bytes: Buffer;
}

function relPathOf(input: InputText): string {
  if (input.root === '') return input.source.slice(input.source.lastIndexOf('/') + 1);
  return input.source.slice(input.root.length + 1);
}

/** Insert a comment line: after a shebang if there is one, else first. Keeps ≤ MAX_TEXT_BYTES. */
function withComment(text: string, prefix: string, sample: string): string {
  const line = `${prefix} ${sample}\n`;
  const cut = text.startsWith('#!') ? text.indexOf('\n') + 1 : 0;
  let out = cut > 0 ? text.slice(0, cut) + line + text.slice(cut) : line + text;
  while (Buffer.byteLength(out) > MAX_TEXT_BYTES) {
    const nl = out.lastIndexOf('\n', out.length - 2);
    if (nl < 0) throw new Error('Internal error: cannot shorten text');
    out = out.slice(0, nl + 1);
  }
  return out;
}

const isAscii = (t: string): boolean => !/[^\t\n\r\x20-\x7e]/.test(t);

/** Deterministic probe: first row from a hashed start that is still plain UTF-8 and passes `pred`. */
function choose(rows: PlannedRow[], key: string, pred: (r: PlannedRow) => boolean): PlannedRow {
  const start = new Rng(key).int(0, rows.length - 1);
  for (let k = 0; k < rows.length; k++) {
    const r = rows[(start + k) % rows.length];
    if (r && r.kind === 'ok' && r.encoding === 'UTF-8' && pred(r)) return r;
  }
  throw new Error(`Internal error: no row left for ${key}`);
}

function assertRoundTrip(r: PlannedRow, iconvName: string): void {
  if (iconv.decode(r.bytes, iconvName) !== r.text) {
    throw new Error(`Internal error: ${r.encoding} round trip failed for ${r.source}`);
  }
  const td = TEXT_DECODER_LABELS[r.encoding];
  if (td !== undefined && new TextDecoder(td, { fatal: true }).decode(r.bytes) !== r.text) {
    throw new Error(`Internal error: TextDecoder(${td}) disagrees for ${r.source}`);
  }
}

/** Turn an ASCII row into a row of `label`, or return false if its text cannot be encoded. */
function encodeRow(r: PlannedRow, label: string): boolean {
  const enc = SAMPLE_ENCODINGS.find((e) => e.label === label);
  if (!enc) throw new Error(`Internal error: unknown encoding ${label}`);
  const text = withComment(r.text, r.spec.comment, enc.sample);
  const bytes = iconv.encode(text, enc.iconv);
  if (iconv.decode(bytes, enc.iconv) !== text) return false;
  r.text = text;
  r.encoding = label;
  r.bytes = bytes;
  assertRoundTrip(r, enc.iconv);
  return true;
}

function assertUndecodable(bytes: Buffer, label: string): void {
  const td = TEXT_DECODER_LABELS[label];
  if (td === undefined) throw new Error(`Internal error: no fatal decoder for ${label}`);
  let threw = false;
  try {
    new TextDecoder(td, { fatal: true }).decode(bytes);
  } catch {
    threw = true;
  }
  if (!threw) throw new Error(`Internal error: bytes meant to be undecodable decode as ${label}`);
}

/** The defects and the encodings, assigned to rows deterministically. */
function plan(inputs: InputText[]): PlannedRow[][] {
  const files: PlannedRow[][] = [];
  for (const spec of LANGUAGES) {
    const mine = inputs.filter((i) => i.language === spec.folder);
    const total = spec.shards.reduce((a, b) => a + b, 0);
    const texts: InputText[] = [...mine];
    for (let n = 0; spec.generate && texts.length < total; n++) {
      const text = spec.generate(new Rng(`generate:${spec.folder}:${n}`), n);
      texts.push({
        language: spec.folder,
        source: `generated:${spec.folder}/graph-${String(n).padStart(3, '0')}.dot`,
        root: '',
        text,
      });
    }
    // Split evenly over the shards (the targets only set the total when files are short).
    let at = 0;
    spec.shards.forEach((_, shard) => {
      const size = Math.floor((texts.length * (shard + 1)) / spec.shards.length) - at;
      files.push(
        texts.slice(at, at + size).map((t, index) => ({
          spec,
          shard,
          index,
          source: t.source,
          relPath: relPathOf(t),
          text: t.text,
          encoding: 'UTF-8',
          kind: 'ok',
          bytes: Buffer.from(t.text),
        })),
      );
      at += size;
    });
  }
  const fileAt = (folder: string, shard = 0): PlannedRow[] => {
    const i = LANGUAGES.findIndex((l) => l.folder === folder);
    const offset = LANGUAGES.slice(0, i).reduce((a, l) => a + l.shards.length, 0);
    const f = files[offset + shard];
    if (!f) throw new Error(`Internal error: no file ${folder}#${shard}`);
    return f;
  };

  // Non-UTF-8 encodings: ROWS_PER_ENCODING rows each, spread round-robin over the files.
  SAMPLE_ENCODINGS.forEach((enc, k) => {
    for (let j = 0; j < ROWS_PER_ENCODING; j++) {
      const rows = files[(k * ROWS_PER_ENCODING + j) % files.length] ?? [];
      const needsAscii = enc.iconv !== 'utf-16be' && enc.iconv !== 'utf-8';
      choose(
        rows,
        `encoding:${enc.label}:${j}`,
        (r) => (!needsAscii || isAscii(r.text)) && encodeRow(r, enc.label),
      );
    }
  });

  // Undecodable bytes: invalid UTF-8, an invalid Shift_JIS pair, a UTF-16 file cut mid-unit.
  const bad = (rows: PlannedRow[], label: string, make: (r: PlannedRow) => Buffer): void => {
    const r = choose(rows, `undecodable:${label}`, (x) => isAscii(x.text));
    r.bytes = make(r);
    r.encoding = label;
    r.kind = 'undecodable';
    assertUndecodable(r.bytes, label);
  };
  bad(fileAt('C'), 'UTF-8', (r) =>
    Buffer.concat([Buffer.from(`// caf\u00c3( na\u00efve \u00ff\n`, 'latin1'), r.bytes]),
  );
  bad(fileAt('C++', 1), 'Shift_JIS', (r) =>
    Buffer.concat([
      iconv.encode('// 文字化け: ', 'shift_jis'),
      Buffer.from([0x81, 0x20, 0x0a]),
      iconv.encode(r.text, 'shift_jis'),
    ]),
  );
  bad(fileAt('JavaScript'), 'UTF-16', (r) => {
    const full = iconv.encode(r.text, 'utf-16be');
    return full.subarray(0, full.length - 1);
  });

  // The same blob in two repositories (not a defect; the real dataset is not deduplicated).
  const share = (from: PlannedRow[], to: PlannedRow[], n: number): void => {
    for (let j = 0; j < n; j++) {
      const src = choose(from, `shared-src:${to[0]?.spec.folder}:${j}`, () => true);
      const dst = choose(to, `shared-dst:${to[0]?.spec.folder}:${j}`, (r) => r !== src);
      src.kind = 'shared';
      dst.kind = 'shared';
      dst.text = src.text;
      dst.bytes = src.bytes;
    }
  };
  share(fileAt('C++', 0), fileAt('C++', 1), 2);
  share(fileAt('Python'), fileAt('Python'), 2);

  // Missing blobs (SWH 404s) and one corrupt gzip.
  for (const spec of LANGUAGES) {
    spec.missing.forEach((n, shard) => {
      for (let j = 0; j < n; j++) {
        choose(
          fileAt(spec.folder, shard),
          `missing:${spec.folder}:${shard}:${j}`,
          () => true,
        ).kind = 'missing';
      }
    });
  }
  choose(fileAt('Python'), 'corrupt', () => true).kind = 'corrupt_gzip';
  return files;
}

// ---------------------------------------------------------------------------------------------
// Output

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
  const repoFile = fileURLToPath(new URL('../examples/sample/manifest.json', import.meta.url));
  const options = (await prettier.resolveConfig(repoFile)) ?? {};
  writeFileSync(path, await prettier.format(JSON.stringify(value), { ...options, filepath: path }));
}

async function main(): Promise<void> {
  const started = performance.now();
  const { values } = parseArgs({
    options: { out: { type: 'string', default: 'examples/sample' }, inputs: { type: 'string' } },
  });
  const out = resolve(values.out);
  const recorded = values.inputs
    ? (JSON.parse(readFileSync(values.inputs, 'utf8')) as SampleInputs)
    : undefined;
  const inputs = recorded ? recordedInputs(recorded) : scanInputs();
  const files = plan(inputs);

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

  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `wrote ${manifest.total_rows} rows in ${manifest.parquets.length} parquets and ${blobs.size} blobs to ${out} in ${seconds}s`,
  );
}

// ---------------------------------------------------------------------------------------------
// Graphviz text for the rows the machine has no .dot file for.

const DOT_WORDS =
  'parser lexer cache config server client router store queue worker scheduler logger auth session db index planner executor loader api'.split(
    ' ',
  );

function generateDot(rng: Rng, index: number): string {
  const directed = rng.float() < 0.8;
  const arrow = directed ? '->' : '--';
  const nodes = Array.from({ length: rng.int(3, 12) }, (_, i) => `${rng.pick(DOT_WORDS)}_${i}`);
  const lines = [
    `${directed ? 'digraph' : 'graph'} ${rng.pick(DOT_WORDS)}_${index} {`,
    `  rankdir=${rng.pick(['LR', 'TB'])};`,
    `  node [shape=${rng.pick(['box', 'ellipse', 'record', 'circle'])}, fontname="Helvetica"];`,
  ];
  for (const n of nodes) lines.push(`  ${n} [label="${n.replace('_', ' ')}"];`);
  const edges = rng.int(nodes.length, nodes.length * 3);
  for (let e = 0; e < edges; e++) {
    const a = rng.pick(nodes);
    const b = rng.pick(nodes);
    const attrs =
      rng.float() < 0.4 ? ` [label="${rng.pick(['calls', 'reads', 'writes', 'owns'])}"]` : '';
    lines.push(`  ${a} ${arrow} ${b}${attrs};`);
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}

await main();
