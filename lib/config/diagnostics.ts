/**
 * Where a config problem is, and how it prints.
 *
 * Owns: `Locator` (a YAML path or a source range -> `Location`), `sortDiagnostics` and
 * `renderDiagnostics`. Pure: the source text comes in as a string.
 *
 * Rendered shape (asserted verbatim by test/fixtures/pipelines/bad/*.expected.txt):
 *
 *     ❌ pipeline.yaml:5:11 unknown task kind "pakc" (…)
 *         kind: pakc
 *               ~~~~
 *         pipeline.yaml:9:3 a supplemental location
 *             b:
 *             ~
 */
import { isAlias, isCollection, isMap, isScalar, isSeq } from 'yaml';
import type { Document, LineCounter, Node } from 'yaml';
import type { Diagnostic, Location } from '../errors.js';

/** One step of a path into the parsed document: a mapping key or a list index. */
export type PathSegment = string | number;

/** What a walk down a path reached. */
interface Reached {
  /** True when every segment of the path exists. */
  found: boolean;
  /** The deepest node reached (aliases resolved). */
  node: Node | undefined;
  /** The key of the mapping entry holding `node`, when it sits in a mapping. */
  key: Node | undefined;
}

/** The text a mapping key converts to in `doc.toJS()` (scalar keys only). */
export function keyText(key: unknown): string | undefined {
  if (!isScalar(key)) return undefined;
  return key.value === null || key.value === undefined ? '' : String(key.value);
}

/**
 * Turns paths into the parsed YAML (as ajv's instancePath or a rule names them) and raw offsets
 * into `Location`s. A location never spans lines: it is clamped to the rest of its first line,
 * because the renderer underlines a single source line.
 */
export class Locator {
  readonly #src: string;
  readonly #doc: Document;
  readonly #lines: LineCounter;
  /** The file name shown in diagnostics. */
  readonly file: string;

  constructor(src: string, doc: Document, lines: LineCounter, file: string) {
    this.#src = src;
    this.#doc = doc;
    this.#lines = lines;
    this.file = file;
  }

  /** The location of the source span `[start, end)`. */
  range(start: number, end: number): Location {
    const offset = Math.min(Math.max(0, start), this.#src.length);
    const pos = this.#lines.linePos(offset);
    const line = Math.max(1, pos.line);
    const lineStart = this.#lines.lineStarts[line - 1] ?? 0;
    const column = Math.max(1, offset - lineStart + 1);
    const rest = this.#src.slice(offset).split('\n', 1)[0] ?? '';
    const restLength = rest.endsWith('\r') ? rest.length - 1 : rest.length;
    const length = Math.max(1, Math.min(end - offset, restLength));
    return { file: this.file, line, column, length };
  }

  /** The start of the document's content: for problems with the file as a whole. */
  root(): Location {
    const start = this.#doc.contents?.range?.[0] ?? 0;
    return this.range(start, start + 1);
  }

  /** The node at `path`, or undefined when the path does not exist. */
  node(path: readonly PathSegment[]): Node | undefined {
    const reached = this.#walk(path);
    return reached.found ? reached.node : undefined;
  }

  /**
   * The value at `path`. A missing path points at the key of the deepest entry that exists; an
   * empty value or a block collection points at its key, which reads better than a blank or a
   * whole indented block.
   */
  value(path: readonly PathSegment[]): Location {
    const { found, node, key } = this.#walk(path);
    const keyLocation = key === undefined ? undefined : this.#nodeLocation(key);
    if (!found && keyLocation !== undefined) return keyLocation;
    const range = node?.range;
    if (range == null) return keyLocation ?? this.root();
    const empty = range[0] === range[1];
    const multiLine = this.#src.slice(range[0], range[1]).trimEnd().includes('\n');
    if (keyLocation !== undefined && (empty || (isCollection(node) && multiLine))) {
      return keyLocation;
    }
    return this.range(range[0], range[1]);
  }

  /** The key of the mapping entry at `path` (falls back to the value for list items). */
  key(path: readonly PathSegment[]): Location {
    const { found, key } = this.#walk(path);
    if (found && key !== undefined) return this.#nodeLocation(key);
    return this.value(path);
  }

  /** The first occurrence of `needle` inside the source of the scalar at `path`, else the value. */
  text(path: readonly PathSegment[], needle: string): Location {
    const node = this.node(path);
    const range = node?.range;
    if (range != null) {
      const at = this.#src.slice(range[0], range[1]).indexOf(needle);
      if (at >= 0) return this.range(range[0] + at, range[0] + at + needle.length);
    }
    return this.value(path);
  }

  /** The YAML source of the scalar at `path`, when it is short and on one line. */
  sourceOf(path: readonly PathSegment[]): string | undefined {
    const node = this.node(path);
    if (!isScalar(node) || node.range == null) return undefined;
    const text = this.#src.slice(node.range[0], node.range[1]).trim();
    return text.length > 0 && text.length <= 60 && !text.includes('\n') ? text : undefined;
  }

  #nodeLocation(node: Node): Location {
    const range = node.range;
    return range == null ? this.root() : this.range(range[0], range[1]);
  }

  #resolve(node: unknown): Node | undefined {
    const resolved = isAlias(node) ? node.resolve(this.#doc) : node;
    return isScalar(resolved) || isCollection(resolved) ? resolved : undefined;
  }

  #walk(path: readonly PathSegment[]): Reached {
    let node = this.#resolve(this.#doc.contents);
    let key: Node | undefined;
    for (const segment of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => keyText(p.key) === String(segment));
        if (pair === undefined) return { found: false, node, key };
        key = isScalar(pair.key) ? pair.key : undefined;
        node = this.#resolve(pair.value) ?? key;
      } else if (isSeq(node)) {
        const item = node.items[Number(segment)];
        if (item === undefined) return { found: false, node, key };
        node = this.#resolve(item);
        key = undefined;
      } else {
        return { found: false, node, key };
      }
    }
    return { found: true, node, key };
  }
}

/** A path as users read it: `tasks.pack.params.rows_per_part`, `dataset.languages[2]`. */
export function pathLabel(path: readonly PathSegment[]): string {
  let label = '';
  for (const segment of path) {
    if (typeof segment === 'number') label += `[${segment}]`;
    else label += label === '' ? segment : `.${segment}`;
  }
  return label === '' ? 'the pipeline file' : label;
}

/** `JSON.stringify` for showing user values: quoted, with control characters escaped. */
export const quote = (value: unknown): string => JSON.stringify(value) ?? String(value);

/** Edit distance (insert, delete, substitute), for did-you-mean suggestions. */
export function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitute = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitute));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/**
 * The closest candidate within edit distance 2 (case-insensitive), else the only candidate that
 * the input abbreviates (`lang` -> `language`); undefined when nothing is close.
 */
export function didYouMean(input: string, candidates: readonly string[]): string | undefined {
  if (input.length > 100) return undefined;
  const lower = input.toLowerCase();
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = levenshtein(lower, candidate.toLowerCase());
    const close = distance <= 2 && distance < candidate.length;
    if (close && (best === undefined || distance < best.distance)) best = { candidate, distance };
  }
  if (best !== undefined) return best.candidate;
  const abbreviated = candidates.filter((c) => lower.length >= 3 && c.startsWith(lower));
  return abbreviated.length === 1 ? abbreviated[0] : undefined;
}

/** `; did you mean "x"?`, or an empty string when nothing is close. */
export function suggestion(input: string, candidates: readonly string[]): string {
  const guess = didYouMean(input, candidates);
  return guess === undefined ? '' : `; did you mean ${quote(guess)}?`;
}

/** Diagnostics in source order (stable for ties), without exact duplicates. */
export function sortDiagnostics(diags: readonly Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  const unique = diags.filter((d) => {
    const id = `${d.location.file}:${d.location.line}:${d.location.column}:${d.message}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
  return unique
    .map((d, index) => ({ d, index }))
    .sort(
      (a, b) =>
        a.d.location.line - b.d.location.line ||
        a.d.location.column - b.d.location.column ||
        a.index - b.index,
    )
    .map(({ d }) => d);
}

/**
 * Renders each diagnostic as `❌ <file>:<line>:<col> <message>`, then the source line, then an
 * underline of `~` (length = location.length, at least 1) under the offending span; supplemental
 * locations follow the same way, indented. Blocks are separated by a blank line. Pure; takes the
 * source text per file name (a file missing from `sources` prints without an excerpt).
 */
export function renderDiagnostics(
  diags: Diagnostic[],
  sources: ReadonlyMap<string, string>,
): string {
  const blocks = diags.map((d) => {
    const icon = d.severity === 'error' ? '❌' : '⚠️';
    const lines = [`${icon} ${where(d.location)} ${d.message}`, ...excerpt(d.location, 4, sources)];
    for (const s of d.supplemental ?? []) {
      lines.push(`    ${where(s.location)} ${s.message}`, ...excerpt(s.location, 8, sources));
    }
    return lines.join('\n');
  });
  return blocks.length === 0 ? '' : `${blocks.join('\n\n')}\n`;
}

function where(location: Location): string {
  return `${location.file}:${location.line}:${location.column}`;
}

/** The source line and its underline, or nothing when the source is unknown. */
function excerpt(
  location: Location,
  indent: number,
  sources: ReadonlyMap<string, string>,
): string[] {
  const source = sources.get(location.file);
  if (source === undefined) return [];
  const raw = source.split('\n')[location.line - 1] ?? '';
  // Control characters would garble the terminal; one replacement char keeps columns aligned.
  // eslint-disable-next-line no-control-regex
  const text = raw.replace(/\r$/, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '\uFFFD');
  // Reuse the line's own tabs so the underline lines up however the terminal expands them.
  const lead = Array.from(text.slice(0, Math.max(0, location.column - 1)), (c) =>
    c === '\t' ? '\t' : ' ',
  ).join('');
  const pad = ' '.repeat(Math.max(0, location.column - 1 - text.length));
  const margin = ' '.repeat(indent);
  const squiggle = '~'.repeat(Math.max(1, location.length));
  return [`${margin}${text}`.trimEnd(), `${margin}${lead}${pad}${squiggle}`];
}
