/**
 * Damaged state heals itself through the CLI: a torn or garbage part record, a part of the right
 * size with damaged bytes, a truncated marker, a missing `.errors.jsonl` sidecar. Each is treated
 * as absent (reported once as a note) and redone in the same invocation, and the outputs end up
 * byte-identical to a clean run; `reset` and `--force` drop part records too.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Rig, started, walk } from '../helpers/rig.js';
import type { CliResult } from '../helpers/rig.js';

const PACK_C = 'pack:C/train-00000-of-00001';
/** Only C: one parquet, four pack parts of 250 rows (one with an errors sidecar). */
const RUN = ['run', 'pack', '--only', 'C', '-j', '1'];

interface Body {
  fingerprint: string;
  outputs: { store: string; key: string; size: number; sha256: string }[];
}

const rigs: Rig[] = [];
afterEach(() => {
  for (const r of rigs.splice(0)) r.cleanup();
});

/** A rig where C has been packed once; returns it with the clean outputs. */
async function packedRig(): Promise<{ rig: Rig; clean: Map<string, string> }> {
  const rig = new Rig();
  rigs.push(rig);
  const r = await rig.run(RUN);
  expect(r.code, r.stderr).toBe(0);
  return { rig, clean: rig.outputs() };
}

const markerDir = (rig: Rig, stage: string, lang: string): string =>
  join(rig.cache, 'state/markers', stage, encodeURIComponent(lang));

/** The one marker file of a task (`stem` in its language folder). */
function markerFile(rig: Rig, stage: string, lang: string, stem: string): string {
  const dir = markerDir(rig, stage, lang);
  const f = readdirSync(dir).find((n) => n.startsWith(`${stem}@`));
  if (f === undefined) throw new Error(`no marker for ${stage}:${lang}/${stem}`);
  return join(dir, f);
}

const partsDir = (rig: Rig, fp: string): string =>
  join(rig.cache, 'state/parts/pack/C/train-00000-of-00001', fp);

/**
 * Turns C's finished pack back into an interrupted one: the marker goes, and a part record per
 * part (built from the marker's outputs) stays, as a kill between the last part and the marker
 * would leave them.
 */
function interruptPack(rig: Rig): { fp: string; total: number } {
  const file = markerFile(rig, 'pack', 'C', 'train-00000-of-00001');
  const body = JSON.parse(readFileSync(file, 'utf8')) as Body;
  rmSync(file);
  const byPart = new Map<number, Body['outputs']>();
  let total = 0;
  for (const o of body.outputs) {
    const m = /-(\d{6})-of-(\d{6})\./.exec(o.key);
    if (m === null) throw new Error(o.key);
    total = Number(m[2]);
    byPart.set(Number(m[1]), [...(byPart.get(Number(m[1])) ?? []), o]);
  }
  const dir = partsDir(rig, body.fingerprint);
  mkdirSync(dir, { recursive: true });
  for (const [part, outputs] of byPart) {
    writeFileSync(
      join(dir, `${String(part).padStart(6, '0')}.json`),
      JSON.stringify({ part, total, outputs, counts: { rows: 250 } }) + '\n',
    );
  }
  return { fp: body.fingerprint, total };
}

const notes = (r: CliResult): string[] =>
  r.events.filter((e) => e.type === 'note').map((e) => `${String(e.task)}: ${String(e.message)}`);

const packCounts = (r: CliResult): Record<string, number> =>
  (r.events.find((e) => e.type === 'task-succeeded' && e.task === PACK_C)?.counts ?? {}) as Record<
    string,
    number
  >;

describe('damaged state is redone, never trusted', () => {
  it('a garbage or torn part record: the run succeeds, redoing that part', async () => {
    const { rig, clean } = await packedRig();
    const { fp } = interruptPack(rig);
    writeFileSync(join(partsDir(rig, fp), '000000.json'), '{"part":0,"tot');
    writeFileSync(join(partsDir(rig, fp), '000002.json'), 'garbage\n');
    writeFileSync(
      join(partsDir(rig, fp), '000003.json'),
      JSON.stringify({ part: 1, total: 4, outputs: [], counts: {} }),
    );
    const r = await rig.run(RUN);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const damaged = notes(r).filter((n) => n.includes('part record'));
    expect(damaged).toHaveLength(3);
    expect(damaged[0]).toContain('000000.json was damaged (not valid JSON): its part is redone');
    expect(damaged[2]).toContain('000003.json was damaged (part is 1, its key says 3)');
    expect(packCounts(r)).toMatchObject({ parts: 4, resumed_parts: 1 });
    expect(rig.outputs()).toEqual(clean);
    // Reported once: the damaged records are gone, the next run has nothing to say.
    const again = await rig.run(RUN);
    expect(again.code).toBe(0);
    expect(started(again)).toEqual([]);
    expect(notes(again)).toEqual([]);
  }, 120_000);

  it('a resumed part of the right size but damaged bytes is redone, byte-identical', async () => {
    const { rig, clean } = await packedRig();
    interruptPack(rig);
    const part = join(rig.cache, 'bucket/packed/C/C-00000-000001-of-000004.jsonl.zst');
    const bytes = readFileSync(part);
    bytes.fill(0x41, 100, 200);
    writeFileSync(part, bytes);
    const r = await rig.run(RUN);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(notes(r)).toContainEqual(
      `${PACK_C}: packed/C/C-00000-000001-of-000004.jsonl.zst does not hold what part 1's record says: the part is redone`,
    );
    expect(packCounts(r)).toMatchObject({ parts: 4, resumed_parts: 3 });
    expect(rig.outputs()).toEqual(clean);
  }, 120_000);

  it('a truncated marker: its dependent runs it again first, in the same invocation', async () => {
    const { rig, clean } = await packedRig();
    const fetchMarker = markerFile(rig, 'fetch', 'C', 'train-00000-of-00001');
    writeFileSync(fetchMarker, readFileSync(fetchMarker).subarray(0, 80));
    // pack must run to read fetch's marker: its outputs go.
    for (const f of walk(join(rig.cache, 'bucket/packed/C'))) rmSync(f);
    const r = await rig.run(RUN);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(notes(r)).toContainEqual(
      `fetch:C/train-00000-of-00001: its marker was damaged (not valid JSON): it runs again before ${PACK_C}`,
    );
    expect(
      r.events
        .filter((e) => e.type === 'task-started')
        .map((e) => `${String(e.task)} ${String(e.reason)}`),
    ).toEqual([`fetch:C/train-00000-of-00001 state-damaged`, `${PACK_C} output-missing`]);
    expect(r.events.find((e) => e.type === 'run-finished')).toMatchObject({
      succeeded: 2,
      skipped: 1, // discover:C; fetch was planned as up to date and ran after all
    });
    expect(rig.outputs()).toEqual(clean);
    const again = await rig.run(RUN);
    expect(again.code).toBe(0);
    expect(started(again)).toEqual([]);
  }, 120_000);

  it('a marker for another task or fingerprint counts as damaged too', async () => {
    const { rig } = await packedRig();
    const fetchMarker = markerFile(rig, 'fetch', 'C', 'train-00000-of-00001');
    const body = JSON.parse(readFileSync(fetchMarker, 'utf8')) as Body & { task: string };
    writeFileSync(fetchMarker, JSON.stringify({ ...body, task: 'fetch:C/other' }));
    for (const f of walk(join(rig.cache, 'bucket/packed/C'))) rmSync(f);
    const r = await rig.run(RUN);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(notes(r)).toContainEqual(
      `fetch:C/train-00000-of-00001: its marker was damaged (task is fetch:C/other): it runs again before ${PACK_C}`,
    );
  }, 120_000);

  it('a missing .errors.jsonl sidecar, or a part of another size: pack runs again', async () => {
    const { rig, clean } = await packedRig();
    const sidecar = walk(join(rig.cache, 'bucket/packed/C')).find((f) =>
      f.endsWith('.errors.jsonl'),
    );
    if (sidecar === undefined) throw new Error('the sample has an errors sidecar for C');
    rmSync(sidecar);
    const dry = await rig.run([...RUN, '--dry-run', '--json']);
    const steps = (JSON.parse(dry.stdout) as { steps: { task: string; detail?: string }[] }).steps;
    expect(steps.find((s) => s.task === PACK_C)).toMatchObject({
      action: 'run',
      reason: 'output-missing',
      detail: 'packed/C/C-00000-*: the marker lists 7 objects, 6 found',
    });
    const r = await rig.run(RUN);
    expect(r.code).toBe(0);
    expect(started(r)).toEqual([PACK_C]);
    expect(rig.outputs()).toEqual(clean);

    const part = join(rig.cache, 'bucket/packed/C/C-00000-000002-of-000004.jsonl.zst');
    writeFileSync(part, Buffer.concat([readFileSync(part), Buffer.from('x')]));
    const grown = await rig.run(RUN);
    expect(grown.code).toBe(0);
    expect(started(grown)).toEqual([PACK_C]);
    expect(rig.outputs()).toEqual(clean);
  }, 120_000);

  it('a damaged manifest: discover runs again and says why', async () => {
    const { rig } = await packedRig();
    const dir = join(rig.cache, 'state/manifests/C');
    const [m] = readdirSync(dir);
    if (m === undefined) throw new Error('no manifest');
    writeFileSync(join(dir, m), '{"language":"C","files":[{"path":');
    const r = await rig.run(RUN);
    expect(r.code).toBe(0);
    expect(notes(r)).toContainEqual(
      'discover:C: its manifest was damaged (not valid JSON): discover runs again',
    );
    expect(started(r)).toEqual(['discover:C']);
  }, 120_000);
});

describe('reset and --force drop part records', () => {
  it('reset forgets the part records of the matching tasks', async () => {
    const { rig } = await packedRig();
    const { fp } = interruptPack(rig);
    expect(readdirSync(partsDir(rig, fp))).toHaveLength(4);
    const r = await rig.run(['reset', PACK_C]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`reset ${PACK_C}\n`);
    expect(r.stdout).toContain('(0 markers, 0 leases, 4 part records removed)');
    expect(walk(join(rig.cache, 'state/parts'))).toEqual([]);
    const run = await rig.run(RUN);
    expect(run.code).toBe(0);
    expect(packCounts(run)).toMatchObject({ parts: 4, resumed_parts: 0 });
  }, 120_000);

  it('--force redoes every part instead of resuming', async () => {
    const { rig, clean } = await packedRig();
    // Records of every part next to a fresh marker: only --force makes pack run.
    leftoverPartRecords(rig);
    const r = await rig.run([...RUN, '--force', PACK_C]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(packCounts(r)).toMatchObject({ parts: 4, resumed_parts: 0 });
    expect(walk(join(rig.cache, 'state/parts'))).toEqual([]);
    expect(rig.outputs()).toEqual(clean);
  }, 120_000);
});

/** Part records for every part of C's pack, its marker kept (left over by an earlier attempt). */
function leftoverPartRecords(rig: Rig): void {
  const file = markerFile(rig, 'pack', 'C', 'train-00000-of-00001');
  const saved = readFileSync(file);
  const { fp } = interruptPack(rig);
  writeFileSync(file, saved);
  expect(readdirSync(partsDir(rig, fp))).toHaveLength(4);
}
