/**
 * PURE. What a task kind declares besides its run, read by the planner side (lib/config validates
 * and defaults params with it, lib/graph resolves templates, lib/outputs checks outputs, the
 * report sums counts). Each kind declares these in its folder (`tasks/<kind>/index.ts`, through
 * `defineTask` in lib/task-api.ts); nothing in lib/ switches on a kind's name for them.
 *
 * The params schema is JSON Schema (ajv, draft-07), written `as const` so that the params type a
 * task's `run` sees follows from it (`ParamsOf`): a param with a `default` (or `required`) is
 * always there, any other may be absent. Its `default`s are the params' defaults and its property
 * order their canonical key order (both enter fingerprints: never reorder a kind's properties).
 */
import type { Foreach, TaskInstance } from './model.js';
import { quote } from './config/diagnostics.js';
import type { TypedKindDefinition } from './task-api.js';

/** One property of a params schema (the keywords stackflow's schemas use). */
export interface ParamSchema {
  readonly description?: string;
  readonly type?: 'string' | 'integer' | 'number' | 'boolean' | 'array' | 'object';
  readonly enum?: readonly unknown[];
  readonly default?: unknown;
  readonly [keyword: string]: unknown;
}

/** A kind's params schema: a closed mapping of named params. */
export interface ParamsSchema {
  readonly type: 'object';
  readonly additionalProperties: false;
  readonly required?: readonly string[];
  readonly properties: Readonly<Record<string, ParamSchema>>;
}

/** The value type a property schema accepts. */
export type ParamValue<S> = S extends { readonly enum: readonly (infer E)[] }
  ? E
  : S extends { readonly type: 'string' }
    ? string
    : S extends { readonly type: 'integer' | 'number' }
      ? number
      : S extends { readonly type: 'boolean' }
        ? boolean
        : S extends { readonly type: 'array'; readonly items: infer I }
          ? readonly ParamValue<I>[]
          : S extends { readonly type: 'object'; readonly additionalProperties: infer A }
            ? Readonly<Record<string, ParamValue<A>>>
            : unknown;

type RequiredOf<S> = S extends { readonly required: readonly (infer R)[] } ? R : never;
type Present<S extends ParamsSchema, K> =
  K extends RequiredOf<S>
    ? true
    : K extends keyof S['properties']
      ? S['properties'][K] extends { readonly default: unknown }
        ? true
        : false
      : false;

/**
 * The params a task gets, from its schema: validated and defaulted when pipeline.yaml was read,
 * so a param with a default (or a required one) is always there.
 */
export type ParamsOf<S extends ParamsSchema> = {
  readonly [K in keyof S['properties'] as Present<S, K> extends true ? K : never]: ParamValue<
    S['properties'][K]
  >;
} & {
  readonly [K in keyof S['properties'] as Present<S, K> extends true ? never : K]?: ParamValue<
    S['properties'][K]
  >;
};

/** Params as the lenient checks see them: defaults applied, otherwise unchecked. */
export type RawParams = Readonly<Record<string, unknown>>;

/** A step of a path into pipeline.yaml: a key or a list index. */
export type PathSegment = string | number;

/** A string inside a stage's params: where it is and its text. */
export interface Field {
  /** Path below the stage, e.g. `['params', 'outputs', 0]`. */
  path: PathSegment[];
  /** The string itself (a template, or a description of what the stage writes). */
  value: string;
  /** Placeholders this field may use beyond the expansion's own. */
  extra?: readonly string[];
  /** What two stages writing this same output do, when it is not a param (fetch's parquets). */
  clash?: string;
}

/** The strings at `params[key]`: the value itself, or each item of a list or mapping. */
export function fields(params: RawParams, key: string, extra?: readonly string[]): Field[] {
  const value = params[key];
  if (typeof value === 'string') return [{ path: ['params', key], value, extra }];
  const entries = Array.isArray(value)
    ? value.entries()
    : typeof value === 'object' && value !== null
      ? Object.entries(value)
      : [];
  return [...entries].flatMap(([i, v]: [PathSegment, unknown]) =>
    typeof v === 'string' ? [{ path: ['params', key, i], value: v }] : [],
  );
}

/** Why a bucket key prefix is wrong, or undefined: keys are relative, a prefix ends with `/`. */
export const prefixProblem = (v: string): string | undefined =>
  v.startsWith('/')
    ? 'must not start with "/" (keys are relative to the bucket)'
    : v !== '' && !v.endsWith('/')
      ? `must be empty or end with "/" (write ${quote(`${v}/`)})`
      : undefined;

/** What pipeline.yaml may say about a stage of a kind, beyond its params schema. */
export interface KindTraits {
  /** The expansion; a stage of this kind always has it unless `chooseForeach`. */
  foreach: Foreach;
  /** The stage may set `foreach` itself (shell); `foreach` is then its default. */
  chooseForeach?: boolean;
  /** Template strings, checked for placeholders. */
  templates?(params: RawParams): Field[];
  /** Where the stage writes; two stages of a kind with one output overwrite each other. */
  writes?(params: RawParams): Field[];
  /** Why a given string param is wrong (undefined when it is fine), by param name. */
  checks?: Readonly<Record<string, (value: string) => string | undefined>>;
  /** The kind of stage whose outputs it reads: one must be among its needs (stats reads pack). */
  reads?: string;
  /**
   * Params resolved per instance other than by plain substitution: `task` kept as written (the
   * task fills it itself, as shell's command), `glob` with values as glob literals.
   */
  templateFields?: Readonly<Record<string, 'task' | 'glob'>>;
  /**
   * URL params, with the schemes each accepts; normalized like the pipeline's own URLs (relative
   * `file://` against the pipeline's directory). `orContentSource`: absent means content.source.
   */
  urls?: Readonly<
    Record<string, { schemes: readonly ('s3' | 'file' | 'hf')[]; orContentSource?: boolean }>
  >;
  /** Default time limits (`timeout`, `stall_timeout` syntax); absent: none. */
  limits?: { timeout?: string; stall?: string };
}

/**
 * Where a task of a kind writes, for the planner's `output-missing` check against one listing of
 * the work store and one of the bucket (lib/outputs.ts). Each hook is optional: a kind without
 * them leaves nothing outside the state store (discover).
 */
export interface KindOutputs<P> {
  /** Keys it writes into the work store. */
  work?(task: TaskInstance, params: P): string[];
  /** Keys it writes into the bucket, given the work-store keys its dependencies write. */
  bucket?(task: TaskInstance, params: P, upstreamWork: readonly string[]): string[];
  /**
   * The family of parts it writes into the bucket (`<family><part>-of-<total>.jsonl.zst`, plus
   * `.errors.jsonl` sidecars): complete when parts 0..total-1 are there, and their sizes are
   * checked against its marker's summary.
   */
  partFamily?(task: TaskInstance, params: P): string | undefined;
  /** The bucket prefix it writes under: planning lists only these prefixes. */
  bucketPrefix?(params: P): string;
}

/** What a task's counts add to the report's totals and throughput (lib/report-html/model.ts). */
export interface KindMetrics {
  rowsIn: number;
  rowsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Rows a task read, for its tooltip and rows/s. */
  rows: number | undefined;
  /** Bytes a task moved, for its tooltip and MB/s. */
  bytes: number | undefined;
  /** Object GETs: pack fetches one content blob per row, fetch one parquet. */
  gets: number;
}

/** A count as a total: 0 when absent or not a finite number. */
export const count = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
/** A count shown for one task: undefined when absent. */
export const maybeCount = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : undefined;

/** The metrics of a kind whose counts add nothing to the report's totals. */
export function noMetrics(): KindMetrics {
  return {
    rowsIn: 0,
    rowsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    rows: undefined,
    bytes: undefined,
    gets: 0,
  };
}

/** Declares a kind; the schema is read `as const`, so its hooks and `run` see typed params. */
export const defineTask = <K extends string, const S extends ParamsSchema>(
  d: TypedKindDefinition<K, S>,
): TypedKindDefinition<K, S> => d;

/** The params schema of a kind without params. */
export const NO_PARAMS = { type: 'object', additionalProperties: false, properties: {} } as const;
