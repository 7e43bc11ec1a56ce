/**
 * Semantic checks of pipeline.yaml: what JSON Schema cannot say (dependencies, cycles, URLs,
 * templates, outputs that collide). Each rule is a small function that reads a `RuleContext`
 * and reports `Diagnostic`s; they all run, so the user sees every problem at once.
 *
 * Rules read a lenient view of the document: the schema may have failed, so each rule looks only
 * at the parts that have the right shape and leaves the rest to the schema errors.
 *
 * Pure: no I/O. URLs are checked where they are normalized (parse.ts).
 */
import type { Diagnostic } from '../errors.js';
import { unreachable } from '../errors.js';
import { TASK_KINDS } from '../model.js';
import type { Foreach, TaskKind } from '../model.js';
import type { Locator, PathSegment } from './diagnostics.js';
import { didYouMean, pathLabel, quote, suggestion } from './diagnostics.js';

/** Expansion of each kind when `foreach` is not given; only shell may choose another one. */
export const DEFAULT_FOREACH: { readonly [K in TaskKind]: Foreach } = {
  discover: 'language',
  fetch: 'parquet',
  cmds: 'parquet',
  sync: 'parquet',
  pack: 'parquet',
  shell: 'once',
};

/** The 26 columns of a the-stack-v2 parquet row; pack's `content_field` must not shadow one. */
export const DATASET_COLUMNS: readonly string[] = [
  'blob_id', 'directory_id', 'path', 'content_id', 'detected_licenses', 'license_type',
  'repo_name', 'snapshot_id', 'revision_id', 'branch_name', 'visit_date', 'revision_date',
  'committer_date', 'github_id', 'star_events_count', 'fork_events_count', 'gha_license_id',
  'gha_event_created_at', 'gha_created_at', 'gha_language', 'src_encoding', 'language',
  'is_vendor', 'is_generated', 'length_bytes', 'extension',
]; // prettier-ignore

/** One stage as written, read leniently (fields with the wrong type are left out). */
export interface RawStage {
  /** The key under `tasks:`. */
  name: string;
  /** The kind, when it is one stackflow knows. */
  kind: TaskKind | undefined;
  /** `foreach` as written when valid, else the kind's default (undefined for an unknown kind). */
  foreach: Foreach | undefined;
  /** The string entries of `needs`, with their index in the list (for locations). */
  needs: { name: string; index: number }[];
  /** `params` with the kind's defaults applied (as written when the kind is unknown). */
  params: Readonly<Record<string, unknown>>;
  /** The stage mapping exactly as written. */
  declared: Readonly<Record<string, unknown>>;
}

/** What every rule sees. */
export interface RuleContext {
  /** The document as plain data (`doc.toJS()`): a mapping, otherwise unchecked. */
  readonly data: Readonly<Record<string, unknown>>;
  /** Every stage whose value is a mapping, in declaration order. */
  readonly stages: readonly RawStage[];
  /** The same stages by name. */
  readonly byName: ReadonlyMap<string, RawStage>;
  /** Absolute directory of the pipeline file; relative file:// URLs resolve against it. */
  readonly baseDir: string;
  /** Turns paths into the document into locations. */
  readonly at: Locator;
  /** Records one problem. */
  report(diagnostic: Omit<Diagnostic, 'severity'>): void;
}

/** A semantic check: reads the context, reports through `ctx.report`. */
export type Rule = (ctx: RuleContext) => void;

const isRecord = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);

const stagePath = (name: string, ...rest: PathSegment[]): PathSegment[] => ['tasks', name, ...rest];

/** Reads a path out of plain data (undefined when any step is missing). */
export function dig(data: unknown, at: readonly PathSegment[]): unknown {
  let value = data;
  for (const segment of at) {
    if (Array.isArray(value) && typeof segment === 'number') value = value[segment] as unknown;
    else if (isRecord(value) && Object.hasOwn(value, segment)) value = value[segment];
    else return undefined;
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// The rules

/** A hub source needs a commit sha: a branch name would make runs irreproducible. */
export const pinnedRevision: Rule = (ctx) => {
  const source = dig(ctx.data, ['dataset', 'source']);
  const revision = dig(ctx.data, ['dataset', 'revision']);
  if (typeof source !== 'string' || !source.startsWith('hf://') || typeof revision !== 'string') {
    return;
  }
  if (revision === '' || /^[0-9a-f]{40}$/.test(revision)) return;
  ctx.report({
    message: `dataset.revision ${quote(revision)} is not a pinned commit sha (40 lowercase hex characters), which an hf:// source needs so that runs are reproducible`,
    location: ctx.at.value(['dataset', 'revision']),
  });
};

/** Why a language name cannot be a folder under data/, or undefined when it can. */
export function languageProblem(name: string): string | undefined {
  if (name === '') return 'it is empty';
  if (name === '.' || name === '..') return `${quote(name)} is not a folder name`;
  if (name.includes('/')) return 'it contains "/"';
  if (name.includes('\\')) return 'it contains "\\"';
  if (name.includes('\0')) return 'it contains a NUL character';
  return undefined;
}

/** Every listed language is a legal folder name (`C++` and `ASN.1` are; `../etc` is not). */
export const languageNames: Rule = (ctx) => {
  const languages = dig(ctx.data, ['dataset', 'languages']);
  if (!Array.isArray(languages)) return;
  languages.forEach((name: unknown, index) => {
    if (typeof name !== 'string') return;
    const problem = languageProblem(name);
    if (problem === undefined) return;
    ctx.report({
      message: `language ${quote(name)} is not a legal folder name under data/: ${problem}`,
      location: ctx.at.value(['dataset', 'languages', index]),
    });
  });
};

/** `kind` is one of TASK_KINDS (the schema's enum error is left to this rule). */
export const unknownKind: Rule = (ctx) => {
  for (const s of ctx.stages) {
    const declared = s.declared['kind'];
    if (declared === undefined || s.kind !== undefined) continue;
    const shown = ctx.at.sourceOf(stagePath(s.name, 'kind')) ?? quote(declared);
    const hint = typeof declared === 'string' ? suggestion(declared, TASK_KINDS) : '';
    ctx.report({
      message: `unknown task kind ${typeof declared === 'string' ? quote(declared) : shown} (expected one of: ${TASK_KINDS.join(', ')}${hint})`,
      location: ctx.at.value(stagePath(s.name, 'kind')),
    });
  }
};

/** Only shell stages choose their expansion; the others have exactly one that makes sense. */
export const foreachForKind: Rule = (ctx) => {
  for (const s of ctx.stages) {
    const declared = s.declared['foreach'];
    if (s.kind === undefined || s.kind === 'shell' || typeof declared !== 'string') continue;
    const expected = DEFAULT_FOREACH[s.kind];
    if (declared === expected) continue;
    ctx.report({
      message: `foreach ${quote(declared)} is not allowed for kind ${quote(s.kind)}: ${s.kind} stages always run once per ${expected === 'parquet' ? 'parquet file' : expected} (only shell stages may choose foreach)`,
      location: ctx.at.value(stagePath(s.name, 'foreach')),
    });
  }
};

/** Every entry of `needs` names a declared stage. */
export const unknownDependency: Rule = (ctx) => {
  const names = ctx.stages.map((s) => s.name);
  for (const s of ctx.stages) {
    for (const need of s.needs) {
      if (ctx.byName.has(need.name)) continue;
      ctx.report({
        message: `stage ${quote(s.name)} needs unknown stage ${quote(need.name)} (declared stages: ${names.join(', ')}${suggestion(need.name, names)})`,
        location: ctx.at.value(stagePath(s.name, 'needs', need.index)),
      });
    }
  }
};

/** A stage cannot need itself. */
export const selfDependency: Rule = (ctx) => {
  for (const s of ctx.stages) {
    for (const need of s.needs) {
      if (need.name !== s.name) continue;
      ctx.report({
        message: `stage ${quote(s.name)} needs itself`,
        location: ctx.at.value(stagePath(s.name, 'needs', need.index)),
      });
    }
  }
};

/** The stages a stage needs that exist (unknown names and itself left out). */
const edges = (ctx: RuleContext, s: RawStage): { to: RawStage; index: number }[] =>
  s.needs.flatMap((need) => {
    const to = ctx.byName.get(need.name);
    return to === undefined || to === s ? [] : [{ to, index: need.index }];
  });

/**
 * No dependency cycles. Each cycle is reported once, starting at its earliest-declared stage,
 * with one supplemental location per edge (the `needs` entry that makes it):
 *
 *     a --needs--> b --needs--> c --needs--> a   =>   "dependency cycle: a -> b -> c -> a"
 *
 * The walk is iterative so that a pipeline with thousands of stages cannot overflow the stack.
 */
export const dependencyCycle: Rule = (ctx) => {
  const order = new Map(ctx.stages.map((s, i) => [s, i]));
  const state = new Map<RawStage, 'open' | 'done'>();
  const reported = new Set<string>();
  for (const root of ctx.stages) {
    if (state.has(root)) continue;
    const stack: { stage: RawStage; next: number }[] = [{ stage: root, next: 0 }];
    state.set(root, 'open');
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      if (top === undefined) break;
      const edge = edges(ctx, top.stage)[top.next++];
      if (edge === undefined) {
        state.set(top.stage, 'done');
        stack.pop();
      } else if (state.get(edge.to) === 'open') {
        const from = stack.findIndex((f) => f.stage === edge.to);
        const cycle = stack.slice(from).map((f) => f.stage);
        const first = cycle.reduce((a, b) => ((order.get(b) ?? 0) < (order.get(a) ?? 0) ? b : a));
        const start = cycle.indexOf(first);
        const trail = [...cycle.slice(start), ...cycle.slice(0, start)];
        const names = [...trail, first].map((s) => s.name).join(' -> ');
        if (reported.has(names)) continue;
        reported.add(names);
        ctx.report({
          message: `dependency cycle: ${names}`,
          location: ctx.at.key(stagePath(first.name)),
          supplemental: trail.map((s, i) => {
            const to = trail[(i + 1) % trail.length] ?? first;
            const index = s.needs.find((n) => n.name === to.name)?.index ?? 0;
            return {
              message: `${quote(s.name)} needs ${quote(to.name)}`,
              location: ctx.at.value(stagePath(s.name, 'needs', index)),
            };
          }),
        });
      } else if (!state.has(edge.to)) {
        state.set(edge.to, 'open');
        stack.push({ stage: edge.to, next: 0 });
      }
    }
  }
};

/** Exactly one discover stage: it lists the parquet files every other stage expands over. */
export const singleDiscover: Rule = (ctx) => {
  if (!isRecord(ctx.data['tasks'])) return;
  const discovers = ctx.stages.filter((s) => s.kind === 'discover');
  const first = discovers[0];
  if (first === undefined) {
    // A misspelled kind is likely the missing discover stage; unknownKind already says so.
    if (ctx.stages.some((s) => s.kind === undefined)) return;
    ctx.report({
      message:
        'no discover stage: add one, e.g. `discover: { kind: discover }`, to list the parquet files',
      location: ctx.at.key(['tasks']),
    });
    return;
  }
  for (const extra of discovers.slice(1)) {
    ctx.report({
      message: `stage ${quote(extra.name)} is a second discover stage; a pipeline has exactly one`,
      location: ctx.at.value(stagePath(extra.name, 'kind')),
      supplemental: [
        {
          message: `the first discover stage is ${quote(first.name)}`,
          location: ctx.at.value(stagePath(first.name, 'kind')),
        },
      ],
    });
  }
};

/** Every per-language or per-parquet stage reaches the discover stage through `needs`. */
export const dependsOnDiscover: Rule = (ctx) => {
  const discover = ctx.stages.find((s) => s.kind === 'discover');
  if (discover === undefined) return;
  for (const s of ctx.stages) {
    if (s.kind === undefined || s.kind === 'discover' || s.foreach === undefined) continue;
    if (s.foreach === 'once') continue;
    const seen = new Set<RawStage>([s]);
    const queue = [s];
    let reached = false;
    let broken = false; // an unknown need hides the path; unknownDependency reports it
    for (let stage = queue.shift(); stage !== undefined; stage = queue.shift()) {
      if (stage.kind === 'discover') reached = true;
      if (stage.needs.some((n) => !ctx.byName.has(n.name))) broken = true;
      for (const { to } of edges(ctx, stage)) {
        if (!seen.has(to)) (seen.add(to), queue.push(to));
      }
    }
    if (reached || broken) continue;
    const unit = s.foreach === 'parquet' ? 'parquet file' : 'language';
    ctx.report({
      message: `stage ${quote(s.name)} runs once per ${unit} but does not depend on the discover stage ${quote(discover.name)} (add it to needs, directly or through another stage)`,
      location: ctx.at.key(stagePath(s.name)),
    });
  }
};

/** Where each stage writes, as comparable ids; two stages with one id overwrite each other. */
function outputs(s: RawStage): { id: string; what: string; path: PathSegment[] }[] {
  const text = (key: string): string => {
    const value = s.params[key];
    return typeof value === 'string' ? value : '';
  };
  switch (s.kind) {
    case undefined:
    case 'discover': // singleDiscover covers it
      return [];
    case 'fetch':
      return [{ id: 'fetch', what: 'both download the same parquet files', path: ['kind'] }];
    case 'cmds':
      return [
        {
          id: `cmds:${text('dest')}`,
          what: `both write dest ${quote(text('dest'))}`,
          path: ['params', 'dest'],
        },
      ];
    case 'sync':
    case 'pack':
      return [
        {
          id: `${s.kind}:${text('prefix')}`,
          what: `both write under prefix ${quote(text('prefix'))}`,
          path: ['params', 'prefix'],
        },
      ];
    case 'shell': {
      const list = s.params['outputs'];
      if (!Array.isArray(list)) return [];
      return list.flatMap((o: unknown, i) =>
        typeof o === 'string'
          ? [
              {
                id: `shell:${o}`,
                what: `both write output ${quote(o)}`,
                path: ['params', 'outputs', i],
              },
            ]
          : [],
      );
    }
    default:
      return unreachable(s.kind);
  }
}

/** No two stages of a kind write the same place (same dest, prefix or output template). */
export const duplicateOutputs: Rule = (ctx) => {
  const owners = new Map<string, { stage: RawStage; path: PathSegment[] }>();
  for (const s of ctx.stages) {
    for (const out of outputs(s)) {
      const owner = owners.get(out.id);
      if (owner === undefined) {
        owners.set(out.id, { stage: s, path: out.path });
        continue;
      }
      ctx.report({
        message: `stage ${quote(s.name)} writes the same outputs as stage ${quote(owner.stage.name)}: ${s.kind ?? ''} stages ${out.what}`,
        location: ctx.at.value(stagePath(s.name, ...out.path)),
        supplemental: [
          {
            message: `${quote(owner.stage.name)} writes them here`,
            location: ctx.at.value(stagePath(owner.stage.name, ...owner.path)),
          },
        ],
      });
    }
  }
};

/** Placeholders each expansion provides; `extra` ones come from the field (see templates()). */
const PLACEHOLDERS: { readonly [F in Foreach]: readonly string[] } = {
  parquet: ['language', 'stem', 'shard', 'stage'],
  language: ['language', 'stage'],
  once: ['stage'],
};

/** `{name}`, except `${NAME}` (a shell variable) and `{{...}}`. */
const PLACEHOLDER = /(?<![{$])\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** The template strings of a stage, each with the placeholders only that field may use. */
function templates(s: RawStage): { path: PathSegment[]; value: string; extra: string[] }[] {
  const found: { path: PathSegment[]; value: string; extra: string[] }[] = [];
  const add = (key: string, value: unknown, extra: string[] = [], index?: string | number) => {
    if (typeof value !== 'string') return;
    found.push({ path: ['params', key, ...(index === undefined ? [] : [index])], value, extra });
  };
  switch (s.kind) {
    case undefined:
    case 'discover':
    case 'fetch':
      break;
    case 'cmds':
      add('dest', s.params['dest'], ['blob_id']);
      break;
    case 'sync':
    case 'pack':
      add('prefix', s.params['prefix']);
      break;
    case 'shell': {
      add('command', s.params['command'], ['inputs', 'outputs']);
      for (const key of ['inputs', 'outputs']) {
        const list = s.params[key];
        if (Array.isArray(list)) list.forEach((v: unknown, i) => add(key, v, [], i));
      }
      const env = s.params['env'];
      if (isRecord(env)) for (const [name, v] of Object.entries(env)) add('env', v, [], name);
      break;
    }
    default:
      unreachable(s.kind);
  }
  return found;
}

/** Template strings use only the placeholders their stage and field provide. */
export const placeholders: Rule = (ctx) => {
  for (const s of ctx.stages) {
    if (s.foreach === undefined) continue;
    for (const t of templates(s)) {
      const allowed = [...PLACEHOLDERS[s.foreach], ...t.extra];
      const seen = new Set<string>();
      for (const [text, name = ''] of t.value.matchAll(PLACEHOLDER)) {
        if (allowed.includes(name) || seen.has(name)) continue;
        seen.add(name);
        const path = stagePath(s.name, ...t.path);
        const known = ['blob_id', 'inputs', 'outputs', ...PLACEHOLDERS.parquet].includes(name);
        const guess = didYouMean(name, allowed);
        const list = allowed.map((a) => `{${a}}`).join(', ');
        ctx.report({
          message: `${known ? 'placeholder' : 'unknown placeholder'} ${text} ${known ? 'is not available' : 'used'} in ${pathLabel(path)} (available here: ${list}${guess === undefined ? '' : `; did you mean {${guess}}?`})`,
          location: ctx.at.text(path, text),
        });
      }
    }
  }
};

/** Kind-specific constraints on param values that the schema cannot express. */
export const paramValues: Rule = (ctx) => {
  for (const s of ctx.stages) {
    const given = isRecord(s.declared['params']) ? s.declared['params'] : {};
    const check = (key: string, bad: (v: string) => string | undefined) => {
      const value = given[key];
      const problem = typeof value === 'string' ? bad(value) : undefined;
      if (problem === undefined) return;
      const path = stagePath(s.name, 'params', key);
      ctx.report({
        message: `${pathLabel(path)} ${quote(value)} ${problem}`,
        location: ctx.at.value(path),
      });
    };
    const prefix = (v: string) =>
      v.startsWith('/')
        ? 'must not start with "/" (keys are relative to the bucket)'
        : v !== '' && !v.endsWith('/')
          ? `must be empty or end with "/" (write ${quote(`${v}/`)})`
          : undefined;
    if (s.kind === 'cmds') {
      check('dest', (v) =>
        v.includes('{blob_id}')
          ? undefined
          : 'must contain {blob_id}: each blob gets its own object',
      );
    }
    if (s.kind === 'sync' || s.kind === 'pack') check('prefix', prefix);
    if (s.kind === 'pack') {
      check('content_field', (v) =>
        DATASET_COLUMNS.includes(v)
          ? `collides with the dataset column ${quote(v)}; pick a name that is not one of the 26 columns (default "content")`
          : undefined,
      );
    }
    if (s.kind === 'shell') {
      check('command', (v) => (v !== '' && v.trim() === '' ? 'must not be blank' : undefined));
    }
  }
};

/** Every rule, in the order they run (the output is sorted by location anyway). */
export const RULES: readonly Rule[] = [
  languageNames,
  pinnedRevision,
  unknownKind,
  foreachForKind,
  unknownDependency,
  selfDependency,
  dependencyCycle,
  singleDiscover,
  dependsOnDiscover,
  duplicateOutputs,
  placeholders,
  paramValues,
];
