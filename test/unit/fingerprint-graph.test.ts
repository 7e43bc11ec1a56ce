/**
 * fingerprintGraph is the one function that keys every task; lib/inputs.ts gathers the local
 * files it keys. A shell stage's `inputs` globs enter its fingerprint by content, runtime params
 * never do, and the result equals computeFingerprint applied task by task.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Fingerprint, KindIdentity } from '../../lib/fingerprint.js';
import { computeFingerprint, fingerprintGraph, freshMarker } from '../../lib/fingerprint.js';
import { expandGraph } from '../../lib/graph.js';
import { gatherLocalInputs } from '../../lib/inputs.js';
import type { TaskId, TaskKind } from '../../lib/model.js';
import { registry } from '../../tasks/index.js';
import { manifest, pipeline, stage, uniformKinds } from '../helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'stackflow-fpgraph-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('fingerprintGraph', () => {
  it('equals computeFingerprint task by task, dependencies first', () => {
    const p = pipeline();
    const g = expandGraph(p, ['C++', 'Python'], new Map([['C++', manifest('C++', 2)]]));
    const kinds = uniformKinds('3');
    const fps = fingerprintGraph({ graph: g, stages: p.stages, kinds, revision: 'r1' });
    const by = new Map<TaskId, Fingerprint>();
    for (const id of g.order) {
      const t = g.tasks.get(id);
      if (t === undefined) continue;
      const f = computeFingerprint({
        task: t,
        implVersion: '3',
        tools: {},
        revision: 'r1',
        stageParams: p.stages.find((s) => s.name === t.stage)?.params ?? {},
        inputs: t.file ? [{ name: t.file.path, size: t.file.size, sha256: t.file.sha256 }] : [],
        upstream: by,
      });
      by.set(id, f);
      expect(fps.get(id)?.hash, id).toBe(f.hash);
      expect(freshMarker([{ fingerprint: 'x' }, { fingerprint: f.hash }], f)).toEqual({
        fingerprint: f.hash,
      });
    }
    expect(fps.size).toBe(g.order.length);
  });

  it('leaves runtime params out of the key', () => {
    const kinds = {
      ...uniformKinds(),
      pack: { version: '1', tools: {}, runtimeParams: ['concurrency'] },
    } as {
      [K in TaskKind]: KindIdentity;
    };
    const fpOf = (concurrency: number) => {
      const p = pipeline([], { pack: { concurrency } });
      const g = expandGraph(p, ['C++'], new Map([['C++', manifest('C++', 1)]]));
      return [...fingerprintGraph({ graph: g, stages: p.stages, kinds, revision: 'r' }).values()];
    };
    expect(fpOf(64).map((f) => f.hash)).toEqual(fpOf(1024).map((f) => f.hash));
  });

  it("keys a shell stage's local input files by content, gathered once per file", async () => {
    writeFileSync(join(dir, 'a.txt'), 'one');
    writeFileSync(join(dir, 'b.txt'), 'two');
    const p = pipeline([
      stage('sh', 'shell', [], { params: { command: 'true', inputs: ['*.txt'] } }),
    ]);
    const g = expandGraph(p, [], new Map());
    const fp = async () => {
      const local = await gatherLocalInputs(g, registry, dir);
      expect([...local.values()][0]?.map((d) => d.name)).toEqual(['a.txt', 'b.txt']);
      const fps = fingerprintGraph({
        graph: g,
        stages: p.stages,
        kinds: registry,
        revision: 'r',
        localInputs: local,
      });
      return [...fps.values()][0]?.hash;
    };
    const before = await fp();
    expect(await fp()).toBe(before);
    writeFileSync(join(dir, 'b.txt'), 'TWO');
    expect(await fp()).not.toBe(before);
  });
});
