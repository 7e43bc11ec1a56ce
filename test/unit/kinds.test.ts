/**
 * Each kind's folder is the one home of what the kind is: its params schema gives the params'
 * defaults, their order and the type `run` gets; the registry is the one list of kinds.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import { paramDefaults, parsePipeline } from '../../lib/config/parse.js';
import { kindNames, kindOf } from '../../lib/kinds.js';
import type { TaskKind } from '../../lib/model.js';
import type { CmdsParams } from '../../tasks/cmds/index.js';
import type { PackStageParams } from '../../tasks/pack/index.js';
import type { ShellParams } from '../../tasks/shell/index.js';
import { registry } from '../../tasks/index.js';

describe('the kinds', () => {
  it('are the registry, in its order', () => {
    expect(kindNames()).toEqual(Object.keys(registry));
    expect(kindNames()).toEqual([
      'discover',
      'fetch',
      'cmds',
      'sync',
      'pack',
      'stats',
      'stats-merge',
      'shell',
    ] satisfies TaskKind[]);
    for (const k of kindNames()) expect(kindOf(k).kind).toBe(k);
  });

  it('type their params from their schema: defaulted ones always there, others optional', () => {
    expectTypeOf<PackStageParams['rows_per_part']>().toEqualTypeOf<number>();
    expectTypeOf<PackStageParams['prefix']>().toEqualTypeOf<string>();
    expectTypeOf<PackStageParams['fetcher']>().toEqualTypeOf<'sdk' | 's5cmd'>();
    expectTypeOf<PackStageParams['concurrency']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<CmdsParams['source']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<ShellParams['command']>().toEqualTypeOf<string>();
    expectTypeOf<ShellParams['inputs']>().toEqualTypeOf<readonly string[]>();
    expectTypeOf<ShellParams['env']>().toEqualTypeOf<Readonly<Record<string, string>>>();
  });

  it('default their params once, when pipeline.yaml is read, in schema order', () => {
    const text = `version: 1
dataset: { repo: a/b, revision: r, source: file://hf, languages: [C] }
content: { source: file://swh }
tasks:
  discover: { kind: discover }
  fetch: { kind: fetch, needs: [discover] }
  pack: { kind: pack, needs: [fetch], params: { zstd_level: 5, rows_per_part: 7 } }
`;
    const p = parsePipeline(text, { path: '/p/pipeline.yaml', displayName: 'p', cacheDir: '/c' });
    if (!p.ok) throw new Error(JSON.stringify(p.error));
    const pack = p.value.stages.find((s) => s.kind === 'pack');
    expect(pack?.params).toEqual({ ...paramDefaults('pack'), zstd_level: 5, rows_per_part: 7 });
    // The order of the schema's properties, whatever the order written: it enters fingerprints.
    expect(Object.keys(pack?.params ?? {})).toEqual(Object.keys(paramDefaults('pack')));
    expect(Object.keys(paramDefaults('pack'))).toEqual(
      Object.keys(kindOf('pack').params.properties).filter(
        (k) => 'default' in (kindOf('pack').params.properties[k] ?? {}),
      ),
    );
  });
});
