/**
 * computeFingerprint assembles its canonical JSON from pieces (for speed): it must hash exactly
 * what canonicalJson of the whole data would, or every existing marker would read as stale.
 */
import { describe, expect, it } from 'vitest';
import type { Fingerprint } from '../../lib/fingerprint.js';
import { canonicalJson, computeFingerprint, sha256Hex } from '../../lib/fingerprint.js';
import type { TaskId, TaskInstance } from '../../lib/model.js';

const task = (id: string, params: Record<string, unknown>, deps: string[] = []) =>
  ({
    id,
    stage: id.split(':')[0],
    kind: 'shell',
    params,
    deps,
  }) as unknown as TaskInstance;

describe('computeFingerprint', () => {
  it('hashes canonicalJson of its data, and the inputs component likewise', () => {
    const up = new Map<TaskId, Fingerprint>();
    const a = computeFingerprint({
      task: task('fetch:C++/x', { z: 1, a: { y: [3, { k: 'v', b: null }], x: 'é😀' } }),
      implVersion: '3',
      tools: { zstd: '1.5', duckdb: '1.1' },
      revision: 'abc',
      stageParams: {},
      inputs: [
        { name: 'b', size: 2, sha256: 'f'.repeat(64) },
        { name: 'a', size: 1, sha256: 'e'.repeat(64) },
      ],
      upstream: up,
    });
    up.set('fetch:C++/x' as TaskId, a);
    up.set('disc:C++' as TaskId, { ...a, hash: '0'.repeat(64) } as Fingerprint);
    const b = computeFingerprint({
      task: task('pack:C++/x', { env: { HF_TOKEN: 'secret', PLAIN: 'p' }, undef: undefined }, [
        'fetch:C++/x',
        'disc:C++',
      ]),
      implVersion: '1',
      tools: {},
      revision: 'r"quoted\\',
      stageParams: { any: 1 },
      inputs: [],
      upstream: up,
    });
    for (const f of [a, b]) {
      expect(f.hash).toBe(sha256Hex(canonicalJson(f.data)));
      const { task: t, revision: rev, inputs, upstream } = f.data;
      expect(f.components.inputs).toBe(
        sha256Hex(canonicalJson({ task: t, rev, inputs, upstream })).slice(0, 8),
      );
    }
    expect(JSON.stringify(b.data)).not.toContain('secret');
  });
});
