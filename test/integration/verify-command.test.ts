/**
 * `stackflow verify` through the CLI: finds a damaged and a missing output (and a damaged marker)
 * on the filesystem and on S3 (the loopback server), as a table and as JSON, exits 1; `--repair`
 * resets exactly those tasks, the next run redoes them and verify is clean again. On S3 the stored
 * sha256 is trusted unless `--deep`, which re-downloads.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Rig, SAMPLE, started } from '../helpers/rig.js';
import { startS3Server } from '../servers/s3/harness.js';
import type { S3TestServer } from '../servers/s3/harness.js';

interface Report {
  tasks: number;
  outputs: number;
  bytes: number;
  damaged: {
    task: string;
    marker: string;
    problems: { kind: string; store: string; key: string; expected?: string; actual?: string }[];
  }[];
  repaired: string[];
}

const PACK_C = 'pack:C/train-00000-of-00001';
const PART = 'packed/C/C-00000-000001-of-000004.jsonl.zst';
const CMDS_C = 'cmds:C/train-00000-of-00001';
const CMD = 'cmds/C/train-00000-of-00001.cmd.txt';

const rigs: Rig[] = [];
afterEach(() => {
  for (const r of rigs.splice(0)) r.cleanup();
});

/** Flips bytes in the middle of a buffer, keeping its size. */
const damage = (b: Buffer): Buffer => {
  const out = Buffer.from(b);
  for (let i = 100; i < 164; i++) out[i] = (out[i] ?? 0) ^ 0xff;
  return out;
};

const summary = (r: Report) =>
  r.damaged.map((d) => ({ task: d.task, problems: d.problems.map((p) => `${p.kind} ${p.key}`) }));

describe('verify on the filesystem', () => {
  it('finds damaged and missing outputs and damaged markers; --repair, run, clean', async () => {
    const rig = new Rig();
    rigs.push(rig);
    const first = await rig.run(['run', '--only', 'C,Python']);
    expect(first.code, first.stderr).toBe(0);
    const clean = rig.outputs();

    const ok = await rig.run(['verify']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(
      /^\d+ finished tasks checked \(\d+ outputs, [\d.]+ MB\): all outputs are intact\n$/,
    );

    const part = join(rig.cache, 'bucket', PART);
    writeFileSync(part, damage(readFileSync(part)));
    rmSync(join(rig.cache, 'work', CMD));
    const markers = join(rig.cache, 'state/markers/fetch/Python');
    const [fetchMarker] = readdirSync(markers);
    if (fetchMarker === undefined) throw new Error('no fetch marker');
    writeFileSync(join(markers, fetchMarker), '{"schema":1,"task":');

    const table = await rig.run(['verify']);
    expect(table.code).toBe(1);
    const lines = table.stdout.split('\n');
    expect(lines[0]).toMatch(/^task +store +key +problem$/);
    expect(lines[1]).toMatch(new RegExp(`^${CMDS_C} +work +${CMD} +missing$`));
    expect(lines[2]).toMatch(
      /^fetch:Python\/train-00000-of-00001 +state +markers\/fetch\/Python\/.+ +marker damaged \(not valid JSON\)$/,
    );
    expect(lines[3]).toMatch(
      new RegExp(
        `^${PACK_C} +bucket +${PART} +sha256 [0-9a-f]{12}…, the marker says [0-9a-f]{12}…$`,
      ),
    );
    expect(table.stdout).toContain(
      '3 damaged\n`stackflow verify --repair` resets exactly these tasks',
    );

    const json = await rig.run(['verify', '--json']);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as Report;
    expect(summary(report)).toEqual([
      { task: CMDS_C, problems: [`missing ${CMD}`] },
      {
        task: 'fetch:Python/train-00000-of-00001',
        problems: [`marker-damaged markers/fetch/Python/${fetchMarker}`],
      },
      { task: PACK_C, problems: [`sha256 ${PART}`] },
    ]);
    expect(report.damaged[2]?.problems[0]?.expected).toMatch(/^[0-9a-f]{64}$/);
    expect(report.repaired).toEqual([]);

    // Targets narrow it like reset's patterns.
    const onlyPack = await rig.run(['verify', 'pack', '--json']);
    expect(onlyPack.code).toBe(1);
    expect(summary(JSON.parse(onlyPack.stdout) as Report).map((d) => d.task)).toEqual([PACK_C]);
    const none = await rig.run(['verify', 'nosuchstage']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no finished task matches nosuchstage');

    const repair = await rig.run(['verify', '--repair', '--json']);
    expect(repair.code).toBe(1);
    expect((JSON.parse(repair.stdout) as Report).repaired).toEqual([
      CMDS_C,
      'fetch:Python/train-00000-of-00001',
      PACK_C,
    ]);
    const rerun = await rig.run(['run', '--only', 'C,Python']);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(started(rerun).sort()).toEqual([CMDS_C, 'fetch:Python/train-00000-of-00001', PACK_C]);
    expect(rig.outputs()).toEqual(clean);
    const after = await rig.run(['verify']);
    expect(after.code).toBe(0);
    expect(after.stdout).toContain('all outputs are intact');
  }, 240_000);
});

describe('verify on S3', () => {
  let s3: S3TestServer;
  beforeAll(async () => {
    s3 = await startS3Server({ buckets: ['out'] });
  }, 60_000);
  afterAll(async () => {
    await s3.stop();
  });

  it('trusts the stored sha256 unless --deep; finds missing objects; --repair, run, clean', async () => {
    const sample = readFileSync(join(SAMPLE, 'pipeline.yaml'), 'utf8');
    const rig = new Rig({
      pipeline: `${sample}\nbucket: s3://out/the-stack\nstate: s3://out/state\ns3:\n  out: { endpoint: '${s3.endpoint}' }\n`,
    });
    rigs.push(rig);
    rig.env = { ...s3.env };
    const first = await rig.run(['run', 'pack', 'sync', '--only', 'C']);
    expect(first.code, first.stderr).toBe(0);
    expect((await rig.run(['verify'])).code).toBe(0);

    const client = s3.client();
    const key = `the-stack/${PART}`;
    const got = await client.send(new GetObjectCommand({ Bucket: 'out', Key: key }));
    const bytes = Buffer.from(
      await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    );
    const head = await client.send(new HeadObjectCommand({ Bucket: 'out', Key: key }));
    // Same size, same stored sha256 metadata, other bytes: only re-reading finds it.
    await client.send(
      new PutObjectCommand({
        Bucket: 'out',
        Key: key,
        Body: damage(bytes),
        Metadata: head.Metadata ?? {},
      }),
    );
    const shallow = await rig.run(['verify', '--json']);
    expect(shallow.code, shallow.stderr).toBe(0);
    const deep = await rig.run(['verify', '--deep', '--json']);
    expect(deep.code).toBe(1);
    expect(summary(JSON.parse(deep.stdout) as Report)).toEqual([
      { task: PACK_C, problems: [`sha256 ${PART}`] },
    ]);

    // A missing object and one of another size are found without --deep.
    const sidecar = 'packed/C/C-00000-000000-of-000004.errors.jsonl';
    await client.send(new DeleteObjectCommand({ Bucket: 'out', Key: `the-stack/${sidecar}` }));
    const synced = 'cmds/C/train-00000-of-00001.cmd.txt';
    await client.send(
      new PutObjectCommand({ Bucket: 'out', Key: `the-stack/${synced}`, Body: 'x' }),
    );
    const shallow2 = await rig.run(['verify', '--json']);
    expect(shallow2.code).toBe(1);
    expect(summary(JSON.parse(shallow2.stdout) as Report)).toEqual([
      { task: PACK_C, problems: [`missing ${sidecar}`] },
      { task: 'sync:C/train-00000-of-00001', problems: [`size ${synced}`] },
    ]);
    const deep2 = await rig.run(['verify', '--deep', '--json']);
    expect(summary(JSON.parse(deep2.stdout) as Report)).toEqual([
      { task: PACK_C, problems: [`missing ${sidecar}`, `sha256 ${PART}`] },
      { task: 'sync:C/train-00000-of-00001', problems: [`size ${synced}`] },
    ]);

    const repair = await rig.run(['verify', '--deep', '--repair']);
    expect(repair.code).toBe(1);
    expect(repair.stdout).toContain(`reset 2 tasks (${PACK_C}, sync:C/train-00000-of-00001)`);
    const rerun = await rig.run(['run', 'pack', 'sync', '--only', 'C']);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(started(rerun).sort()).toEqual([PACK_C, 'sync:C/train-00000-of-00001']);
    const after = await rig.run(['verify', '--deep']);
    expect(after.code, after.stdout).toBe(0);
  }, 240_000);
});
