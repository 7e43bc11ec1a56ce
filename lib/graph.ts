/**
 * PURE. Expands the pipeline's stages (templates) into task instances over languages × parquet
 * files, like Snakemake checkpoints: parquet-level stages of a language appear only once that
 * language's manifest (the discover task's output) is known; until then they are `pending`.
 *
 *   discover:C++ ──► fetch:C++/train-00000-of-00002 ──► cmds:… ──► sync:…
 *                │                                  └──► pack:…
 *                └─► fetch:C++/train-00001-of-00002 ──► …
 *
 * Also: selecting a subgraph for targets / --only, and rendering mermaid or dot.
 */
import { kindOf } from './kinds.js';
import { cmp } from './fingerprint.js';
import type {
  Foreach,
  Manifest,
  ManifestEntry,
  PendingExpansion,
  Pipeline,
  StageConfig,
  StageName,
  TaskId,
  TaskInstance,
  TaskKind,
} from './model.js';

/** The expanded task graph. */
export interface Graph {
  /** Instances by id. */
  tasks: ReadonlyMap<TaskId, TaskInstance>;
  /** Every instance id in a valid run order (stage order, then language, then file). */
  order: TaskId[];
  /** Expansions waiting for a manifest, in stage order. */
  pending: PendingExpansion[];
  /** Stage names in topological order. */
  stageOrder: StageName[];
}

export function taskId(stage: string, language?: string, stem?: string): TaskId {
  if (language === undefined) return stage as TaskId;
  if (stem === undefined) return `${stage}:${language}` as TaskId;
  return `${stage}:${language}/${stem}` as TaskId;
}

/** Parses a task id back into its parts. The stem never contains `/`; a language never does. */
export function parseTaskId(id: string): { stage: string; language?: string; stem?: string } {
  const colon = id.indexOf(':');
  if (colon < 0) return { stage: id };
  const stage = id.slice(0, colon);
  const rest = id.slice(colon + 1);
  const slash = rest.indexOf('/');
  if (slash < 0) return { stage, language: rest };
  return { stage, language: rest.slice(0, slash), stem: rest.slice(slash + 1) };
}

/** Stages sorted so that every stage comes after the ones it needs (declaration order breaks ties). */
export function stageTopoOrder(stages: readonly StageConfig[]): StageConfig[] {
  const byName = new Map(stages.map((s) => [s.name, s]));
  const done = new Set<StageName>();
  const out: StageConfig[] = [];
  const visit = (s: StageConfig, trail: Set<StageName>): void => {
    if (done.has(s.name)) return;
    if (trail.has(s.name)) throw new Error(`Internal error: cycle through stage ${s.name}`);
    trail.add(s.name);
    for (const n of s.needs) {
      const d = byName.get(n);
      if (d === undefined) throw new Error(`Internal error: unknown stage ${n}`);
      visit(d, trail);
    }
    trail.delete(s.name);
    done.add(s.name);
    out.push(s);
  };
  for (const s of stages) visit(s, new Set());
  return out;
}

/** Replaces `{language}`, `{stem}`, `{shard}`, `{stage}` in every string of a params value. */
export function resolveTemplates(
  value: unknown,
  vars: Readonly<Record<string, string>>,
  encode: (v: string) => string = (v) => v,
): unknown {
  if (typeof value === 'string') {
    return value.replace(/(?<!\$)\{(language|stem|shard|stage)\}/g, (m, k: string) => {
      const v = vars[k];
      return v === undefined ? m : encode(v);
    });
  }
  if (Array.isArray(value)) return value.map((v) => resolveTemplates(v, vars, encode));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, resolveTemplates(v, vars, encode)]),
    );
  }
  return value;
}

/**
 * A value as a literal part of a fast-glob pattern: `Graphviz_(DOT)` must not be a group. `+` and
 * `@` stay bare (picomatch reads `\+` as something else; with `(` escaped they start no extglob).
 * Names never hold a backslash (lib/io/hub/hub.ts), which no escape here could express.
 */
export const globLiteral = (v: string): string => v.replace(/[\\*?[\]{}()!|]/g, '\\$&');

/**
 * A stage's params resolved for one instance: templates substituted, except where its kind's
 * `templateFields` say otherwise (a shell `command` is left as written: the task fills it with
 * references, never with values; shell `inputs` are globs: values go in as literals).
 */
export function resolveParams(
  kind: TaskKind,
  params: Readonly<Record<string, unknown>>,
  vars: Readonly<Record<string, string>>,
): Record<string, unknown> {
  const fields = kindOf(kind).templateFields ?? {};
  return Object.fromEntries(
    Object.entries(params).map(([k, v]) => {
      const how = fields[k];
      if (how === 'task') return [k, v];
      return [k, resolveTemplates(v, vars, how === 'glob' ? globLiteral : undefined)];
    }),
  );
}

/** The values of `{stage}`, `{language}`, `{stem}` and `{shard}` for one instance. */
export function templateVars(
  stage: string,
  language: string | undefined,
  file: Pick<ManifestEntry, 'stem'> | undefined,
): Record<string, string> {
  const vars: Record<string, string> = { stage };
  if (language !== undefined) vars.language = language;
  if (file !== undefined) Object.assign(vars, { stem: file.stem, shard: shardOf(file.stem) });
  return vars;
}

/** `train-00003-of-00009` → `00003`. */
export function shardOf(stem: string): string {
  return /-(\d+)-of-\d+$/.exec(stem)?.[1] ?? stem;
}

/**
 * Expands stages over `languages` (already resolved from `all` by the caller, sorted) and the
 * manifests known so far.
 */
export function expandGraph(
  pipeline: Pipeline,
  languages: readonly string[],
  manifests: ReadonlyMap<string, Manifest>,
): Graph {
  const stages = stageTopoOrder(pipeline.stages);
  const byName = new Map(stages.map((s) => [s.name, s]));
  const discover = stages.find((s) => s.kind === 'discover');
  const tasks = new Map<TaskId, TaskInstance>();
  const order: TaskId[] = [];
  const pending: PendingExpansion[] = [];
  /** Instances per stage and language (or '' for once), to resolve dependencies. */
  const index = new Map<string, TaskId[]>();
  const pendingIds = new Set<TaskId>();
  /** stage×language pairs with at least one pending instance. */
  const pendingKeys = new Set<string>();
  const langs = [...languages].sort(cmp);
  const key = (stage: StageName, lang: string): string => `${stage}\0${lang}`;
  const awaitingFor = (lang: string): TaskId => taskId(discover?.name ?? 'discover', lang);

  const add = (t: TaskInstance, lang: string): void => {
    tasks.set(t.id, t);
    order.push(t.id);
    const k = key(t.stage, lang);
    const list = index.get(k);
    if (list === undefined) index.set(k, [t.id]);
    else list.push(t.id);
  };
  const markPending = (stage: StageName, id: TaskId, lang: string): void => {
    pendingIds.add(id);
    pendingKeys.add(key(stage, lang));
    pending.push({ id, stage, language: lang, awaiting: awaitingFor(lang) });
  };

  /** Dependencies of an instance at (lang, stem) on stage `dep`; undefined when not expandable. */
  const depsOn = (
    dep: StageConfig,
    from: Foreach,
    lang: string | undefined,
    stem: string | undefined,
  ): TaskId[] | undefined => {
    const langsFor = from === 'once' ? langs : [lang ?? ''];
    const out: TaskId[] = [];
    for (const l of langsFor) {
      if (dep.foreach === 'once') {
        out.push(taskId(dep.name));
        continue;
      }
      if (dep.foreach === 'language') {
        const id = taskId(dep.name, l);
        if (pendingIds.has(id)) return undefined;
        out.push(id);
        continue;
      }
      // dep is parquet-level
      if (!manifests.has(l) || pendingKeys.has(key(dep.name, l))) return undefined;
      if (from === 'parquet' && stem !== undefined) out.push(taskId(dep.name, l, stem));
      else out.push(...(index.get(key(dep.name, l)) ?? []));
    }
    return [...new Set(out)];
  };

  for (const stage of stages) {
    const needs = stage.needs.map((n) => byName.get(n)).filter((s) => s !== undefined);
    const make = (lang: string | undefined, file: ManifestEntry | undefined): void => {
      const id = taskId(stage.name, lang, file?.stem);
      const deps: TaskId[] = [];
      for (const d of needs) {
        const ids = depsOn(d, stage.foreach, lang, file?.stem);
        if (ids === undefined) {
          markPending(stage.name, id, lang ?? firstUnknown(langs, manifests) ?? '');
          return;
        }
        deps.push(...ids);
      }
      const vars = templateVars(stage.name, lang, file);
      add(
        {
          id,
          stage: stage.name,
          kind: stage.kind,
          ...(lang !== undefined ? { language: lang } : {}),
          ...(file !== undefined ? { file } : {}),
          params: resolveParams(stage.kind, stage.params, vars),
          deps: [...new Set(deps)].sort(cmp),
        },
        lang ?? '',
      );
    };
    switch (stage.foreach) {
      case 'once':
        make(undefined, undefined);
        break;
      case 'language':
        for (const l of langs) make(l, undefined);
        break;
      case 'parquet':
        for (const l of langs) {
          const m = manifests.get(l);
          if (m === undefined) markPending(stage.name, `${stage.name}:${l}/*` as TaskId, l);
          else for (const f of [...m.files].sort((a, b) => cmp(a.stem, b.stem))) make(l, f);
        }
        break;
    }
  }
  return { tasks, order, pending, stageOrder: stages.map((s) => s.name) };
}

function firstUnknown(
  langs: readonly string[],
  manifests: ReadonlyMap<string, Manifest>,
): string | undefined {
  return langs.find((l) => !manifests.has(l));
}

/**
 * Keeps the targets and everything they need. A target is a stage name (all its instances), a
 * task id, or a glob over task ids (`pack:C++/*`). Unknown targets are returned as errors.
 */
export function selectSubgraph(
  graph: Graph,
  targets: readonly string[],
): { graph: Graph; unknown: string[] } {
  const keep = new Set<TaskId>();
  const unknown: string[] = [];
  const stack: TaskId[] = [];
  const keepPending = new Set<string>();
  for (const t of targets) {
    const matcher = globMatcher(t);
    const hits = graph.order.filter((id) => parseTaskId(id).stage === t || matcher(id));
    // A task id under a language not yet discovered selects that language's expansion.
    const parsed = parseTaskId(t);
    const pendingHits = graph.pending.filter(
      (p) =>
        p.stage === t ||
        matcher(p.id) ||
        (parsed.stage === p.stage && parsed.language === p.language),
    );
    if (hits.length === 0 && pendingHits.length === 0) unknown.push(t);
    stack.push(...hits);
    for (const p of pendingHits) keepPending.add(p.id);
  }
  // Pending expansions need their discover task, and upstream stages' pending expansions.
  const stageNeeds = closureOfStages(
    graph,
    graph.pending.filter((p) => keepPending.has(p.id)),
  );
  for (const p of graph.pending) {
    if (stageNeeds.has(`${p.stage}\0${p.language}`)) keepPending.add(p.id);
  }
  for (const p of graph.pending) if (keepPending.has(p.id)) stack.push(p.awaiting);
  while (stack.length > 0) {
    const id = stack.pop();
    if (id === undefined || keep.has(id)) continue;
    const t = graph.tasks.get(id);
    if (t === undefined) continue;
    keep.add(id);
    stack.push(...t.deps);
  }
  const tasks = new Map([...graph.tasks].filter(([id]) => keep.has(id)));
  return {
    graph: {
      tasks,
      order: graph.order.filter((id) => keep.has(id)),
      pending: graph.pending.filter((p) => keepPending.has(p.id)),
      stageOrder: graph.stageOrder,
    },
    unknown,
  };
}

/** Stage×language pairs that a set of pending expansions transitively waits on. */
function closureOfStages(graph: Graph, roots: PendingExpansion[]): Set<string> {
  // Pending expansions of earlier stages for the same language are needed too; since we cannot
  // see their edges yet, keep every pending expansion of that language in earlier stages.
  const out = new Set<string>();
  for (const r of roots) {
    const idx = graph.stageOrder.indexOf(r.stage);
    for (const s of graph.stageOrder.slice(0, idx + 1)) out.add(`${s}\0${r.language}`);
  }
  return out;
}

/** Restricts a list of languages to `only` (exact names). */
export function filterLanguages(languages: readonly string[], only: readonly string[] | undefined) {
  if (only === undefined || only.length === 0) return { languages: [...languages], unknown: [] };
  const set = new Set(languages);
  return {
    languages: languages.filter((l) => only.includes(l)),
    unknown: only.filter((l) => !set.has(l)),
  };
}

/** `*` matches any run of characters (including `/`); everything else is literal. */
export function globMatcher(pattern: string): (s: string) => boolean {
  if (!pattern.includes('*')) return (s) => s === pattern;
  const re = new RegExp(
    '^' +
      pattern
        .split('*')
        .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*') +
      '$',
  );
  return (s) => re.test(s);
}

/** Mermaid or Graphviz dot rendering of the graph. */
export function renderGraph(graph: Graph, format: 'mermaid' | 'dot'): string {
  const nodes = [...graph.order, ...graph.pending.map((p) => p.id)];
  const num = new Map(nodes.map((id, i) => [id, `t${i}`]));
  const edges: [TaskId, TaskId][] = [];
  for (const id of graph.order)
    for (const d of graph.tasks.get(id)?.deps ?? []) edges.push([d, id]);
  for (const p of graph.pending) edges.push([p.awaiting, p.id]);
  if (format === 'mermaid') {
    const q = (s: string): string => s.replace(/"/g, '#quot;');
    return [
      'flowchart LR',
      ...nodes.map((id) => `  ${num.get(id) ?? ''}["${q(id)}"]`),
      ...edges.map(([a, b]) => `  ${num.get(a) ?? a} --> ${num.get(b) ?? b}`),
      '',
    ].join('\n');
  }
  const q = (s: string): string => JSON.stringify(s);
  return [
    'digraph stackflow {',
    '  rankdir=LR;',
    ...nodes.map((id) => `  ${q(id)};`),
    ...edges.map(([a, b]) => `  ${q(a)} -> ${q(b)};`),
    '}',
    '',
  ].join('\n');
}
