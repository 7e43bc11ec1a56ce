/**
 * The host sizes itself (lib/sizing.ts, lib/host.ts) through the CLI: `run --dry-run` prints the
 * decision and why, the CLI and pipeline.yaml override it, and the decision never changes what is
 * written: the same pipeline packed with 1 and with 3 line workers, 1 and 2 packs at once, gives
 * the same bytes and fingerprints (a second run with other settings runs nothing).
 */
import { availableParallelism } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { Rig } from '../helpers/rig.js';

const rigs: Rig[] = [];
const rig = (): Rig => {
  const r = new Rig();
  rigs.push(r);
  return r;
};
afterAll(() => {
  for (const r of rigs) r.cleanup();
});

describe('run sizes itself from the host', () => {
  it('--dry-run prints the decision and why, before the plan', async () => {
    const r = rig();
    const dry = await r.run(['run', '--dry-run', '--cache-dir', 'cache']);
    expect(dry.code, dry.stderr).toBe(0);
    const cores = availableParallelism();
    const [first, ...rest] = dry.stdout.split('\n');
    expect(first).toMatch(
      new RegExp(
        `^host: ${cores} cores?, [\\d.]+ GiB, [\\d.]+ [GT]B free → \\d+ packs? × \\d line workers?, window ≤ \\d+$`,
      ),
    );
    expect(rest).toContain(
      cores >= 3
        ? '  line workers per pack: 3 (one per core, at most 3: beyond, more packs side by side)'
        : `  line workers per pack: ${cores} (one per core: ${cores} core${cores === 1 ? '' : 's'})`,
    );
    // The sample pipeline sets concurrency: 32, an upper bound on each pack's share.
    expect(rest).toContain(
      '  each pack fetches ≤ 32 blobs at once, set by pipeline.yaml tasks.pack.params.concurrency',
    );
    expect(dry.stdout).toMatch(/\nstage +missing\n/);
  });

  it('the CLI overrides the host; --json carries the decision beside the steps', async () => {
    const r = rig();
    const dry = await r.run([
      'run',
      '--dry-run',
      '--json',
      '--packs',
      '3',
      '--line-workers',
      '2',
      '--window',
      '48',
      '-j',
      '5',
      '--cache-dir',
      'cache',
    ]);
    expect(dry.code, dry.stderr).toBe(0);
    const out = JSON.parse(dry.stdout) as {
      steps: unknown[];
      sizing: {
        packs: number;
        lineWorkers: number;
        window: unknown;
        jobs: number;
        reasons: string[];
      };
    };
    expect(out.steps.length).toBeGreaterThan(0);
    expect(out.sizing).toMatchObject({
      packs: 3,
      lineWorkers: 2,
      window: { max: 48, perPack: 16 },
      jobs: 5,
    });
    expect(out.sizing.reasons).toContain('packs at once: 3, set by --packs');
    const bad = await r.run(['run', '--dry-run', '--packs', '0', '--cache-dir', 'cache']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--packs must be a positive integer');
  });

  it('pipeline.yaml limit and line_workers are used, and named as the reason', async () => {
    const r = rig();
    const text = (await import('node:fs')).readFileSync(`${r.dir}/pipeline.yaml`, 'utf8');
    r.writePipeline(
      text.replace(
        '    needs: [fetch]\n    params:\n      rows_per_part: 250',
        '    needs: [fetch]\n    limit: 2\n    params:\n      line_workers: 2\n      rows_per_part: 250',
      ),
    );
    const dry = await r.run(['run', '--dry-run', '--cache-dir', 'cache']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('× 2 line workers');
    expect(dry.stdout).toContain('  packs at once: 2, set by pipeline.yaml tasks.pack.limit');
    expect(dry.stdout).toContain(
      '  line workers per pack: 2, set by pipeline.yaml tasks.pack.params.line_workers',
    );
  });

  it('packs, line workers and window change no byte and no fingerprint', async () => {
    const a = rig();
    const b = rig();
    const ra = await a.run([
      'run',
      '--packs',
      '1',
      '--line-workers',
      '1',
      '--window',
      '8',
      '--cache-dir',
      'cache',
    ]);
    expect(ra.code, ra.stderr).toBe(0);
    const sizing = ra.events.find((e) => e.type === 'sizing');
    expect(sizing?.summary).toMatch(/→ 1 pack × 1 line worker, window ≤ 8$/);
    const rb = await b.run([
      'run',
      '--packs',
      '2',
      '--line-workers',
      '3',
      '-j',
      '4',
      '--cache-dir',
      'cache',
    ]);
    expect(rb.code, rb.stderr).toBe(0);
    const outA = a.outputs(['bucket']);
    expect([...outA.keys()].some((k) => k.endsWith('.jsonl.zst'))).toBe(true);
    expect(b.outputs(['bucket'])).toEqual(outA);
    const again = await a.run([
      'run',
      '--dry-run',
      '--json',
      '--packs',
      '4',
      '--line-workers',
      '3',
      '--cache-dir',
      'cache',
    ]);
    const steps = (JSON.parse(again.stdout) as { steps: { action: string }[] }).steps;
    expect(steps.filter((s) => s.action === 'run')).toEqual([]);
  });
});
