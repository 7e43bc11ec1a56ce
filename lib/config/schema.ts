/**
 * PURE. The JSON Schema of pipeline.yaml, assembled when first used from the pipeline's own
 * fields (base-schema.json) and each kind's params schema (tasks/<kind>/index.ts): the `kind`
 * enum lists the registry's kinds in order, and one `if kind: X then params: <X's schema>` per
 * kind (params required when its schema requires a field). `npm run schema` writes the same
 * schema to schema.json for editors (a test keeps it current).
 */
import type { Kinds } from '../kinds.js';
import type { TaskKind } from '../model.js';
import base from './base-schema.json' with { type: 'json' };

/** The `$defs` entry of a kind's params: `stats-merge` → `statsMergeParams`. */
const defName = (kind: string): string =>
  `${kind.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase())}Params`;

/** The whole schema for these kinds. */
export function pipelineSchema(kinds: Kinds): Record<string, unknown> {
  const names = Object.keys(kinds) as TaskKind[];
  const schema = structuredClone(base);
  const stage = schema.$defs.stage;
  const params: Record<string, unknown> = {};
  for (const kind of names) params[defName(kind)] = structuredClone(kinds[kind].params);
  return {
    ...schema,
    $defs: {
      ...schema.$defs,
      stage: {
        ...stage,
        properties: { ...stage.properties, kind: { ...stage.properties.kind, enum: names } },
        allOf: names.map((kind) => ({
          if: { properties: { kind: { const: kind } }, required: ['kind'] },
          then: {
            ...((kinds[kind].params.required ?? []).length > 0 ? { required: ['params'] } : {}),
            properties: { params: { $ref: `#/$defs/${defName(kind)}` } },
          },
        })),
      },
      ...params,
    },
  };
}

/** A stage field's default as base-schema.json declares it (`retries`). */
export const STAGE_RETRIES_DEFAULT: number = base.$defs.stage.properties.retries.default;
