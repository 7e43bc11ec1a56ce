/**
 * Row planning: splits the chosen texts over each language's shards (generating Graphviz text
 * where files are short), then assigns, deterministically from hashed keys, the non-UTF-8
 * encodings, the undecodable rows, the blobs shared between rows, the missing blobs and the
 * corrupt gzip. Checks every encoding round-trips and every undecodable row really fails.
 */
import iconv from 'iconv-lite';
import { ROWS_PER_ENCODING, Rng, SAMPLE_ENCODINGS, TEXT_DECODER_LABELS } from '../sample-spec.js';
import type { InputText } from './inputs.js';
import { LANGUAGES, MAX_TEXT_BYTES, type LanguageSpec } from './languages.js';

/** What a row's blob looks like on the fake Software Heritage. */
type RowKind = 'ok' | 'missing' | 'corrupt_gzip' | 'undecodable' | 'shared';

/** A row before metadata: its text, encoding and stored bytes. */
export interface PlannedRow {
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
export function plan(inputs: InputText[]): PlannedRow[][] {
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
