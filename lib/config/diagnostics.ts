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
import type { ErrorObject } from 'ajv';
import type { Diagnostic, Location } from '../errors.js';

/** One step of a path into the parsed document: a mapping key or a list index. */
export type PathSegment = string | number;

/** What a walk down a path reached: the deepest node, and its key when it sits in a mapping. */
type Reached = { found: boolean; node: Node | undefined; key: Node | undefined };

/** The text a mapping key converts to in `doc.toJS()` (scalar keys only). */
export function keyText(key: unknown): string | undefined {
  if (!isScalar(key)) return undefined;
  const value: unknown = key.value;
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  return typeof value === 'number' || typeof value === 'boolean' ? String(value) : undefined;
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
    const newline = this.#src.indexOf('\n', offset);
    let lineEnd = newline === -1 ? this.#src.length : newline;
    if (this.#src[lineEnd - 1] === '\r' && lineEnd > offset) lineEnd--;
    const length = Math.max(1, Math.min(end - offset, lineEnd - offset));
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

/** `JSON.stringify` for showing user values: quoted, control characters escaped, long ones cut. */
export function quote(value: unknown): string {
  // JSON.stringify's typing hides that undefined (and functions) give undefined.
  const stringify: (v: unknown) => string | undefined = JSON.stringify;
  const json = stringify(value) ?? 'nothing';
  return json.length > 80 && json.endsWith('"') ? `${json.slice(0, 76)}…"` : json;
}

/** `"a"`, `"a" and "b"`, `"a", "b" and "c"`. */
export const andList = (items: readonly string[]): string =>
  items.length <= 1
    ? (items[0] ?? '')
    : `${items.slice(0, -1).join(', ')} and ${items.at(-1) ?? ''}`;

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

/** True for a plain mapping (not null, not a list). */
export const isRecord = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);

/** Reads a path out of plain data (undefined when any step is missing). */
export function dig(data: unknown, route: readonly PathSegment[]): unknown {
  let value = data;
  for (const segment of route) {
    if (Array.isArray(value) && typeof segment === 'number') value = value[segment] as unknown;
    else if (isRecord(value) && Object.hasOwn(value, segment)) value = value[segment];
    else return undefined;
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Schema errors -> human messages

/** What a field must be, for `type` errors; some fields say more than their JSON type. */
const EXPECTED: ReadonlyMap<string, string> = new Map([
  ['string', 'a string'],
  ['integer', 'a whole number'],
  ['number', 'a number'],
  ['object', 'a mapping'],
  ['array', 'a list'],
  ['boolean', 'true or false'],
  ['dataset.languages', '"all" or a non-empty list of language folder names'],
]);

/** Why a pattern failed, by pattern (schema.json keeps the patterns, this the explanation). */
const PATTERN_HINTS: Readonly<Record<string, [what: string, hint: string]>> = {
  '^[a-z][a-z0-9_-]*$': ['stage name', 'must start with a-z and use only a-z, 0-9, "_" and "-"'],
  '^[A-Za-z_][A-Za-z0-9_]*$': ['environment variable name', 'must use only A-Z, a-z, 0-9 and "_"'],
  '^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$': ['repo', 'must be <owner>/<name>'],
};

/** A value as a message shows it; numbers as written (`1e400`, `.inf`), not as JS prints them. */
function describe(value: unknown, source: string | undefined): string {
  if (value === null || value === undefined) return 'an empty value';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (typeof value === 'object')
    return Object.keys(value).length === 0 ? 'an empty mapping' : 'a mapping';
  if (typeof value === 'string') return `the string ${quote(value)}`;
  if (typeof value === 'number') return `the number ${source ?? String(value)}`;
  return source ?? quote(value);
}

/** ajv's instancePath as path segments (array indexes as numbers). */
function toPath(pointer: string, data: unknown): PathSegment[] {
  const route: PathSegment[] = [];
  for (const raw of pointer.split('/').slice(1)) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    route.push(Array.isArray(dig(data, route)) ? Number(segment) : segment);
  }
  return route;
}

/**
 * ajv's errors as one-line human messages located in the YAML: `additionalProperties` at the
 * offending key, `required` at the key of the mapping that lacks it, the rest at the value.
 */
export function schemaDiagnostics(
  errors: readonly ErrorObject[],
  data: unknown,
  at: Locator,
): Diagnostic[] {
  // One message per mapping for all the fields it lacks.
  const missing = new Map<string, string[]>();
  for (const e of errors) {
    if (e.keyword !== 'required') continue;
    const list = missing.get(e.instancePath) ?? [];
    missing.set(e.instancePath, [...list, quote(e.params['missingProperty'])]);
  }
  return errors.flatMap((e) => {
    if (e.keyword === 'required' && missing.get(e.instancePath) === undefined) return [];
    const fields = missing.get(e.instancePath) ?? [];
    if (e.keyword === 'required') missing.delete(e.instancePath);
    const message = schemaMessage(e, {
      route: toPath(e.instancePath, data),
      data,
      at,
      missing: fields,
    });
    return message === undefined ? [] : [{ severity: 'error' as const, ...message }];
  });
}

/** Where an ajv error points, and what it needs to say so. */
interface SchemaErrorSite {
  /** The instance path as YAML path segments. */
  route: PathSegment[];
  /** The whole document (a shell stage's kind is looked up in it). */
  data: unknown;
  at: Locator;
  /** For `required`: every missing field at this path, merged into one message. */
  missing: readonly string[];
}

function schemaMessage(
  e: ErrorObject,
  { route, data, at, missing }: SchemaErrorSite,
): { message: string; location: Location } | undefined {
  const p = e.params as Record<string, unknown>;
  const label = pathLabel(route);
  const here = (message: string) => ({ message, location: at.value(route) });
  const infinite = typeof e.data === 'number' && !Number.isFinite(e.data);
  const got = `got ${describe(e.data, at.sourceOf(route))}${infinite ? ' (not a finite number)' : ''}`;
  const stage = route[0] === 'tasks' && route.length >= 2 ? quote(route[1]) : '';
  switch (e.keyword) {
    case 'if': // the inner error says what is wrong
    case 'propertyNames': // so does the `pattern` error that comes with it
      return undefined;
    case 'required': {
      const plural = missing.length === 1 ? '' : 's';
      const fields = `field${plural} ${andList(missing)}`;
      if (route.length === 0) {
        const message = `missing required top-level key${plural} ${andList(missing)}`;
        return { message, location: at.root() };
      }
      const location = at.key(route);
      if (stage !== '' && (missing.includes('"params"') || missing.includes('"command"'))) {
        return {
          message: `shell stage ${stage} needs params.command (the command to run)`,
          location,
        };
      }
      const owner = route.length === 2 && stage !== '' ? `stage ${stage}` : label;
      return { message: `${owner} is missing required ${fields}`, location };
    }
    case 'additionalProperties': {
      const key = String(p['additionalProperty']);
      const parent = e.parentSchema as { properties?: Record<string, unknown> } | undefined;
      const expected = Object.keys(parent?.properties ?? {});
      const list = `expected one of: ${expected.join(', ')}${suggestion(key, expected)}`;
      const kind = quote(dig(data, [...route.slice(0, 2), 'kind']));
      const message =
        route.length === 0
          ? `unknown top-level key ${quote(key)} (${list})`
          : route.length === 2 && stage !== ''
            ? `unknown field ${quote(key)} in stage ${stage} (${list})`
            : route.length === 3 && route[2] === 'params'
              ? expected.length === 0
                ? `kind ${kind} takes no params (got ${quote(key)})`
                : `unknown param ${quote(key)} for kind ${kind} (${list})`
              : `unknown field ${quote(key)} in ${label} (${list})`;
      return { message, location: at.key([...route, key]) };
    }
    case 'type': {
      if (route.length === 0) {
        const message =
          e.data === null || e.data === undefined
            ? 'the pipeline file is empty (it needs version, dataset, content and tasks)'
            : `the pipeline file must be a mapping with version, dataset, content and tasks; ${got}`;
        return { message, location: at.root() };
      }
      const want = String(p['type']);
      const source = at.sourceOf(route);
      const scalar = e.data !== null && typeof e.data !== 'object';
      const keep =
        want === 'string' && scalar && source !== undefined
          ? ` (write ${quote(source)} in quotes to keep it as text)`
          : '';
      return here(
        `${label} must be ${EXPECTED.get(label) ?? EXPECTED.get(want) ?? want}, ${got}${keep}`,
      );
    }
    case 'const':
    case 'minItems': {
      const allowed = e.keyword === 'const' ? quote(p['allowedValue']) : 'a non-empty list';
      return here(`${label} must be ${EXPECTED.get(label) ?? allowed}, ${got}`);
    }
    case 'enum': {
      if (route.length === 3 && route[2] === 'kind') return undefined; // rules.unknownKind
      const allowed = (Array.isArray(p['allowedValues']) ? p['allowedValues'] : []).map(String);
      const hint = typeof e.data === 'string' ? suggestion(e.data, allowed) : '';
      return here(`${label} must be one of: ${allowed.join(', ')} (${got}${hint})`);
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return here(`${label} must be ${String(p['comparison'])} ${String(p['limit'])}, ${got}`);
    case 'minLength':
      return here(`${label} must not be empty`);
    case 'maxLength': {
      // Code points, as JSON Schema counts them.
      const n = typeof e.data === 'string' ? Array.from(e.data).length : 0;
      return here(`${label} is ${n} characters long; at most ${String(p['limit'])} are allowed`);
    }
    case 'maxItems':
    case 'maxProperties': {
      const n = Array.isArray(e.data) ? e.data.length : Object.keys(e.data ?? {}).length;
      const what = e.keyword === 'maxItems' ? 'items' : 'entries';
      return here(`${label} has ${n} ${what}; at most ${String(p['limit'])} are allowed`);
    }
    case 'uniqueItems': {
      const index = Math.max(Number(p['i']), Number(p['j']));
      const item = Array.isArray(e.data) ? (e.data[index] as unknown) : undefined;
      return {
        message: `${label} lists ${quote(item)} twice`,
        location: at.value([...route, index]),
      };
    }
    case 'pattern': {
      const [what, hint] = PATTERN_HINTS[String(p['pattern'])] ?? ['value', 'has the wrong form'];
      if (e.propertyName === undefined) return here(`${label} ${quote(e.data)} ${hint}`);
      const location = at.key([...route, e.propertyName]);
      return { message: `invalid ${what} ${quote(e.propertyName)}: ${hint}`, location };
    }
    default:
      return here(`${label} ${e.message ?? 'is invalid'}`);
  }
}

/** Diagnostics in source order (`sort` is stable: ties keep report order), without duplicates. */
export function sortDiagnostics(diags: readonly Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return diags
    .filter((d) => {
      const id = `${d.location.file}:${d.location.line}:${d.location.column}:${d.message}`;
      return !seen.has(id) && seen.add(id).size > 0;
    })
    .sort((a, b) => a.location.line - b.location.line || a.location.column - b.location.column);
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

/** At most this many characters of a span are shown (and underlined) in an excerpt. */
const EXCERPT_SPAN = 120;

/** The source line and its underline, or nothing when the source is unknown. */
function excerpt(
  location: Location,
  indent: number,
  sources: ReadonlyMap<string, string>,
): string[] {
  const source = sources.get(location.file);
  if (source === undefined) return [];
  const full = source.split('\n')[location.line - 1] ?? '';
  // A huge value (a megabyte on one line) is shown cut: the start of the span is what locates it.
  const cut = location.column - 1 + EXCERPT_SPAN;
  const raw = full.length > cut ? `${full.slice(0, cut)}…` : full;
  location = { ...location, length: Math.min(location.length, EXCERPT_SPAN) };
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
