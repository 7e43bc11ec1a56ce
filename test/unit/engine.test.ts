import { describe, expect, it } from 'vitest';
import { canonicalJson, changedParams, fingerprintGraph } from '../../lib/fingerprint.js';
import type { Fingerprint } from '../../lib/fingerprint.js';
import {
  expandGraph,
  globMatcher,
  parseTaskId,
  renderGraph,
  selectSubgraph,
  taskId,
} from '../../lib/graph.js';
import type { Graph } from '../../lib/graph.js';
import type { Manifest, Pipeline, TaskId } from '../../lib/model.js';
import { bucketPrefixes, indexListing, missingOutputs, outputsSummary } from '../../lib/outputs.js';
import type { MarkerRef } from '../../lib/planner.js';
import { plan } from '../../lib/planner.js';
import { manifest, pipeline, stage, uniformKinds } from '../helpers/fixtures.js';
import { markerKey, parseMarkerKey } from '../../lib/io/state/keys.js';

const manifests = (...ms: Manifest[]): Map<string, Manifest> =>
  new Map(ms.map((m) => [m.language, m]));

const fingerprints = (p: Pipeline, g: Graph, version = '1'): Map<TaskId, Fingerprint> =>
  fingerprintGraph({
    graph: g,
    stages: p.stages,
    kinds: uniformKinds(version),
    revision: p.dataset.revision,
  });

const refOf = (fp: Fingerprint): MarkerRef => ({
  key: 'k',
  fingerprint: fp.hash,
  code: fp.components.code,
  params: fp.components.params,
  inputs: fp.components.inputs,
});

function planFor(
  p: Pipeline,
  g: Graph,
  markers: Map<TaskId, MarkerRef[]>,
  extra: Partial<Parameters<typeof plan>[0]> = {},
) {
  return plan({
    graph: g,
    fingerprints: fingerprints(p, g),
    markers,
    stageParams: new Map(p.stages.map((s) => [s.name, s.params])),
    paramsArchive: new Map(),
    missingOutputs: new Map(),
    forced: () => false,
    ...extra,
  });
}

describe('fingerprint', () => {
  it('is canonical: key order does not matter, values do', () => {
    expect(canonicalJson({ b: 1, a: { d: 2, c: [3, { f: 1, e: 2 }] } })).toBe(
      '{"a":{"c":[3,{"e":2,"f":1}],"d":2},"b":1}',
    );
  });
  it('changes only the component that changed', () => {
    const p = pipeline();
    const g = expandGraph(p, ['C++'], manifests(manifest('C++', 1)));
    const a = fingerprints(p, g);
    const b = fingerprints(p, g, '2');
    const id = taskId('pack', 'C++', 'train-00000-of-00001');
    expect(a.get(id)?.hash).not.toBe(b.get(id)?.hash);
    expect(a.get(id)?.components.code).not.toBe(b.get(id)?.components.code);
    expect(a.get(id)?.components.params).toBe(b.get(id)?.components.params);
    const p2 = pipeline([], { pack: { rows_per_part: 7 } });
    const c = fingerprints(p2, expandGraph(p2, ['C++'], manifests(manifest('C++', 1))));
    expect(c.get(id)?.components.params).not.toBe(a.get(id)?.components.params);
    expect(c.get(id)?.components.code).toBe(a.get(id)?.components.code);
    // fetch does not depend on pack params
    const f = taskId('fetch', 'C++', 'train-00000-of-00001');
    expect(c.get(f)?.hash).toBe(a.get(f)?.hash);
  });
  it('keeps secret-looking env values out of the stored data, yet changes with them', () => {
    const p = pipeline([
      stage('up', 'shell', [], {
        params: { command: 'x', env: { HF_TOKEN: 'hf_s3cr3t', MODE: 'fast' } },
      }),
    ]);
    const fp = (token: string) => {
      const q = {
        ...p,
        stages: p.stages.map((s) =>
          s.name === 'up'
            ? { ...s, params: { command: 'x', env: { HF_TOKEN: token, MODE: 'fast' } } }
            : s,
        ),
      };
      const g = expandGraph(q, ['C++'], new Map());
      return fingerprints(q, g).get(taskId('up'));
    };
    const a = fp('hf_s3cr3t');
    expect(JSON.stringify(a?.data)).not.toContain('hf_s3cr3t');
    expect(JSON.stringify(a?.data)).toContain('"MODE":"fast"');
    expect(fp('hf_other')?.hash).not.toBe(a?.hash);
  });
  it('names the changed params', () => {
    expect(changedParams({ a: 1, b: [1], c: 3 }, { a: 1, b: [2], d: 4 })).toEqual(['b', 'c', 'd']);
  });
});

describe('graph expansion', () => {
  it('waits for manifests, then expands per parquet with readable ids', () => {
    const p = pipeline();
    const g0 = expandGraph(p, ['C++', 'Python'], new Map());
    expect(g0.order).toEqual(['discover:C++', 'discover:Python']);
    expect(g0.pending.map((x) => x.id)).toContain('pack:C++/*');
    const g = expandGraph(p, ['C++', 'Python'], manifests(manifest('C++', 2)));
    expect(g.order).toContain('pack:C++/train-00001-of-00002');
    expect(g.tasks.get(taskId('sync', 'C++', 'train-00001-of-00002'))?.deps).toEqual([
      'cmds:C++/train-00001-of-00002',
      'fetch:C++/train-00001-of-00002',
    ]);
    expect(g.pending.map((x) => x.id)).toEqual([
      'fetch:Python/*',
      'cmds:Python/*',
      'sync:Python/*',
      'pack:Python/*',
    ]);
  });
  it('gathers parquet-level outputs into language- and once-level shell stages', () => {
    const p = pipeline([
      stage('stats', 'shell', ['pack'], {
        foreach: 'language',
        params: { command: 'x', outputs: ['s/{language}.txt'] },
      }),
      stage('all', 'shell', ['stats'], { params: { command: 'y' } }),
    ]);
    const g = expandGraph(
      p,
      ['C++', 'Graphviz_(DOT)'],
      manifests(manifest('C++', 2), manifest('Graphviz_(DOT)', 1)),
    );
    expect(g.tasks.get(taskId('stats', 'C++'))?.deps).toEqual([
      'pack:C++/train-00000-of-00002',
      'pack:C++/train-00001-of-00002',
    ]);
    expect(g.tasks.get(taskId('stats', 'C++'))?.params.outputs).toEqual(['s/C++.txt']);
    expect(g.tasks.get(taskId('all'))?.deps).toEqual(['stats:C++', 'stats:Graphviz_(DOT)']);
    const partial = expandGraph(p, ['C++', 'Graphviz_(DOT)'], manifests(manifest('C++', 2)));
    expect(partial.tasks.has(taskId('stats', 'C++'))).toBe(true);
    expect(partial.pending.map((x) => x.id)).toContain('stats:Graphviz_(DOT)');
    expect(partial.pending.map((x) => x.id)).toContain('all');
  });
  it('selects targets with their dependencies', () => {
    const p = pipeline();
    const g = expandGraph(
      p,
      ['C++', 'Python'],
      manifests(manifest('C++', 2), manifest('Python', 1)),
    );
    const sub = selectSubgraph(g, ['pack:C++/train-00001-of-00002']).graph;
    expect(sub.order).toEqual([
      'discover:C++',
      'fetch:C++/train-00001-of-00002',
      'pack:C++/train-00001-of-00002',
    ]);
    expect(
      selectSubgraph(g, ['cmds:C++/*']).graph.order.filter((i) => i.startsWith('cmds')),
    ).toHaveLength(2);
    expect(selectSubgraph(g, ['nope']).unknown).toEqual(['nope']);
  });
  it('parses ids and renders graphs', () => {
    expect(parseTaskId('pack:C++/train-00000-of-00001')).toEqual({
      stage: 'pack',
      language: 'C++',
      stem: 'train-00000-of-00001',
    });
    expect(globMatcher('pack:C++/*')('pack:C++/x')).toBe(true);
    expect(globMatcher('pack:C++/*')('pack:C/x')).toBe(false);
    const g = expandGraph(pipeline(), ['C++'], manifests(manifest('C++', 1)));
    expect(renderGraph(g, 'mermaid')).toContain('-->');
    expect(renderGraph(g, 'dot')).toContain(
      '"fetch:C++/train-00000-of-00001" -> "pack:C++/train-00000-of-00001"',
    );
  });
});

describe('markers', () => {
  it('round-trips task ids through marker keys, including odd language names', () => {
    const p = pipeline();
    const g = expandGraph(
      p,
      ['Graphviz_(DOT)', 'C++'],
      manifests(manifest('Graphviz_(DOT)', 1), manifest('C++', 1)),
    );
    const fps = fingerprints(p, g);
    for (const id of g.order) {
      const t = g.tasks.get(id);
      const fp = fps.get(id);
      if (!t || !fp) throw new Error('missing');
      const parsed = parseMarkerKey(markerKey(t, fp));
      expect(parsed?.task).toBe(id);
      expect(parsed?.ref.fingerprint).toBe(fp.hash);
    }
  });
});

describe('planner', () => {
  const p = pipeline();
  const g = expandGraph(p, ['C++'], manifests(manifest('C++', 1)));
  const fps = fingerprints(p, g);
  const all = new Map([...fps].map(([id, fp]) => [id, [refOf(fp)]]));
  const pack = taskId('pack', 'C++', 'train-00000-of-00001');

  it('runs everything when nothing is marked, in dependency order', () => {
    const pl = planFor(p, g, new Map());
    expect(pl.steps.every((s) => s.action === 'run' && s.reason === 'missing')).toBe(true);
    const ids = pl.steps.map((s) => s.task);
    expect(ids.indexOf(taskId('fetch', 'C++', 'train-00000-of-00001'))).toBeLessThan(
      ids.indexOf(pack),
    );
  });
  it('skips fresh tasks', () => {
    expect(planFor(p, g, all).steps.every((s) => s.action === 'skip')).toBe(true);
  });
  it('explains staleness from the marker key alone', () => {
    const fp = fps.get(pack);
    if (!fp) throw new Error('no fp');
    const m = (ref: Partial<MarkerRef>) =>
      new Map([...all, [pack, [{ ...refOf(fp), fingerprint: 'x'.repeat(64), ...ref }]]]);
    const step = (markers: Map<TaskId, MarkerRef[]>, extra = {}) =>
      planFor(p, g, markers, extra).steps.find((s) => s.task === pack);
    expect(step(m({ code: 'deadbeef' }))).toMatchObject({ action: 'run', reason: 'code-changed' });
    expect(step(m({}))).toMatchObject({ action: 'run', reason: 'input-changed' });
    expect(
      step(m({ params: 'cafebabe' }), {
        paramsArchive: new Map([['pack/cafebabe', { rows_per_part: 5, prefix: 'packed/' }]]),
      }),
    ).toMatchObject({ action: 'run', reason: 'params-changed', detail: 'rows_per_part' });
    expect(step(all, { missingOutputs: new Map([[pack, ['packed/x']]]) })).toMatchObject({
      action: 'run',
      reason: 'output-missing',
    });
    expect(step(all, { forced: (id: TaskId) => id === pack })).toMatchObject({
      action: 'run',
      reason: 'forced',
    });
  });
  it('blocks expansions that wait for a manifest', () => {
    const g2 = expandGraph(p, ['C++', 'Python'], manifests(manifest('C++', 1)));
    const pl = planFor(p, g2, all);
    expect(pl.steps.find((s) => s.task === 'pack:Python/*')).toMatchObject({
      action: 'blocked',
      reason: 'awaiting-manifest',
    });
    expect(pl.steps.find((s) => s.task === 'discover:Python')).toMatchObject({
      action: 'run',
      reason: 'missing',
    });
  });
});

describe('output check', () => {
  const p = pipeline();
  const g = expandGraph(p, ['C++'], manifests(manifest('C++', 1)));
  const t = (id: string) => {
    const x = g.tasks.get(id as TaskId);
    if (!x) throw new Error(id);
    return x;
  };
  it('needs every part of a pack family with one total', () => {
    const fam = 'packed/C++/C++-00000-';
    const have = (...k: string[]) => indexListing(new Set<string>(), new Set(k));
    expect(missingOutputs(t('pack:C++/train-00000-of-00001'), g, have())).toHaveLength(1);
    expect(
      missingOutputs(
        t('pack:C++/train-00000-of-00001'),
        g,
        have(`${fam}000000-of-000002.jsonl.zst`),
      ),
    ).toEqual([`${fam}1 of 2`]);
    expect(
      missingOutputs(
        t('pack:C++/train-00000-of-00001'),
        g,
        have(`${fam}000000-of-000002.jsonl.zst`, `${fam}000001-of-000002.jsonl.zst`),
      ),
    ).toEqual([]);
  });
  it('checks sync against its dependencies\u2019 work outputs', () => {
    const sync = t('sync:C++/train-00000-of-00001');
    expect(
      missingOutputs(
        sync,
        g,
        indexListing(new Set(), new Set(['data/C++/train-00000-of-00001.parquet'])),
      ),
    ).toEqual(['cmds/C++/train-00000-of-00001.cmd.txt']);
  });
  it('checks every object a pack marker lists, sidecars included, by size', () => {
    const fam = 'packed/C++/C++-00000-';
    const pack = t('pack:C++/train-00000-of-00001');
    const objects: [string, number][] = [
      [`${fam}000000-of-000002.errors.jsonl`, 10],
      [`${fam}000000-of-000002.jsonl.zst`, 100],
      [`${fam}000001-of-000002.jsonl.zst`, 200],
    ];
    const marker = outputsSummary(
      objects.map(([key, size]) => ({ store: 'bucket', key, size, sha256: '' })),
    );
    const listing = (list: [string, number][]) =>
      indexListing(new Set(), new Set(list.map(([k]) => k)), new Map(list));
    expect(missingOutputs(pack, g, listing(objects), marker)).toEqual([]);
    expect(missingOutputs(pack, g, listing(objects.slice(1)), marker)).toEqual([
      `${fam}*: the marker lists 3 objects, 2 found`,
    ]);
    expect(
      missingOutputs(
        pack,
        g,
        listing([...objects.slice(0, 2), [`${fam}000001-of-000002.jsonl.zst`, 201]]),
        marker,
      ),
    ).toEqual([`${fam}*: a size differs from what the marker lists`]);
    // Without sizes (or a marker without the summary) only the part names are checked.
    const names = indexListing(new Set(), new Set(objects.slice(1).map(([k]) => k)));
    expect(missingOutputs(pack, g, names, marker)).toEqual([]);
    expect(missingOutputs(pack, g, listing(objects.slice(1)))).toEqual([]);
  });
  it('puts the outputs summary into the marker key and reads it back', () => {
    const pack = t('pack:C++/train-00000-of-00001');
    const fp = fingerprints(p, g).get(pack.id);
    if (!fp) throw new Error('missing');
    const outputs = [
      { store: 'bucket' as const, key: 'packed/x', size: 3, sha256: 'a'.repeat(64) },
    ];
    const key = markerKey(pack, fp, 'w 1', outputs);
    expect(key).toMatch(/\.o1-[0-9a-f]{8}\.ww%201\.json$/);
    expect(parseMarkerKey(key)?.ref).toMatchObject({
      fingerprint: fp.hash,
      outputs: outputsSummary(outputs),
      worker: 'w 1',
    });
    expect(parseMarkerKey(markerKey(pack, fp, 'w'))?.ref.outputs).toBeUndefined();
  });
});

describe('bucket prefixes to list', () => {
  it('lists only where sync and pack write, without nesting, and all of it for a root sync', () => {
    expect(
      bucketPrefixes(pipeline([], { sync: { prefix: 'ts/' }, pack: { prefix: 'ts/packed/' } })),
    ).toEqual(['ts/']);
    expect(
      bucketPrefixes(pipeline([], { sync: { prefix: 'raw/' }, pack: { prefix: 'packed/' } })),
    ).toEqual(['packed/', 'raw/']);
    expect(bucketPrefixes(pipeline())).toEqual(['']);
  });
});
