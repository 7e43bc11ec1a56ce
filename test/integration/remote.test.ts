/**
 * The sample pipeline against real-protocol servers on loopback: the Hub (parquets), S3 (the
 * user's bucket, the state, and Software Heritage's content bucket), through the real CLI. Its
 * outputs must be byte-identical to the local-mirror run; with faults injected on both servers
 * too. Then the failures a user must be told about clearly: a wrong checksum, a gated repo
 * without a token, hostile remote names.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReportModel } from '../../lib/report-html/types.js';
import { Rig, SAMPLE, started, walk } from '../helpers/rig.js';
import type { CliResult } from '../helpers/rig.js';
import { startHubServer } from '../servers/hub/harness.js';
import type { HubServerHandle } from '../servers/hub/harness.js';
import { startS3Server } from '../servers/s3/harness.js';
import type { S3TestServer } from '../servers/s3/harness.js';

const TOKEN = 'hf_loopbackSecretToken0123456789';
const REPO = 'bigcode/the-stack-v2';

let s3: S3TestServer;
let hub: HubServerHandle;
/** sha256 by key of the local-mirror run's bucket (the reference outputs). */
let reference: Map<string, string>;
let bucketN = 0;

/** The sample pipeline, pointed at the servers, with its own fresh output bucket. */
function remotePipeline(bucket: string, extra = ''): string {
  const ep = s3.endpoint;
  return `version: 1
dataset:
  repo: ${REPO}
  revision: main
  source: hf://datasets/${REPO}
  languages: all
content:
  source: s3://softwareheritage/content
bucket: s3://${bucket}/the-stack-v2
state: s3://${bucket}/state
s3:
  softwareheritage: { endpoint: '${ep}' }
  ${bucket}: { endpoint: '${ep}' }
tasks:
  discover: { kind: discover }
  fetch: { kind: fetch, needs: [discover] }
  cmds:
    kind: cmds
    needs: [fetch]
    params: { dest: 'blobs/{language}/{shard}/{blob_id}.gz' }
  sync: { kind: sync, needs: [fetch, cmds] }
  pack:
    kind: pack
    needs: [fetch]
    params: { rows_per_part: 250, concurrency: 32 }
  stats: { kind: stats, needs: [pack] }
  stats-summary: { kind: stats-merge, needs: [stats] }
${extra}`;
}

/** A rig whose CLI talks to both servers, with a fresh bucket. */
async function remoteRig(opts: { token?: string | undefined; extra?: string } = {}) {
  const bucket = `out-${String(++bucketN)}`;
  await s3.createBucket(bucket);
  const rig = new Rig({ pipeline: remotePipeline(bucket, opts.extra) });
  rig.env = {
    ...s3.env,
    HF_ENDPOINT: hub.endpoint,
    HF_HOME: join(rig.dir, 'hf-home'),
    ...(opts.token !== undefined ? { HF_TOKEN: opts.token } : {}),
  };
  return { rig, bucket };
}

/** sha256 of every object under `bucket/prefix`, keyed relative to the prefix. */
async function bucketHashes(bucket: string, prefix: string): Promise<Map<string, string>> {
  const client = s3.client();
  const out = new Map<string, string>();
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: prefix,
        ...(token !== undefined ? { ContinuationToken: token } : {}),
      }),
    );
    for (const o of page.Contents ?? []) {
      const key = o.Key ?? '';
      const body = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const bytes = await body.Body?.transformToByteArray();
      out.set(
        key.slice(prefix.length),
        createHash('sha256')
          .update(bytes ?? new Uint8Array())
          .digest('hex'),
      );
    }
    token = page.NextContinuationToken;
  } while (token !== undefined);
  return out;
}

const finished = (r: CliResult) => r.events.find((e) => e.type === 'run-finished');
const noStack = (r: CliResult) => {
  expect(r.stderr).not.toMatch(/\n\s+at /);
};

beforeAll(async () => {
  s3 = await startS3Server({ buckets: ['softwareheritage'] });
  await s3.upload('softwareheritage', 'content/', join(SAMPLE, 'swh/content'));
  hub = await startHubServer({ root: join(SAMPLE, 'hf'), repo: REPO, token: TOKEN, pageSize: 3 });
  const local = new Rig();
  try {
    const r = await local.run(['run', '--cache-dir', 'cache']);
    expect(r.code).toBe(0);
    reference = new Map(
      [...local.outputs(['bucket'])].map(([k, v]) => [k.slice('bucket/'.length), v]),
    );
  } finally {
    local.cleanup();
  }
}, 300_000);

afterAll(async () => {
  await hub.stop();
  await s3.stop();
});

describe('the sample pipeline against the Hub and S3 on loopback', () => {
  it('produces outputs byte-identical to the local-mirror run, and a rerun starts nothing', async () => {
    const { rig, bucket } = await remoteRig({ token: TOKEN });
    try {
      const r = await rig.run(['run', '--cache-dir', 'cache']);
      noStack(r);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toContain(`revision main is commit ${hub.sha}`);
      const got = await bucketHashes(bucket, 'the-stack-v2/');
      expect([...got.keys()].sort()).toEqual([...reference.keys()].sort());
      expect(got).toEqual(reference);
      const markers = await bucketHashes(bucket, 'state/markers/');
      expect(markers.size).toBe(r.events.filter((e) => e.type === 'task-succeeded').length);
      const again = await rig.run(['run', '--cache-dir', 'cache']);
      expect(again.code, again.stderr).toBe(0);
      expect(started(again)).toEqual([]);
      // The report reads the S3 state alone; its links point into the S3 bucket.
      const report = await rig.run(['report', '--cache-dir', 'cache']);
      expect(report.code, report.stderr).toBe(0);
      const page = readFileSync(join(rig.dir, 'report.html'), 'utf8');
      const model = JSON.parse(
        /id="report-data">(.*?)<\/script>/s.exec(page)?.[1] ?? '{}',
      ) as ReportModel;
      expect(model.totals).toMatchObject({ done: markers.size, tasks: markers.size, failed: 0 });
      expect(model.pipeline.state).toBe(`s3://${bucket}/state`);
      const errorFiles = model.errors.notPacked.flatMap((x) => x.files);
      expect(errorFiles.length).toBeGreaterThan(0);
      for (const f of errorFiles)
        expect(f).toMatch(new RegExp(`^s3://${bucket}/the-stack-v2/packed/`));
      expect(model.stats?.source).toBe(`s3://${bucket}/the-stack-v2/stats/summary.json`);
      expect(Object.keys(model.stats?.languages ?? {})).toHaveLength(6);
      // The token reached the Hub API, never the CDN, and never any output.
      expect(hub.stats().authOnCdn).toBe(0);
      expect(r.stdout + r.stderr + again.stdout + again.stderr).not.toContain(TOKEN);
      for (const [key] of markers) {
        const body = await s3
          .client()
          .send(new GetObjectCommand({ Bucket: bucket, Key: `state/markers/${key}` }));
        expect(await body.Body?.transformToString()).not.toContain(TOKEN);
      }
    } finally {
      rig.cleanup();
    }
  }, 300_000);

  it('with ~10% of requests faulted on both servers: same outputs, bounded retries, resumed downloads', async () => {
    const { rig, bucket } = await remoteRig({ token: TOKEN });
    await s3.resetStats();
    await s3.setFaults({ rate: 0.1, kinds: ['500', '503', 'reset', 'reset-mid-body'], seed: 42 });
    hub.resetStats();
    hub.setFaults({
      seed: 42,
      rules: [
        // The first 7 CDN responses break mid-body: each must resume with a Range request.
        { kind: 'cdn', fault: 'reset', first: 7 },
        { kind: 'tree', fault: 'rate-limit', rate: 0.1, resetSeconds: 1 },
        { kind: 'resolve', fault: 'unavailable', rate: 0.1 },
      ],
    });
    try {
      const r = await rig.run(['run', '--cache-dir', 'cache']);
      const s3Faults = Object.values((await s3.stats()).faults).reduce((a, b) => a + b, 0);
      const hubStats = hub.stats();
      await s3.setFaults(null); // before the test's own reads
      noStack(r);
      expect(r.code, r.stderr).toBe(0);
      expect(await bucketHashes(bucket, 'the-stack-v2/')).toEqual(reference);
      const fin = finished(r) as { requestRetries: number };
      expect(s3Faults).toBeGreaterThan(20);
      expect(fin.requestRetries).toBeGreaterThanOrEqual(s3Faults);
      // Bounded: a handful of retries per fault at most, not a retry storm.
      expect(fin.requestRetries).toBeLessThan(3 * (s3Faults + 7 + hubStats.rateLimited + 20));
      const resumed = hubStats.ranges.filter((x) => x.offset > 0);
      // The first CDN request is the run's one-byte access probe; each of the other 6 resets
      // mid-body is followed by exactly one Range request from its offset.
      expect(resumed).toHaveLength(6);
      // Resumed, not restarted: about one copy of each parquet was served, not 1.5.
      const parquetBytes = walk(join(SAMPLE, 'hf')).reduce((n, f) => n + statSync(f).size, 0);
      expect(hubStats.bytesServed).toBeGreaterThanOrEqual(parquetBytes);
      expect(hubStats.bytesServed).toBeLessThan(parquetBytes * 1.25);
    } finally {
      await s3.setFaults(null);
      hub.setFaults({});
      rig.cleanup();
    }
  }, 300_000);

  it('a wrong checksum fails that fetch clearly and publishes nothing for it', async () => {
    const { rig, bucket } = await remoteRig({ token: TOKEN });
    const victim = 'data/Python/train-00000-of-00001.parquet';
    hub.setFaults({ corrupt: [victim] });
    try {
      const r = await rig.run(['run', '--cache-dir', 'cache']);
      noStack(r);
      expect(r.code).toBe(1);
      const failed = r.events.filter((e) => e.type === 'task-failed');
      expect(failed.map((e) => e.task)).toEqual(['fetch:Python/train-00000-of-00001']);
      expect(JSON.stringify(failed[0])).toMatch(/sha256/);
      expect(rig.outputs(['work']).has(`work/${victim}`)).toBe(false);
      const keys = [...(await bucketHashes(bucket, 'the-stack-v2/')).keys()];
      expect(keys.filter((k) => k.includes('Python'))).toEqual([]);
    } finally {
      hub.setFaults({});
      rig.cleanup();
    }
  }, 300_000);

  it('a gated repo without a token fails fast with how to get access', async () => {
    const { rig } = await remoteRig({ token: undefined });
    try {
      hub.resetStats();
      const t0 = Date.now();
      const r = await rig.run(['run', '--cache-dir', 'cache']);
      noStack(r);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/gated/);
      expect(r.stderr).toContain(`https://huggingface.co/datasets/${REPO}`);
      expect(r.stderr).toMatch(/HF_TOKEN/);
      expect(Date.now() - t0).toBeLessThan(15_000);
      // Listing a gated repo is allowed (discover runs); one probe of a download finds the door
      // closed before any fetch starts.
      const s = hub.stats();
      expect(s.requests.resolve).toBe(1);
      expect(s.requests.cdn).toBe(0);
      expect(started(r).filter((t) => !t.startsWith('discover:'))).toEqual([]);
    } finally {
      rig.cleanup();
    }
  }, 60_000);

  it('a wrong token is refused without echoing it', async () => {
    const wrong = 'hf_wrongTokenThatMustNotLeak999';
    const { rig } = await remoteRig({ token: wrong });
    try {
      const r = await rig.run(['run', '--cache-dir', 'cache']);
      noStack(r);
      expect(r.code).toBe(2);
      expect(r.stderr + r.stdout).not.toContain(wrong);
      expect(r.stderr).toMatch(/A token was sent \(from HF_TOKEN\)/);
    } finally {
      rig.cleanup();
    }
  }, 60_000);

  it('rejects hostile names in a listing before writing anything', async () => {
    const { rig } = await remoteRig({ token: TOKEN });
    hub.setFaults({ hostileNames: ['data/../evil.parquet'] });
    try {
      const r = await rig.run(['run', '--cache-dir', 'cache']);
      noStack(r);
      expect(r.code).not.toBe(0);
      expect(r.stderr + r.stdout).toMatch(/evil\.parquet/);
      expect(rig.outputs(['work']).size).toBe(0);
    } finally {
      hub.setFaults({});
      rig.cleanup();
    }
  }, 60_000);
});
