/**
 * pack publishes a part while it packs the next one (tasks/pack/run.ts). Through the real CLI,
 * with the bucket and the state on the S3 test server: a part whose upload fails for good fails
 * the pack with that part's error; the part after it is never published, the parts before it
 * keep their records, nothing is left in scratch, and a rerun resumes them and writes the same
 * bytes as a run that never failed.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rig } from '../helpers/rig.js';
import type { CliResult } from '../helpers/rig.js';
import { startS3Server } from '../servers/s3/harness.js';
import type { S3TestServer } from '../servers/s3/harness.js';

let s3: S3TestServer;

/** The sample's hf mirror and content, packed (850 rows of C: four parts) into an S3 bucket. */
const pipeline = (bucket: string) => `version: 1
dataset: { repo: bigcode/the-stack-v2, revision: sample-v1, source: file://hf, languages: [C] }
content: { source: file://swh/content }
bucket: s3://${bucket}/out
state: s3://${bucket}/state
s3:
  ${bucket}: { endpoint: '${s3.endpoint}' }
tasks:
  discover: { kind: discover }
  fetch: { kind: fetch, needs: [discover] }
  pack: { kind: pack, needs: [fetch], retries: 0, params: { rows_per_part: 250, concurrency: 16 } }
`;

const PART = (n: number) => `out/packed/C/C-00000-${String(n).padStart(6, '0')}-of-000004`;

async function rigFor(bucket: string): Promise<Rig> {
  await s3.createBucket(bucket);
  const rig = new Rig({ pipeline: pipeline(bucket) });
  rig.env = { ...s3.env };
  return rig;
}

/** sha256 of every packed part in the bucket, by key. */
async function parts(bucket: string): Promise<Map<string, string>> {
  const client = s3.client();
  const out = new Map<string, string>();
  const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'out/' }));
  for (const o of page.Contents ?? []) {
    const key = o.Key ?? '';
    const body = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const bytes = (await body.Body?.transformToByteArray()) ?? new Uint8Array();
    out.set(key, createHash('sha256').update(bytes).digest('hex'));
  }
  return out;
}

const packEvents = (r: CliResult, type: string) =>
  r.events.filter((e) => e.type === type && String(e.task).startsWith('pack:'));

beforeAll(async () => {
  s3 = await startS3Server();
}, 60_000);

afterAll(async () => {
  await s3.stop();
});

describe('pack publishes a part while it packs the next', () => {
  it('a part whose upload fails fails the pack; a rerun resumes the parts before it, same bytes', async () => {
    const clean = await rigFor('clean');
    const rig = await rigFor('faulted');
    try {
      const ref = await clean.run(['run', '--cache-dir', 'cache']);
      expect(ref.code, ref.stderr).toBe(0);
      const reference = await parts('clean');
      expect([...reference.keys()].filter((k) => k.endsWith('.jsonl.zst'))).toHaveLength(4);

      // Every upload of part 1 fails (its PUT, or its multipart requests).
      await s3.setFaults({ rate: 1, kinds: ['500'], bucket: 'faulted', keyPrefix: PART(1) });
      let failed: CliResult;
      try {
        failed = await rig.run(['run', '--cache-dir', 'cache']);
      } finally {
        await s3.setFaults(null);
      }
      expect(failed.code).toBe(1);
      expect(failed.stderr).not.toMatch(/\n\s+at /);
      const [failure] = packEvents(failed, 'task-failed');
      expect((failure?.failure as { message: string } | undefined)?.message).toContain(PART(1));
      const after = await parts('faulted');
      expect(after.has(`${PART(0)}.jsonl.zst`)).toBe(true);
      // Part 2 was packed while part 1 was being published: it waited for its turn, never came.
      expect([...after.keys()].filter((k) => k.startsWith(PART(2)))).toEqual([]);
      expect([...after.keys()].filter((k) => k.startsWith(PART(1)))).toEqual([]);
      const scratch = join(rig.cache, 'tmp');
      const left = existsSync(scratch) ? readdirSync(scratch, { recursive: true }) : [];
      expect(left.filter((f) => String(f).endsWith('.jsonl.zst'))).toEqual([]);

      const again = await rig.run(['run', '--cache-dir', 'cache']);
      expect(again.code, again.stderr).toBe(0);
      const [done] = packEvents(again, 'task-succeeded');
      expect((done?.counts as Record<string, number>).resumed_parts).toBe(1);
      expect(await parts('faulted')).toEqual(reference);
    } finally {
      clean.cleanup();
      rig.cleanup();
    }
  }, 300_000);
});
