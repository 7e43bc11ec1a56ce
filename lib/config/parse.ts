/**
 * pipeline.yaml text -> normalized `Pipeline`, or every problem with a location.
 *
 *     text --yaml--> Document (+LineCounter) --toJS--> data --ajv(schema.ts)--> schema errors
 *                                                       \--lenient view--> rules.ts --> rule errors
 *                                                        \--URLs resolved--> URL errors
 *     no errors --> normalize (defaults, absolute file:// URLs) --> Pipeline
 *
 * Every step runs on whatever the previous one could make sense of, so one run reports all
 * problems; only YAML syntax errors stop early (the data behind them cannot be trusted).
 *
 * Pure: no I/O, never throws on any input (test/unit/config.test.ts fuzzes it).
 */
import * as path from 'node:path';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import { isNode, isScalar, LineCounter, parseDocument, visit } from 'yaml';
import type { Document, YAMLError } from 'yaml';
import type { Diagnostic, Result } from '../errors.js';
import { err, ok } from '../errors.js';
import { stageName } from '../model.js';
import { kindNamed, kindOf, kinds } from '../kinds.js';
import type { Foreach, Pipeline, StageConfig, TaskKind } from '../model.js';
import type { S3BucketSettings } from '../io/stores/s3-location.js';
import { dig, isRecord, keyText, Locator, pathLabel, quote } from './diagnostics.js';
import { schemaDiagnostics, sortDiagnostics } from './diagnostics.js';
import type { PathSegment } from './diagnostics.js';
import { RULES } from './rules.js';
import { stageLimits } from './limits.js';
import type { RawStage, RuleContext } from './rules.js';
import { pipelineSchema, STAGE_RETRIES_DEFAULT } from './schema.js';

/** How to read one pipeline file. */
export interface ParseOptions {
  /** Absolute path of the pipeline file (relative file:// URLs resolve against its directory). */
  path: string;
  /** How the file is named in diagnostics, e.g. "pipeline.yaml" or "examples/sample/pipeline.yaml". */
  displayName: string;
  /** Absolute cache dir: defaults `state: file://<cacheDir>/state` and `bucket: file://<cacheDir>/bucket`. */
  cacheDir: string;
}

/** The compiled schema, made on first use (the kinds' registry may not be loaded before). */
let compiled: ValidateFunction | undefined;
const validator = (): ValidateFunction =>
  (compiled ??= new Ajv({ allErrors: true, strict: true, verbose: true }).compile(
    pipelineSchema(kinds()),
  ));

/** The `default`s that a kind's params schema declares, in schema order. */
export function paramDefaults(kind: TaskKind): Record<string, unknown> {
  const defaults: Record<string, unknown> = {};
  for (const [key, property] of Object.entries(kindOf(kind).params.properties)) {
    if ('default' in property) defaults[key] = structuredClone(property.default);
  }
  return defaults;
}

const error = (message: string, location: Diagnostic['location']): Diagnostic => ({
  severity: 'error',
  message,
  location,
});

/** Parses, validates and normalizes pipeline.yaml; every problem comes back at once, sorted. */
export function parsePipeline(text: string, opts: ParseOptions): Result<Pipeline, Diagnostic[]> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: true,
    logLevel: 'error', // no console warnings from a pure module; problems come back as values
  });
  const at = new Locator(text, doc, lineCounter, opts.displayName);
  const syntax = yamlProblems(doc, at);
  if (syntax.length > 0) return err(sortDiagnostics(syntax));
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    // Only alias expansion limits get here (syntax and alias problems were reported above).
    return err([error(`YAML could not be read: ${String(e)}`, at.root())]);
  }
  const validate = validator();
  const diags = validate(data) ? [] : schemaDiagnostics(validate.errors ?? [], data, at);
  if (isRecord(data)) {
    const stages = lenientStages(data);
    const ctx: RuleContext = {
      data,
      stages,
      byName: new Map(stages.map((s) => [s.name, s])),
      at,
      report: (d) => diags.push({ severity: 'error', ...d }),
    };
    for (const rule of RULES) rule(ctx);
    for (const field of urlFields(stages)) {
      const value = dig(data, field.path);
      if (typeof value !== 'string' || value === '') continue;
      const url = normalizeUrl(value, field.schemes, path.dirname(opts.path));
      if (!url.ok) {
        diags.push(
          error(`${pathLabel(field.path)} ${quote(value)} ${url.error}`, at.value(field.path)),
        );
      }
    }
    if (diags.length === 0) return ok(normalize(data, stages, opts, at));
  }
  return err(sortDiagnostics(diags));
}

// ---------------------------------------------------------------------------------------------
// YAML

/** The tags of plain data: anything else converts to something JSON Schema cannot check. */
const CORE_TAGS = new Set(['!!str', '!!int', '!!float', '!!bool', '!!null', '!!map', '!!seq']);

/** Syntax errors and warnings, plus what toJS would choke on: non-scalar keys, bad aliases. */
function yamlProblems(doc: Document, at: Locator): Diagnostic[] {
  const found: Diagnostic[] = [];
  for (const e of [...doc.errors, ...doc.warnings]) {
    found.push(e.code === 'DUPLICATE_KEY' ? duplicateKey(doc, e, at) : yamlError(e, at));
  }
  visit(doc, {
    Pair(_, pair) {
      const key: unknown = pair.key;
      if (key === null || isScalar(key) || !isNode(key)) return;
      const range = key.range;
      const location = range == null ? at.root() : at.range(range[0], range[1]);
      found.push(
        error('mapping keys must be plain strings, not lists, mappings or aliases', location),
      );
    },
    Node(_, node) {
      // yaml also knows YAML 1.1 types (!!set, !!binary, !!timestamp…) that are not plain data.
      const tag = node.tag?.replace('tag:yaml.org,2002:', '!!');
      if (tag === undefined || !tag.startsWith('!!') || CORE_TAGS.has(tag) || !node.range) return;
      found.push(
        error(
          `YAML tag ${tag} is not supported in a pipeline file (write a plain value)`,
          at.range(node.range[0], node.range[1]),
        ),
      );
    },
    Alias(_, alias, ancestors) {
      const target = alias.resolve(doc);
      const range = alias.range ?? [0, 1];
      if (target === undefined) {
        found.push(
          error(
            `unknown alias *${alias.source}: define &${alias.source} before it`,
            at.range(range[0], range[1]),
          ),
        );
      } else if (ancestors.includes(target)) {
        found.push(
          error(
            `alias *${alias.source} refers to a node that contains it (a YAML node cannot include itself)`,
            at.range(range[0], range[1]),
          ),
        );
      }
    },
  });
  return found;
}

function yamlError(e: YAMLError, at: Locator): Diagnostic {
  const text =
    e.code === 'MULTIPLE_DOCS'
      ? 'a pipeline file holds one document, and a second one starts here'
      : e.message.replace(/\s+/g, ' ').trim();
  const message = `YAML syntax error: ${text.charAt(0).toLowerCase()}${text.slice(1)}`;
  return error(message, at.range(e.pos[0], e.pos[1]));
}

/** `duplicate key "x"`, with the first definition as a supplemental location. */
function duplicateKey(doc: Document, e: YAMLError, at: Locator): Diagnostic {
  let first: Diagnostic['location'] | undefined;
  let where = at.range(e.pos[0], e.pos[1]);
  let name = '';
  visit(doc, {
    Map(_, map) {
      const index = map.items.findIndex((p) => isScalar(p.key) && p.key.range?.[0] === e.pos[0]);
      const duplicate = map.items[index];
      if (duplicate === undefined) return;
      name = keyText(duplicate.key) ?? '';
      const own = isScalar(duplicate.key) ? duplicate.key.range : undefined;
      if (own != null) where = at.range(own[0], own[1]);
      const original = map.items.find((p, i) => i < index && keyText(p.key) === name);
      const range = isScalar(original?.key) ? original.key.range : undefined;
      if (range != null) first = at.range(range[0], range[1]);
      return visit.BREAK;
    },
  });
  return {
    ...error(`duplicate key ${quote(name)}`, where),
    ...(first === undefined
      ? {}
      : { supplemental: [{ message: 'first defined here', location: first }] }),
  };
}

// ---------------------------------------------------------------------------------------------
// The lenient view that rules read

const FOREACHES: readonly Foreach[] = ['language', 'parquet', 'once'];

/** Every stage whose value is a mapping; fields of the wrong type are left out. */
function lenientStages(data: Readonly<Record<string, unknown>>): RawStage[] {
  const tasks = data['tasks'];
  if (!isRecord(tasks)) return [];
  return Object.entries(tasks).flatMap(([name, declared]): RawStage[] => {
    if (!isRecord(declared)) return [];
    const kind = kindNamed(declared['kind']);
    const traits = kind === undefined ? undefined : kindOf(kind);
    const chosen = FOREACHES.find((f) => f === declared['foreach']);
    const needs = Array.isArray(declared['needs']) ? (declared['needs'] as unknown[]) : [];
    const given = isRecord(declared['params']) ? declared['params'] : {};
    return [
      {
        name,
        kind,
        // Only a kind that chooses (shell) may; for the others a declared foreach is an error.
        foreach: traits?.chooseForeach === true ? (chosen ?? traits.foreach) : traits?.foreach,
        needs: needs.flatMap((n, index) => (typeof n === 'string' ? [{ name: n, index }] : [])),
        params: kind === undefined ? given : { ...paramDefaults(kind), ...given },
        declared,
      },
    ];
  });
}

// ---------------------------------------------------------------------------------------------
// URLs

/** The URL schemes a field accepts. */
export type Scheme = 'hf' | 's3' | 'file';

const SHAPES: { readonly [S in Scheme]: string } = {
  hf: 'hf://datasets/<owner>/<name>',
  s3: 's3://<bucket>[/<prefix>]',
  file: 'file://<dir>',
};

/** The URL fields and what each accepts (kinds declare their URL params, e.g. cmds's source). */
function urlFields(
  stages: readonly RawStage[],
): { path: PathSegment[]; schemes: readonly Scheme[] }[] {
  return [
    { path: ['dataset', 'source'], schemes: ['hf', 'file'] },
    { path: ['content', 'source'], schemes: ['s3', 'file'] },
    { path: ['bucket'], schemes: ['s3', 'file'] },
    { path: ['state'], schemes: ['s3', 'file'] },
    { path: ['work'], schemes: ['s3', 'file'] },
    ...stages.flatMap((s) =>
      Object.entries(s.kind === undefined ? {} : (kindOf(s.kind).urls ?? {})).map(
        ([param, { schemes }]) => ({ path: ['tasks', s.name, 'params', param], schemes }),
      ),
    ),
  ];
}

/**
 * Normalizes a location URL: `file://` resolves against `baseDir` to `file:///abs/path` (no
 * trailing slash; `file://hf` and `file://./hf` are relative); `s3://` and `hf://` keep their
 * text minus trailing slashes. The error completes a sentence that starts with the field.
 */
export function normalizeUrl(
  raw: string,
  schemes: readonly Scheme[],
  baseDir: string,
): Result<string, string> {
  const expected = `expected ${schemes.map((s) => SHAPES[s]).join(' or ')}`;
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/s.exec(raw);
  if (match === null) {
    const hint = raw.includes(':') ? '' : `; for a local directory write ${quote(`file://${raw}`)}`;
    return err(`is not a URL (${expected}${hint})`);
  }
  const scheme = (match[1] ?? '').toLowerCase();
  const rest = match[2] ?? '';
  if (!(schemes as readonly string[]).includes(scheme)) {
    return err(`uses unsupported scheme ${quote(`${scheme}://`)} (${expected})`);
  }
  if (scheme === 'file') {
    if (rest === '' || rest.includes('\0'))
      return err(`needs a directory after file:// (${expected})`);
    return ok(`file://${path.resolve(baseDir, rest)}`);
  }
  const trimmed = rest.replace(/\/+$/, '');
  if (scheme === 's3') {
    const bucket = trimmed.split('/', 1)[0] ?? '';
    const valid = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) && !trimmed.includes('//');
    return valid ? ok(`s3://${trimmed}`) : err(`is not a valid S3 location (${expected})`);
  }
  return /^datasets\/[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/.test(trimmed)
    ? ok(`hf://${trimmed}`)
    : err(`is not a dataset URL (${expected})`);
}

// ---------------------------------------------------------------------------------------------
// Normalization (only reached when there is no diagnostic, so the schema's shape holds)

/** The document's shape once schema.json accepted it. */
interface PipelineDoc {
  dataset: { repo: string; revision: string; source: string; languages: 'all' | string[] };
  content: { source: string };
  bucket?: string;
  state?: string;
  work?: string;
  s3?: Record<string, S3BucketSettings>;
}

function normalize(
  data: Readonly<Record<string, unknown>>,
  stages: readonly RawStage[],
  opts: ParseOptions,
  at: Locator,
): Pipeline {
  const doc = data as unknown as PipelineDoc;
  const baseDir = path.dirname(opts.path);
  const url = (raw: string, schemes: readonly Scheme[]): string => {
    const normalized = normalizeUrl(raw, schemes, baseDir);
    if (!normalized.ok) throw new Error(`Internal error: URL ${raw} passed validation`);
    return normalized.value;
  };
  const store = (raw: string | undefined, dir: string): string =>
    raw === undefined ? `file://${path.join(opts.cacheDir, dir)}` : url(raw, ['s3', 'file']);
  const contentSource = url(doc.content.source, ['s3', 'file']);
  return {
    file: opts.path,
    dataset: {
      repo: doc.dataset.repo,
      revision: doc.dataset.revision,
      source: url(doc.dataset.source, ['hf', 'file']),
      languages: doc.dataset.languages === 'all' ? 'all' : [...doc.dataset.languages],
    },
    content: { source: contentSource },
    bucket: store(doc.bucket, 'bucket'),
    state: store(doc.state, 'state'),
    work: store(doc.work, 'work'),
    s3: structuredClone(doc.s3 ?? {}),
    stages: stages.map((s): StageConfig => {
      if (s.kind === undefined || s.foreach === undefined) {
        throw new Error(`Internal error: stage ${s.name} passed validation without a kind`);
      }
      const kind = kindOf(s.kind);
      const params: Record<string, unknown> = {};
      for (const key of Object.keys(kind.params.properties)) {
        if (Object.hasOwn(s.params, key)) params[key] = structuredClone(s.params[key]);
      }
      for (const [key, { schemes, orContentSource }] of Object.entries(kind.urls ?? {})) {
        const given = params[key];
        if (typeof given === 'string') params[key] = url(given, schemes);
        else if (orContentSource === true) params[key] = contentSource;
      }
      const { limit, retries } = s.declared;
      const limits = stageLimits(s.kind, s.declared);
      return {
        name: stageName(s.name),
        kind: s.kind,
        needs: s.needs.map((n) => stageName(n.name)),
        foreach: s.foreach,
        params,
        ...(typeof limit === 'number' ? { limit } : {}),
        retries: typeof retries === 'number' ? retries : STAGE_RETRIES_DEFAULT,
        location: at.key(['tasks', s.name]),
        ...limits,
      };
    }),
  };
}
