/**
 * The parts of one pack in flight (tasks/pack/parts-in-flight.ts), with parts that are promises
 * the test settles by hand: the next part starts only once the one before has read its rows;
 * never more than two packing, nor more than two in scratch (packing or publishing); publishes
 * in part order; the first failure (a part's or a publish's) stops the rest and drops their
 * scratch.
 */
import { describe, expect, it } from 'vitest';
import type { PartRecord, Result } from '../../lib/task-api.js';
import { err, ok } from '../../lib/task-api.js';
import type { PackedPart } from '../../tasks/pack/parts-in-flight.js';
import { PartsInFlight } from '../../tasks/pack/parts-in-flight.js';
import { zeroCounts } from '../../tasks/pack/part.js';

const counts = (rows: number): PackedPart['counts'] => ({ ...zeroCounts(), rows, written: rows });

/** A deferred promise. */
function later<T>() {
  let resolve: (v: T) => void = () => undefined;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** A rig: parts whose read, pack and publish the test ends; a log of what happened. */
function rig() {
  const log: string[] = [];
  const packs = new Map<
    number,
    { read: () => void; done: ReturnType<typeof later<Result<PackedPart>>>; signal: AbortSignal }
  >();
  const publishes = new Map<number, ReturnType<typeof later<Result<PartRecord>>>>();
  /** Parts in scratch: started and not yet published or dropped. */
  const scratch = new Set<number>();
  let maxScratch = 0;
  let packing = 0;
  let maxPacking = 0;
  const stop = new AbortController();
  const parts = new PartsInFlight({
    signal: stop.signal,
    publish: (part) => {
      log.push(`publish ${part}`);
      const d = later<Result<PartRecord>>();
      publishes.set(part, d);
      return d.promise.then((r) => {
        scratch.delete(part);
        return r;
      });
    },
    drop: (part) => {
      log.push(`drop ${part}`);
      scratch.delete(part);
      return Promise.resolve();
    },
    published: (rec) => log.push(`published ${rec.part}`),
  });
  const start = (part: number) =>
    parts.start(part, (signal, onRead) => {
      log.push(`start ${part}`);
      scratch.add(part);
      maxScratch = Math.max(maxScratch, scratch.size);
      maxPacking = Math.max(maxPacking, ++packing);
      const done = later<Result<PackedPart>>();
      signal.addEventListener('abort', () => {
        log.push(`aborted ${part}`);
        done.resolve(err({ reason: 'aborted', message: 'interrupted' }));
      });
      packs.set(part, { read: onRead, done, signal });
      return done.promise.then((r) => {
        packing--;
        return r;
      });
    });
  const tick = () => new Promise((r) => setTimeout(r, 5));
  const record = (part: number): Result<PartRecord> =>
    ok({ part, total: 9, outputs: [], counts: { ...counts(10) } });
  return {
    log,
    parts,
    start,
    tick,
    stop,
    read: (n: number) => packs.get(n)?.read(),
    pack: (n: number, r: Result<PackedPart> = ok({ counts: counts(10), errors: [] })) =>
      packs.get(n)?.done.resolve(r),
    publish: (n: number, r: Result<PartRecord> = record(n)) => publishes.get(n)?.resolve(r),
    bounds: () => ({ maxScratch, maxPacking }),
  };
}

describe('PartsInFlight', () => {
  it('starts a part once the one before has read its rows; publishes in order; ≤ 2 in scratch', async () => {
    const r = rig();
    expect((await r.start(0)).ok).toBe(true);
    const one = r.start(1);
    await r.tick();
    expect(r.log).toEqual(['start 0']); // part 0 is still reading
    r.read(0);
    await r.tick();
    expect(r.log).toEqual(['start 0', 'start 1']); // part 0 finishing, part 1 reading
    r.pack(0);
    expect((await one).ok).toBe(true);
    expect(r.log.at(-1)).toBe('publish 0');
    // Part 2 waits for part 1's rows and for part 0's publish (two parts in scratch at most).
    const two = r.start(2);
    r.read(1);
    await r.tick();
    expect(r.log.at(-1)).toBe('publish 0');
    r.publish(0);
    await r.tick();
    expect(r.log.slice(-2)).toEqual(['published 0', 'start 2']);
    r.pack(1);
    expect((await two).ok).toBe(true);
    const end = r.parts.finish();
    r.publish(1);
    await r.tick();
    r.pack(2);
    await r.tick();
    r.publish(2);
    expect((await end).ok).toBe(true);
    expect(r.log.filter((l) => l.startsWith('published'))).toEqual([
      'published 0',
      'published 1',
      'published 2',
    ]);
    expect(r.bounds()).toEqual({ maxScratch: 2, maxPacking: 2 });
  });

  it('a part that fails stops the part reading after it, drops both, and is the error', async () => {
    const r = rig();
    await r.start(0);
    const one = r.start(1);
    r.read(0);
    await r.tick();
    r.pack(0, err({ reason: 'transient', message: 'part 0: the store said no' }));
    const res = await one;
    expect(res).toEqual(err({ reason: 'transient', message: 'part 0: the store said no' }));
    expect(r.log).toEqual(['start 0', 'start 1', 'aborted 1', 'drop 1', 'drop 0']);
  });

  it('a part that fails before reading all its rows: the next one never starts', async () => {
    const r = rig();
    await r.start(0);
    const one = r.start(1);
    r.pack(0, err({ reason: 'transient', message: 'part 0: DuckDB said no' }));
    expect(await one).toEqual(err({ reason: 'transient', message: 'part 0: DuckDB said no' }));
    expect(r.log).toEqual(['start 0', 'drop 0']);
  });

  it('a publish that fails stops the part packing meanwhile, and is the error', async () => {
    const r = rig();
    await r.start(0);
    const one = r.start(1);
    r.read(0);
    await r.tick();
    r.pack(0);
    await one;
    r.publish(0, err({ reason: 'transient', message: 'put part 0: 500' }));
    await r.tick();
    expect(r.log.slice(-1)).toEqual(['aborted 1']);
    const end = await r.parts.finish();
    expect(end).toEqual(err({ reason: 'transient', message: 'put part 0: 500' }));
    expect(r.log.at(-1)).toBe('drop 1');
    expect(r.log).not.toContain('published 0');
  });

  it('a stop of the run aborts the part packing; finish then reports it', async () => {
    const r = rig();
    await r.start(0);
    r.stop.abort();
    await r.tick();
    const end = await r.parts.finish();
    expect(end.ok).toBe(false);
    expect(r.log).toEqual(['start 0', 'aborted 0', 'drop 0']);
  });
});
