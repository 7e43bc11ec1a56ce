/**
 * lib/config/schema.json (for editors and the published package) is the schema stackflow
 * validates with: assembled from the pipeline's fields and every kind's params.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { pipelineSchema } from '../../lib/config/schema.js';
import { kinds, kindNames } from '../../lib/kinds.js';

describe('schema.json', () => {
  it('is current (run `npm run schema` after changing a kind`s params)', () => {
    const file = JSON.parse(
      readFileSync(new URL('../../lib/config/schema.json', import.meta.url), 'utf8'),
    ) as unknown;
    expect(file).toEqual(pipelineSchema(kinds()));
  });

  it('has one params schema per kind of the registry, in registry order', () => {
    const schema = pipelineSchema(kinds()) as {
      $defs: { stage: { properties: { kind: { enum: string[] } }; allOf: unknown[] } };
    };
    expect(schema.$defs.stage.properties.kind.enum).toEqual(kindNames());
    expect(schema.$defs.stage.allOf).toHaveLength(kindNames().length);
  });
});
