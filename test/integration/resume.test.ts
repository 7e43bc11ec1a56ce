/**
 * Crash safety: `kill -9` at several moments, then a rerun, gives byte-identical outputs to an
 * uninterrupted run; SIGINT stops cleanly with exit 130 and publishes no partial output.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, Rig, started, walk } from '../helpers/rig.js';

/** Small parts and one task at a time make many distinct crash points. */
const pipelineFor = (text: string): string =>
  text.replace('rows_per_part: 250', 'rows_per_part: 60\n      max_missing_rate: 0.05');

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
      // Kill points: a condition on the events of the current run, or (mid-pack) on the part
      // records on disk, so the kill lands after some parts of a pack and before the rest
      // whatever the machine's speed.
      type Ev = Record<string, unknown>;
      const nth = (type: string, stage: string, n: number) => (evs: Ev[]) =>
        evs.filter((e) => e.type === type && e.stage === stage).length >= n;
      const partRecords = (): number => walk(join(rig.cache, 'state/parts')).length;
      const midPack = (parts: number) => (evs: Ev[]) => {
        const packing =
          evs.filter((e) => e.stage === 'pack' && e.type === 'task-started').length >
          evs.filter((e) => e.stage === 'pack' && e.type === 'task-succeeded').length;
        return packing && partRecords() >= parts;
      };
      const points: { when: (evs: Ev[]) => boolean; poll?: boolean }[] = [
        { when: nth('task-started', 'discover', 1) },
        { when: nth('task-succeeded', 'fetch', 2) },
        { when: nth('task-started', 'cmds', 1) },
        { when: midPack(2), poll: true },
        { when: nth('task-succeeded', 'pack', 2) },
        { when: nth('task-started', 'sync', 3) },
        { when: midPack(3), poll: true },
      ];
      const killedDuring: string[] = [];
      const allEvents: Ev[] = [];
      const finished = new Set<string>();
      for (const point of points) {
        const child = rig.start(['run', '-j', '1', '--cache-dir', 'cache']);
        const evs: Ev[] = [];
        let buf = '';
        let armed = false;
        const check = (): void => {
          if (!armed && point.when(evs)) {
            armed = true;
            child.kill('SIGKILL');
          }
        };
        const timer = point.poll === true ? setInterval(check, 5) : undefined;
        child.stdout?.on('data', (d: Buffer) => {
          buf += d.toString();
          const lines = buf.split('\n');
          buf = lines.pop() ?? '';
          for (const l of lines) if (l.startsWith('{"')) evs.push(JSON.parse(l) as Ev);
          check();
        });
        const r = await collect(child);
        clearInterval(timer);
        // Only unfinished work is redone: nothing that reported success before starts again.
        const again = evs.filter((e) => e.type === 'task-started' && finished.has(String(e.task)));
        expect(again.map((e) => e.task)).toEqual([]);
        for (const e of evs) if (e.type === 'task-succeeded') finished.add(String(e.task));
        allEvents.push(...evs);
        if (r.code === 0) continue; // finished before the kill point
        expect(
          r.signal,
          `run ended by itself (code ${r.code}): ${r.stderr.slice(-2000)} ${JSON.stringify(evs.filter((e) => e.type === 'task-failed'))}`,
        ).toBe('SIGKILL');
        const last = evs.filter((e) => e.type === 'task-started').at(-1);
        killedDuring.push(typeof last?.stage === 'string' ? last.stage : 'planning');
      }
      // The kills really interrupted work in several stages, including pack mid-way.
      expect(killedDuring.length, killedDuring.join()).toBeGreaterThanOrEqual(4);
      expect(new Set(killedDuring).size).toBeGreaterThanOrEqual(3);
      expect(killedDuring).toContain('pack');
      const final = await rig.run(['run', '-j', '1', '--cache-dir', 'cache']);
      expect(
        final.code,
        `${final.stderr.slice(-2000)} ${JSON.stringify(final.events.filter((e) => e.type === 'task-failed'))}`,
      ).toBe(0);
      expect(started(final).filter((t) => finished.has(t))).toEqual([]);
      allEvents.push(...final.events);
      // At least one pack resumed at its first unfinished part instead of starting over.
      const resumed = allEvents.filter(
        (e) =>
          e.type === 'task-succeeded' &&
          ((e.counts as Record<string, number>).resumed_parts ?? 0) > 0,
      );
      expect(resumed.length, `kills during: ${killedDuring.join()}`).toBeGreaterThan(0);
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
