/**
 * Crash safety: `kill -9` at several moments, then a rerun, gives byte-identical outputs to an
 * uninterrupted run; SIGINT stops cleanly with exit 130 and publishes no partial output.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, Rig } from '../helpers/rig.js';

/** Small parts and one task at a time make many distinct crash points. */
const pipelineFor = (text: string): string => text.replace('rows_per_part: 250', 'rows_per_part: 60');

describe('interrupted runs', () => {
  const reference = new Rig();
  let expected: Map<string, string>;
  beforeAll(async () => {
    reference.writePipeline(pipelineFor(readSample(reference)));
    const r = await reference.run(['run', '-j', '1', '--cache-dir', 'cache']);
    expect(r.code).toBe(0);
    expected = reference.outputs();
  }, 300_000);
  afterAll(() => {
    reference.cleanup();
  });

  it('kill -9 at several points, then a rerun, gives byte-identical outputs', async () => {
    const rig = new Rig();
    rig.writePipeline(pipelineFor(readSample(rig)));
    try {
      // Kill after the n-th event line: during discover, fetch, cmds, mid-pack, late pack.
      for (const n of [2, 9, 20, 45, 80, 120]) {
        const child = rig.start(['run', '-j', '1', '--cache-dir', 'cache']);
        let lines = 0;
        let killed = false;
        child.stdout?.on('data', (d: Buffer) => {
          lines += d.toString().split('\n').length - 1;
          if (!killed && lines >= n) {
            killed = true;
            child.kill('SIGKILL');
          }
        });
        const r = await collect(child);
        if (r.code === 0) break; // finished before the kill point: nothing left to interrupt
        expect(r.signal).toBe('SIGKILL');
      }
      const final = await rig.run(['run', '-j', '1', '--cache-dir', 'cache']);
      expect(final.code).toBe(0);
      const got = rig.outputs();
      expect([...got.keys()]).toEqual([...expected.keys()]);
      expect(got).toEqual(expected);
      const again = await rig.run(['run', '--cache-dir', 'cache']);
      expect(again.events.some((e) => e.type === 'task-started')).toBe(false);
    } finally {
      rig.cleanup();
    }
  }, 600_000);

  it('SIGINT stops cleanly with exit 130, then a rerun completes identically', async () => {
    const rig = new Rig();
    rig.writePipeline(pipelineFor(readSample(rig)));
    try {
      const child = rig.start(['run', '-j', '1', '--cache-dir', 'cache']);
      let sent = false;
      child.stdout?.on('data', (d: Buffer) => {
        if (!sent && d.toString().includes('"stage":"pack"')) {
          sent = true;
          child.kill('SIGINT');
        }
      });
      const r = await collect(child);
      expect(r.code).toBe(130);
      expect(r.events.at(-1)).toMatchObject({ type: 'run-finished', interrupted: true });
      // Nothing half-written is visible: every published part decodes (checked by equality below).
      const final = await rig.run(['run', '--cache-dir', 'cache']);
      expect(final.code).toBe(0);
      expect(rig.outputs()).toEqual(expected);
    } finally {
      rig.cleanup();
    }
  }, 600_000);
});

function readSample(rig: Rig): string {
  return readFileSync(`${rig.dir}/pipeline.yaml`, 'utf8');
}
