/**
 * Semantic checks of pipeline.yaml: what JSON Schema cannot say (dependencies, cycles, outputs
 * that collide, templates, names). Each rule is a small function that reads a `RuleContext` and
 * reports through it; all of them run, so the user sees every problem at once.
 *
 * Rules read a lenient view of the document: the schema may have failed, so each rule looks only
 * at the parts that have the right shape and leaves the rest to the schema errors.
 *
 * Pure: no I/O. URLs are checked where they are normalized (parse.ts).
 */
import type { Diagnostic } from '../errors.js';
import type { Foreach, TaskKind } from '../model.js';
import { kindNames, kindOf } from '../kinds.js';
import type { Locator, PathSegment } from './diagnostics.js';
import { timeLimits } from './limits.js';
import { didYouMean, dig, isRecord, pathLabel, quote, suggestion } from './diagnostics.js';

/** One stage as written, read leniently (fields with the wrong type are left out). */
export interface RawStage {
  /** The key under `tasks:`. */
  name: string;
  /** The kind, when it is one stackflow knows. */
  kind: TaskKind | undefined;
  /** The expansion: a shell stage's valid `foreach`, else the kind's; undefined for no kind. */
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
  /** Turns paths into the document into locations. */
  readonly at: Locator;
  /** Records one problem (always an error). */
  report(diagnostic: Omit<Diagnostic, 'severity'>): void;
}

/** A semantic check: reads the context, reports through `ctx.report`. */
export type Rule = (ctx: RuleContext) => void;

/** Placeholders each expansion provides (a kind's template fields may add their own). */
const PLACEHOLDERS: { readonly [F in Foreach]: readonly string[] } = {
  parquet: ['language', 'stem', 'shard', 'stage'],
  language: ['language', 'stage'],
  once: ['stage'],
};

/** `{name}`, except `${NAME}` (a shell variable) and `{{...}}`. */
const PLACEHOLDER = /(?<![{$])\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** The fields a stage may have (schema.json's `stage` definition). */
const STAGE_FIELDS = [
  'kind',
  'needs',
  'foreach',
  'limit',
  'retries',
  'timeout',
  'stall_timeout',
  'params',
];

const stagePath = (name: string, ...rest: PathSegment[]): PathSegment[] => ['tasks', name, ...rest];

/** The stages a stage needs that exist (unknown names and itself left out). */
const edges = (ctx: RuleContext, s: RawStage): { to: RawStage; index: number }[] =>
  s.needs.flatMap((need) => {
    const to = ctx.byName.get(need.name);
    return to === undefined || to === s ? [] : [{ to, index: need.index }];
  });

// ---------------------------------------------------------------------------------------------
// The rules

/**
 * Why a language name cannot be a folder under data/, or undefined when it can: the same rules
 * as for names a listing returns (lib/io/hub/hub.ts `checkRemoteName`). Shell metacharacters are
 * fine (`Ren'Py`): names are never code.
 */
export function languageProblem(name: string): string | undefined {
  if (name === '') return 'it is empty';
  if (name === '.' || name === '..') return `${quote(name)} is not a folder name`;
  if (name.includes('/')) return 'it contains "/"';
  if (name.includes('\\')) return 'it contains a backslash';
  if (name.includes('\0')) return 'it contains a NUL character';
  // eslint-disable-next-line no-control-regex
  if (/[\u0001-\u001f\u007f-\u009f]/.test(name)) return 'it contains a control character';
  if (name.trim() !== name) return 'it starts or ends with whitespace';
  return undefined;
}

/** Every listed language is a legal folder name (`C++` and `ASN.1` are; `../etc` is not). */
export const languageNames: Rule = (ctx) => {
  const languages = dig(ctx.data, ['dataset', 'languages']);
  if (!Array.isArray(languages)) return;
  languages.forEach((name: unknown, index) => {
    const problem = typeof name === 'string' ? languageProblem(name) : undefined;
    if (problem === undefined) return;
    ctx.report({
      message: `language ${quote(name)} is not a legal folder name under data/: ${problem}`,
      location: ctx.at.value(['dataset', 'languages', index]),
    });
  });
};

/** `kind` is a kind of the registry (the schema's enum error is left to this rule). */
export const unknownKind: Rule = (ctx) => {
  for (const s of ctx.stages) {
    const declared = s.declared['kind'];
    if (declared === undefined || s.kind !== undefined) continue;
    const path = stagePath(s.name, 'kind');
    const shown = typeof declared === 'string' ? quote(declared) : ctx.at.sourceOf(path);
    const names = kindNames();
    const hint = typeof declared === 'string' ? suggestion(declared, names) : '';
    ctx.report({
      message: `unknown task kind ${shown ?? quote(declared)} (expected one of: ${names.join(', ')}${hint})`,
      location: ctx.at.value(path),
    });
  }
};

/** Only shell stages choose their expansion; the others have exactly one that makes sense. */
export const foreachForKind: Rule = (ctx) => {
  for (const s of ctx.stages) {
    const declared = s.declared['foreach'];
    if (s.kind === undefined || typeof declared !== 'string') continue;
    if (kindOf(s.kind).chooseForeach === true) continue;
    if (!Object.hasOwn(PLACEHOLDERS, declared)) continue; // not a foreach at all: schema error
    const expected = kindOf(s.kind).foreach;
    if (declared === expected) continue;
    const unit = expected === 'parquet' ? 'parquet file' : expected;
    ctx.report({
      message: `foreach ${quote(declared)} is not allowed for kind ${quote(s.kind)}: ${s.kind} stages always run once per ${unit} (only shell stages may choose foreach)`,
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
    for (const need of s.needs.filter((n) => n.name === s.name)) {
      ctx.report({
        message: `stage ${quote(s.name)} needs itself`,
        location: ctx.at.value(stagePath(s.name, 'needs', need.index)),
      });
    }
  }
};

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
    const stack = [{ stage: root, edges: edges(ctx, root), next: 0 }];
    state.set(root, 'open');
    for (let top = stack.at(-1); top !== undefined; top = stack.at(-1)) {
      const edge = top.edges[top.next++];
      if (edge === undefined) {
        state.set(top.stage, 'done');
        stack.pop();
      } else if (!state.has(edge.to)) {
        state.set(edge.to, 'open');
        stack.push({ stage: edge.to, edges: edges(ctx, edge.to), next: 0 });
      } else if (state.get(edge.to) === 'open') {
        const cycle = stack.slice(stack.findIndex((f) => f.stage === edge.to)).map((f) => f.stage);
        const first = cycle.reduce((a, b) => ((order.get(b) ?? 0) < (order.get(a) ?? 0) ? b : a));
        const trail = [
          ...cycle.slice(cycle.indexOf(first)),
          ...cycle.slice(0, cycle.indexOf(first)),
        ];
        const names = [...trail, first].map((s) => s.name).join(' -> ');
        if (reported.has(names)) continue;
        reported.add(names);
        ctx.report({
          message: `dependency cycle: ${names}`,
          location: ctx.at.key(stagePath(first.name)),
          supplemental: trail.map((s, i) => {
            const to = trail[i + 1] ?? first;
            const index = s.needs.find((n) => n.name === to.name)?.index ?? 0;
            return {
              message: `${quote(s.name)} needs ${quote(to.name)}`,
              location: ctx.at.value(stagePath(s.name, 'needs', index)),
            };
          }),
        });
      }
    }
  }
};

/** Exactly one discover stage: it lists the parquet files every other stage expands over. */
export const singleDiscover: Rule = (ctx) => {
  if (!isRecord(ctx.data['tasks'])) return;
  const [first, ...extras] = ctx.stages.filter((s) => s.kind === 'discover');
  if (first === undefined) {
    // A misspelled kind is the likely culprit; unknownKind says so.
    if (ctx.stages.some((s) => s.kind === undefined)) return;
    ctx.report({
      message:
        'no discover stage: add one, e.g. `discover: { kind: discover }`, to list the parquet files',
      location: ctx.at.key(['tasks']),
    });
  }
  for (const extra of extras) {
    ctx.report({
      message: `stage ${quote(extra.name)} is a second discover stage; a pipeline has exactly one`,
      location: ctx.at.value(stagePath(extra.name, 'kind')),
      supplemental: [
        {
          message: `the first discover stage is ${quote(first?.name)}`,
          location: ctx.at.value(stagePath(first?.name ?? '', 'kind')),
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
    if (s.kind === 'discover' || s.foreach === undefined || s.foreach === 'once') continue;
    const seen = new Set([s]);
    // A misspelled field or an unknown need hides the path; other errors already say so.
    let reached = false;
    let broken = false;
    for (const stage of seen) {
      const needs = stage.declared['needs'];
      reached ||= stage.kind === 'discover';
      broken ||=
        stage.needs.some((n) => !ctx.byName.has(n.name)) ||
        Object.keys(stage.declared).some((k) => !STAGE_FIELDS.includes(k)) ||
        (needs !== undefined && !Array.isArray(needs));
      for (const { to } of edges(ctx, stage)) seen.add(to);
    }
    if (reached || broken) continue;
    const unit = s.foreach === 'parquet' ? 'parquet file' : 'language';
    ctx.report({
      message: `stage ${quote(s.name)} runs once per ${unit} but does not depend on the discover stage ${quote(discover.name)} (add it to needs, directly or through another stage)`,
      location: ctx.at.key(stagePath(s.name)),
    });
  }
};

/** No two stages of a kind write the same place (same dest, prefix or output template). */
export const duplicateOutputs: Rule = (ctx) => {
  const owners = new Map<string, { stage: RawStage; path: PathSegment[] }>();
  for (const s of ctx.stages) {
    for (const out of s.kind === undefined ? [] : (kindOf(s.kind).writes?.(s.params) ?? [])) {
      const id = `${s.kind ?? ''}\0${out.value}`;
      const owner = owners.get(id);
      if (owner === undefined) {
        owners.set(id, { stage: s, path: out.path });
        continue;
      }
      const field = out.path[1] === 'outputs' ? 'output' : String(out.path[1]);
      const what = out.clash ?? `both are ${s.kind ?? ''} stages with ${field} ${quote(out.value)}`;
      ctx.report({
        message: `stage ${quote(s.name)} writes the same outputs as stage ${quote(owner.stage.name)}: ${what}`,
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

/** Template strings use only the placeholders their stage and field provide. */
export const placeholders: Rule = (ctx) => {
  const everything = ['blob_id', 'inputs', 'outputs', ...PLACEHOLDERS.parquet];
  for (const s of ctx.stages) {
    if (s.kind === undefined || s.foreach === undefined) continue;
    for (const field of kindOf(s.kind).templates?.(s.params) ?? []) {
      const allowed = [...PLACEHOLDERS[s.foreach], ...(field.extra ?? [])];
      const seen = new Set<string>();
      for (const [text, name = ''] of field.value.matchAll(PLACEHOLDER)) {
        if (allowed.includes(name) || seen.has(name)) continue;
        seen.add(name);
        const path = stagePath(s.name, ...field.path);
        const guess = didYouMean(name, allowed);
        const what = everything.includes(name)
          ? `placeholder ${text} is not available`
          : `unknown placeholder ${text}`;
        ctx.report({
          message: `${what} in ${pathLabel(path)} (available here: ${allowed.map((a) => `{${a}}`).join(', ')}${guess === undefined ? '' : `; did you mean {${guess}}?`})`,
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
    for (const [key, check] of Object.entries(s.kind ? (kindOf(s.kind).checks ?? {}) : {})) {
      const value = given[key];
      const problem = typeof value === 'string' ? check(value) : undefined;
      if (problem === undefined) continue;
      const path = stagePath(s.name, 'params', key);
      ctx.report({
        message: `${pathLabel(path)} ${quote(value)} ${problem}`,
        location: ctx.at.value(path),
      });
    }
  }
};

/**
 * What the statistics stages read comes through their needs: a stats stage reads the parts of
 * the pack stages it needs, a stats-merge stage the files of the stats stages it needs. Without
 * one, the stage would run and find nothing; say so before anything runs.
 */
export const statsInputs: Rule = (ctx) => {
  for (const s of ctx.stages) {
    const want = s.kind === undefined ? undefined : kindOf(s.kind).reads;
    if (want === undefined) continue;
    const needs = s.needs.map((n) => ctx.byName.get(n.name));
    // An unknown dependency is reported by its own rule.
    if (needs.some((n) => n === undefined)) continue;
    if (needs.some((n) => n?.kind === want)) continue;
    ctx.report({
      message: `stage ${quote(s.name)} (kind ${s.kind ?? ''}) reads the output of a ${want} stage, but needs none: add one to its needs`,
      location: ctx.at.key(stagePath(s.name)),
    });
  }
};

/** Every rule, in the order they run (the output is sorted by location anyway). */
export const RULES: readonly Rule[] = [
  languageNames,
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
  timeLimits,
  statsInputs,
];
