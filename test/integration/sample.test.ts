/**
 * The whole pipeline through the CLI on the bundled sample, in temp dirs.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rig, SAMPLE, started, walk } from '../helpers/rig.js';
import { isoToNs, loadDefects, parquetRows, referenceDecode, unzstd } from './verify.js';

const defects = loadDefects(SAMPLE);
const bad = new Map<string, string>([
  ...defects.missing.map((b): [string, string] => [b, 'missing']),
  ...defects.corrupt_gzip.map((b): [string, string] => [b, 'corrupt-gzip']),
  ...defects.undecodable.map((d): [string, string] => [d.blob_id, 'undecodable']),
]);

describe('the sample pipeline, end to end', () => {
  const rig = new Rig();
  let first: Awaited<ReturnType<Rig['run']>>;
  beforeAll(async () => {
    first = await rig.run(['run', '--cache-dir', 'cache']);
  }, 300_000);
  afterAll(() => {
    rig.cleanup();
  });

  it('succeeds and reports a summary', () => {
    expect(first.stderr).not.toMatch(/\n\s+at /);
    expect(first.code).toBe(0);
    const fin = first.events.find((e) => e.type === 'run-finished');
    expect(fin).toMatchObject({ ok: true, failed: 0, skipped: 0 });
  });

  it('packs every row of every parquet, in order, with every column and the decoded content', async () => {
    const hf = join(rig.dir, 'hf/data');
    let checked = 0;
    for (const lang of readdirSync(hf).sort()) {
      for (const file of readdirSync(join(hf, lang)).sort()) {
        const shard = /-(\d+)-of-/.exec(file)?.[1] ?? '';
        const rows = await parquetRows(join(hf, lang, file));
        const famDir = join(rig.cache, 'bucket/packed', lang);
        const parts = readdirSync(famDir)
          .filter((n) => n.startsWith(`${lang}-${shard}-`) && n.endsWith('.jsonl.zst'))
          .sort();
        expect(parts.length).toBe(Math.ceil(rows.length / 250));
        const lines: Record<string, unknown>[] = [];
        const errors: Record<string, unknown>[] = [];
        for (const p of parts) {
          const text = await unzstd(join(famDir, p));
          for (const l of text.split('\n').filter(Boolean))
            lines.push(JSON.parse(l) as Record<string, unknown>);
          const errPath = join(famDir, p.replace('.jsonl.zst', '.errors.jsonl'));
          try {
            for (const l of readFileSync(errPath, 'utf8').split('\n').filter(Boolean))
              errors.push(JSON.parse(l) as Record<string, unknown>);
          } catch {
            // no bad rows in this part
          }
        }
        const expected = rows.filter((r) => !bad.has(String(r.blob_id)));
        expect(lines.length).toBe(expected.length);
        expect(errors.map((e) => [e.blob_id, e.reason])).toEqual(
          rows
            .filter((r) => bad.has(String(r.blob_id)))
            .map((r) => [r.blob_id, bad.get(String(r.blob_id))]),
        );
        for (const [i, row] of expected.entries()) {
          const line = lines[i] ?? {};
          expect(Object.keys(line)).toEqual([
            ...Object.keys(row).filter((k) => !k.startsWith('__')),
            'content',
          ]);
          for (const k of [
            'blob_id',
            'path',
            'repo_name',
            'src_encoding',
            'language',
            'extension',
            'is_vendor',
            'gha_license_id',
          ]) {
            expect(line[k], `${lang}/${file} row ${i} ${k}`).toEqual(row[k]);
          }
          expect(line.detected_licenses).toEqual(row.detected_licenses);
          expect(BigInt(line.length_bytes as number)).toBe(BigInt(row.length_bytes as number));
          expect(isoToNs(line.committer_date as string)).toBe(row.__committer_ns);
          if (row.__gha_ns === null) expect(line.gha_event_created_at).toBeNull();
          else expect(isoToNs(line.gha_event_created_at as string)).toBe(row.__gha_ns);
          const gz = readFileSync(join(rig.dir, 'swh/content', String(row.blob_id)));
          expect(line.content, `${lang}/${file} row ${i} content`).toBe(
            referenceDecode(gz, String(row.src_encoding)),
          );
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(2900);
  });

  it('writes one s5cmd line per row and syncs parquets and cmd files to the bucket', async () => {
    const cmd = readFileSync(join(rig.cache, 'work/cmds/C++/train-00001-of-00002.cmd.txt'), 'utf8')
      .split('\n')
      .filter(Boolean);
    const rows = await parquetRows(join(rig.dir, 'hf/data/C++/train-00001-of-00002.parquet'));
    expect(cmd.length).toBe(rows.length);
    expect(cmd[0]).toBe(
      `cp s3://softwareheritage/content/${String(rows[0]?.blob_id)} blobs/C++/00001/${String(rows[0]?.blob_id)}.gz`,
    );
    const synced = walk(join(rig.cache, 'bucket')).map((f) =>
      f.slice(join(rig.cache, 'bucket').length + 1),
    );
    expect(synced).toContain('data/Graphviz_(DOT)/train-00000-of-00001.parquet');
    expect(synced).toContain('cmds/Graphviz_(DOT)/train-00000-of-00001.cmd.txt');
    expect(readFileSync(join(rig.cache, 'bucket/data/C/train-00000-of-00001.parquet'))).toEqual(
      readFileSync(join(rig.dir, 'hf/data/C/train-00000-of-00001.parquet')),
    );
  });

  it('skips everything on a second run, and a dry run plans nothing and writes nothing', async () => {
    const before = rig.outputs(['bucket', 'work', 'state']);
    const again = await rig.run(['run', '--cache-dir', 'cache']);
    expect(again.code).toBe(0);
    expect(started(again)).toEqual([]);
    const dry = await rig.run(['run', '--dry-run', '--cache-dir', 'cache']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('Everything is up to date.');
    expect(rig.outputs(['bucket', 'work', 'state'])).toEqual(before);
  });

  it('status reports every stage done', async () => {
    const st = await rig.run(['status', '--json', '--cache-dir', 'cache']);
    expect(st.code).toBe(0);
    const status = JSON.parse(st.stdout) as {
      stages: { stage: string; done: number; pending: number; failed: number }[];
      running: unknown[];
      workers: { worker: string; done: number }[];
    };
    expect(status.stages.find((r) => r.stage === 'pack')).toMatchObject({
      done: 7,
      pending: 0,
      failed: 0,
    });
    expect(status.running).toEqual([]);
    // One process did everything: one worker, credited with every task.
    expect(status.workers).toHaveLength(1);
    expect(status.workers[0]?.done).toBe(47);
  });
});
