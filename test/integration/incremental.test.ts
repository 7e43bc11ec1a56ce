/**
 * Content hashing through the CLI: adding a language runs only its tasks; changing a pack param
 * reruns only pack (and what consumes pack's output); failures are values with clean exit codes.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Rig, SAMPLE, started, walk } from '../helpers/rig.js';

const base = readFileSync(join(SAMPLE, 'pipeline.yaml'), 'utf8');
const withLanguages = (langs: string[]): string =>
  base.replace('languages: all', `languages: [${langs.map((l) => JSON.stringify(l)).join(', ')}]`);

describe('incremental runs', () => {
  const rig = new Rig({ pipeline: withLanguages(['C++', 'Python']) });
  afterAll(() => {
    rig.cleanup();
  });

  it('adding a language runs only that language\u2019s tasks', async () => {
    const a = await rig.run(['run', '--cache-dir', 'cache']);
    expect(a.code).toBe(0);
    expect(started(a).some((t) => t.startsWith('pack:C++/'))).toBe(true);
    rig.writePipeline(withLanguages(['C++', 'Python', 'Graphviz_(DOT)']));
    const dry = await rig.run(['run', '--dry-run', '--json', '--cache-dir', 'cache']);
    const steps = (JSON.parse(dry.stdout) as { steps: { task: string; action: string }[] }).steps;
    expect(
      steps
        .filter((s) => s.action === 'run')
        .map((s) => s.task)
        .sort(),
    ).toEqual(
      [
        'discover:Graphviz_(DOT)',
        'fetch:Graphviz_(DOT)/train-00000-of-00001',
        'cmds:Graphviz_(DOT)/train-00000-of-00001',
        'sync:Graphviz_(DOT)/train-00000-of-00001',
        'pack:Graphviz_(DOT)/train-00000-of-00001',
        'stats:Graphviz_(DOT)',
        // The summary merges one language more.
        'stats-summary',
        'sizes:Graphviz_(DOT)',
      ].sort(),
    );
    const b = await rig.run(['run', '--cache-dir', 'cache']);
    expect(b.code).toBe(0);
    expect(started(b).length).toBe(8);
    expect(
      started(b)
        .filter((t) => t !== 'stats-summary')
        .every((t) => t.includes('Graphviz_(DOT)')),
    ).toBe(true);
  });

  it('changing a pack param reruns only pack and its consumers, and says which param', async () => {
    rig.writePipeline(
      withLanguages(['C++', 'Python', 'Graphviz_(DOT)']).replace(
        'rows_per_part: 250',
        'rows_per_part: 300',
      ),
    );
    const dry = await rig.run(['run', '--dry-run', '--cache-dir', 'cache']);
    expect(dry.stdout).toMatch(
      /pack:C\+\+\/train-00000-of-00002 {2}params-changed \(rows_per_part\)/,
    );
    const why = await rig.run([
      'explain',
      'pack:C++/train-00000-of-00002',
      '--json',
      '--cache-dir',
      'cache',
    ]);
    expect(JSON.parse(why.stdout)).toMatchObject({
      state: 'changed',
      changes: [{ field: 'params.rows_per_part', before: '250', after: '300' }],
    });
    const r = await rig.run(['run', '--cache-dir', 'cache']);
    expect(r.code).toBe(0);
    const ran = started(r);
    expect(ran.filter((t) => t.startsWith('pack:')).length).toBe(4);
    expect(ran.every((t) => /^(pack|sizes|stats):|^stats-summary$/.test(t))).toBe(true);
    // Python has 850 rows: 4 parts of 250 before, 3 of 300 now. No part of the old layout (nor
    // its errors sidecars) may remain next to the new ones.
    const family = readdirSync(join(rig.cache, 'bucket/packed/Python')).sort();
    expect(family.filter((f) => f.endsWith('.jsonl.zst'))).toEqual([
      'Python-00000-000000-of-000003.jsonl.zst',
      'Python-00000-000001-of-000003.jsonl.zst',
      'Python-00000-000002-of-000003.jsonl.zst',
    ]);
    expect(
      family.filter((f) => f.endsWith('.errors.jsonl')).every((f) => f.includes('-of-000003.')),
    ).toBe(true);
  });

  it('changing only how pack runs (concurrency, fetcher) reruns nothing', async () => {
    rig.writePipeline(
      withLanguages(['C++', 'Python', 'Graphviz_(DOT)'])
        .replace('rows_per_part: 250', 'rows_per_part: 300')
        .replace('concurrency: 32', 'concurrency: 7\n      fetcher: s5cmd\n      s5cmd_workers: 9'),
    );
    const dry = await rig.run(['run', '--dry-run', '--json', '--cache-dir', 'cache']);
    expect(dry.code, dry.stderr).toBe(0);
    const steps = (JSON.parse(dry.stdout) as { steps: { action: string }[] }).steps;
    expect(steps.filter((s) => s.action === 'run')).toEqual([]);
    rig.writePipeline(
      withLanguages(['C++', 'Python', 'Graphviz_(DOT)']).replace(
        'rows_per_part: 250',
        'rows_per_part: 300',
      ),
    );
  });

  it('reruns a task whose output disappeared', async () => {
    const key = join(rig.cache, 'work/cmds/Python/train-00000-of-00001.cmd.txt');
    writeFileSync(key, 'tampered'); // same key, different bytes: found by size
    const { rmSync } = await import('node:fs');
    rmSync(key);
    const dry = await rig.run(['run', '--dry-run', '--cache-dir', 'cache']);
    expect(dry.stdout).toContain('cmds:Python/train-00000-of-00001  output-missing');
    const r = await rig.run(['run', 'cmds', '--cache-dir', 'cache']);
    expect(r.code).toBe(0);
    expect(started(r)).toEqual(['cmds:Python/train-00000-of-00001']);
  });

  it('--force with a pattern reruns exactly the matching tasks; --only restricts languages', async () => {
    const r = await rig.run(['run', 'pack', '--force', 'pack:Python/*', '--cache-dir', 'cache']);
    expect(r.code).toBe(0);
    expect(started(r)).toEqual(['pack:Python/train-00000-of-00001']);
    const only = await rig.run([
      'run',
      '--force',
      '--only',
      'C++',
      '--dry-run',
      '--json',
      '--cache-dir',
      'cache',
    ]);
    const steps = (JSON.parse(only.stdout) as { steps: { task: string; action: string }[] }).steps;
    // The once stage (the stats summary) runs over the languages --only keeps.
    expect(steps.every((s) => s.task.includes('C++') || s.task === 'stats-summary')).toBe(true);
    expect(steps.every((s) => s.action === 'run')).toBe(true);
  });
});

describe('sync', () => {
  it('skips objects already identical in the bucket and replaces ones that differ', async () => {
    const rig = new Rig({ pipeline: withLanguages(['Shell']) });
    try {
      expect((await rig.run(['run', 'sync', '--cache-dir', 'cache'])).code).toBe(0);
      const cmd = join(rig.cache, 'bucket/cmds/Shell/train-00000-of-00001.cmd.txt');
      writeFileSync(cmd, 'stale bytes\n');
      const r = await rig.run(['run', 'sync', '--force', 'sync:*', '--cache-dir', 'cache']);
      expect(r.code).toBe(0);
      const done = r.events.find((e) => e.type === 'task-succeeded' && e.stage === 'sync');
      expect(done?.counts).toMatchObject({ uploaded: 1, skipped: 1 });
      expect(readFileSync(cmd, 'utf8')).toMatch(/^cp s3:\/\/softwareheritage\/content\//);
    } finally {
      rig.cleanup();
    }
  });
});

describe('secrets', () => {
  it('a token passed to a shell step reaches the command but no marker, archive or event', async () => {
    const rig = new Rig({
      pipeline:
        withLanguages(['Shell']) +
        '  uses-token:\n    kind: shell\n    params:\n      command: "printf %s \\"$API_TOKEN\\" | sha256sum | cut -c1-64 > {outputs}"\n      outputs: ["token-check.txt"]\n      env: { API_TOKEN: tok_s3cr3t_value }\n',
    });
    try {
      const r = await rig.run(['run', 'uses-token', '--cache-dir', 'cache']);
      expect(r.code).toBe(0);
      const digest = createHash('sha256').update('tok_s3cr3t_value').digest('hex');
      expect(readFileSync(join(rig.cache, 'work/token-check.txt'), 'utf8')).toBe(`${digest}\n`);
      expect(r.stdout + r.stderr).not.toContain('tok_s3cr3t_value');
      for (const f of walk(join(rig.cache, 'state'))) {
        expect(readFileSync(f, 'utf8'), f).not.toContain('tok_s3cr3t_value');
      }
    } finally {
      rig.cleanup();
    }
  });
});

describe('failures', () => {
  it('a failing shell task exits 1, blocks its dependents and is reported by status', async () => {
    const rig = new Rig({
      pipeline:
        withLanguages(['Shell']).replace(
          'command: "cat {inputs} | wc -c | tr -d \' \' > {outputs}"',
          'command: "echo boom >&2; exit 3"',
        ) + '  after:\n    kind: shell\n    needs: [sizes]\n    params:\n      command: "true"\n',
    });
    try {
      const r = await rig.run(['run', '--cache-dir', 'cache']);
      expect(r.code).toBe(1);
      const failed = r.events.find((e) => e.type === 'task-failed');
      expect(failed).toMatchObject({
        task: 'sizes:Shell',
        failure: { reason: 'task-exit-non-zero', exitCode: 3 },
      });
      expect(JSON.stringify(failed)).toContain('boom');
      expect(r.events.find((e) => e.type === 'task-blocked')).toMatchObject({
        task: 'after',
        because: 'sizes:Shell',
      });
      const st = await rig.run(['status', '--cache-dir', 'cache']);
      expect(st.stdout).toContain('sizes:Shell: sizes:Shell: command exited 3');
    } finally {
      rig.cleanup();
    }
  });

  it('a parquet that does not match its manifest fails fetch and publishes nothing', async () => {
    const rig = new Rig({ pipeline: withLanguages(['Shell']) });
    try {
      expect((await rig.run(['run', 'discover', '--cache-dir', 'cache'])).code).toBe(0);
      const parquet = join(rig.dir, 'hf/data/Shell/train-00000-of-00001.parquet');
      writeFileSync(parquet, Buffer.concat([readFileSync(parquet), Buffer.from('x')]));
      const r = await rig.run(['run', 'fetch', '--cache-dir', 'cache']);
      expect(r.code).toBe(1);
      const f = r.events.find((e) => e.type === 'task-failed');
      expect(f).toMatchObject({
        task: 'fetch:Shell/train-00000-of-00001',
        failure: { reason: 'checksum-mismatch' },
      });
      expect(JSON.stringify(f)).toContain("--force 'discover:Shell'");
      expect(walk(join(rig.cache, 'work/data'))).toEqual([]);
    } finally {
      rig.cleanup();
    }
  });

  it('a part above max_missing_rate fails with a clear message and publishes nothing for it', async () => {
    const rig = new Rig({
      pipeline: base.replace(
        'rows_per_part: 250',
        'rows_per_part: 5000\n      max_missing_rate: 0',
      ),
    });
    try {
      const r = await rig.run(['run', 'pack', '--cache-dir', 'cache']);
      expect(r.code).toBe(1);
      const f = r.events.filter((e) => e.type === 'task-failed').map((e) => JSON.stringify(e));
      expect(f.length).toBeGreaterThan(0);
      expect(f.join()).toMatch(/blobs missing .* > max_missing_rate 0\.00%/);
      // C has missing blobs: its only part failed, so nothing of it was published.
      expect(f.join()).toContain('pack:C/train-00000-of-00001');
      expect(walk(join(rig.cache, 'bucket/packed/C'))).toEqual([]);
      // Languages without missing blobs were packed.
      const ok = r.events.filter(
        (e) => e.type === 'task-succeeded' && String(e.task).startsWith('pack:'),
      );
      for (const e of ok) expect(String(e.task)).not.toBe('pack:C/train-00000-of-00001');
      expect(r.stderr).not.toMatch(/\n\s+at /);
    } finally {
      rig.cleanup();
    }
  });
});
