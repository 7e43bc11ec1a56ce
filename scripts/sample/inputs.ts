/**
 * Input selection: which real source files of the generating machine become the sample's row
 * texts. Either scans the language roots (files sorted by path, picked evenly over those that
 * qualify) or re-reads exactly the files recorded in inputs.json, checking their sha256. Also how
 * a file's text is prepared (cut at a line break to MAX_TEXT_BYTES, valid UTF-8, no NUL or BOM).
 */
import { closeSync, openSync, readFileSync, readSync, readdirSync } from 'node:fs';
import { sha1Hex, sha256Hex, splitInputLine, type SampleInputs } from '../sample-spec.js';
import { LANGUAGES, MAX_TEXT_BYTES, type LanguageSpec } from './languages.js';

/** A chosen input: the prepared text and where it came from. */
export interface InputText {
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
export function scanInputs(): InputText[] {
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
export function recordedInputs(inputs: SampleInputs): InputText[] {
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
