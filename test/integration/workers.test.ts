/**
 * Many processes, one graph: workers claiming through leases in S3 state (the loopback server
 * with AWS conditional writes), a worker killed while it holds a lease, 200 claims racing for
 * one task, and static shards without leases.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeFingerprint } from '../../lib/fingerprint.js';
import { LeaseClaims } from '../../lib/leases.js';
import { S3Store } from '../../lib/io/stores/s3-store.js';
import { stageName } from '../../lib/model.js';
import type { TaskId, TaskInstance } from '../../lib/model.js';
import { BIN, collect, Rig, SAMPLE } from '../helpers/rig.js';
import type { CliResult } from '../helpers/rig.js';
import { startS3Server } from '../servers/s3/harness.js';
import type { S3TestServer } from '../servers/s3/harness.js';

let s3: S3TestServer;
let bucketN = 0;
const sample = readFileSync(join(SAMPLE, 'pipeline.yaml'), 'utf8');

beforeAll(async () => {
  s3 = await startS3Server({ buckets: [] });
}, 60_000);
afterAll(async () => {
  await s3.stop();
});

/** The sample pipeline with its state (markers, leases) in a fresh S3 bucket. */
async function sharedRig(extra = '') {
  const bucket = `state-${String(++bucketN)}`;
  await s3.createBucket(bucket);
  const rig = new Rig({
    pipeline: `${sample}\nstate: s3://${bucket}/sf\ns3:\n  ${bucket}: { endpoint: '${s3.endpoint}' }\n${extra}`,
  });
  rig.env = { ...s3.env };
  return { rig, bucket };
}

async function keys(bucket: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.client().send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: prefix,
        ...(token !== undefined ? { ContinuationToken: token } : {}),
      }),
    );
    out.push(...(page.Contents ?? []).map((o) => o.Key ?? ''));
    token = page.NextContinuationToken;
  } while (token !== undefined);
  return out;
}

const succeededTasks = (r: CliResult) =>
  r.events.filter((e) => e.type === 'task-succeeded').map((e) => String(e.task));
const startedTasks = (r: CliResult) =>
  r.events.filter((e) => e.type === 'task-started').map((e) => String(e.task));

function countBy(ids: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const id of ids) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
}

describe('workers on one graph', () => {
  let reference: Map<string, string>;
  let total: number;
  beforeAll(async () => {
    const solo = new Rig();
    try {
      const r = await solo.run(['run', '--cache-dir', 'cache']);
      expect(r.code, r.stderr).toBe(0);
      reference = solo.outputs(['bucket']);
      total = succeededTasks(r).length;
    } finally {
      solo.cleanup();
    }
  }, 300_000);

  it('4 workers over S3 state run every task exactly once, with single-process outputs', async () => {
    const { rig, bucket } = await sharedRig();
    try {
      const runs = await Promise.all(
        [0, 1, 2, 3].map((i) =>
          rig.run(['run', '--worker', '--worker-id', `w${String(i)}`, '--cache-dir', 'cache']),
        ),
      );
      for (const r of runs) {
        expect(r.stderr).not.toMatch(/\n\s+at /);
        expect(r.code, r.stderr).toBe(0);
      }
      const executed = runs.flatMap(startedTasks);
      const counts = countBy(executed);
      expect([...counts.values()].every((n) => n === 1)).toBe(true);
      expect(counts.size).toBe(total);
      expect(runs.flatMap(succeededTasks).length).toBe(total);
      // Work was actually shared.
      expect(runs.filter((r) => startedTasks(r).length > 0).length).toBeGreaterThan(1);
      expect(rig.outputs(['bucket'])).toEqual(reference);
      // Each task was claimed once, at epoch 0, and that claim stays as its record.
      const leases = await keys(bucket, 'sf/leases/');
      expect(leases.length).toBe(total);
      expect(leases.every((k) => k.endsWith('/e00000000.json'))).toBe(true);
      const markers = await keys(bucket, 'sf/markers/');
      expect(markers.length).toBe(total);
    } finally {
      rig.cleanup();
    }
  }, 300_000);

  it('4 workers as 4 hosts (own cache dirs; state, work and bucket on S3) produce the same outputs', async () => {
    const { rig, bucket } = await sharedRig(
      `work: s3://PLACEHOLDER/work\nbucket: s3://PLACEHOLDER/out\n`,
    );
    rig.writePipeline(
      readFileSync(join(rig.dir, 'pipeline.yaml'), 'utf8').replaceAll('PLACEHOLDER', bucket),
    );
    try {
      const runs = await Promise.all(
        [0, 1, 2, 3].map((i) =>
          rig.run([
            'run',
            '--worker',
            '--worker-id',
            `host${String(i)}`,
            '--cache-dir',
            `cache-${String(i)}`,
          ]),
        ),
      );
      for (const r of runs) expect(r.code, r.stderr).toBe(0);
      const counts = countBy(runs.flatMap(startedTasks));
      expect(counts.size).toBe(total);
      expect([...counts.values()].every((n) => n === 1)).toBe(true);
      const got = new Map<string, string>();
      for (const key of await keys(bucket, 'out/')) {
        const body = await s3.client().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const bytes = (await body.Body?.transformToByteArray()) ?? new Uint8Array();
        got.set(
          `bucket/${key.slice('out/'.length)}`,
          createHash('sha256').update(bytes).digest('hex'),
        );
      }
      expect(got).toEqual(reference);
    } finally {
      rig.cleanup();
    }
  }, 300_000);

  it('a worker killed with -9 while holding a lease: its task is taken over after the TTL', async () => {
    // One slow task; the first worker sleeps in it (SLOW=1), the second does not.
    const { rig, bucket } = await sharedRig();
    const text = readFileSync(join(rig.dir, 'pipeline.yaml'), 'utf8').replace(
      '  sizes:\n',
      `  slow:\n    kind: shell\n    foreach: once\n    needs: [discover]\n    params:\n      command: 'if [ -n "\${SLOW:-}" ]; then sleep 120; fi; echo done > {outputs}'\n      outputs: ['slow.txt']\n  sizes:\n`,
    );
    rig.writePipeline(text);
    /** Starts a worker that sleeps inside `slow`, and resolves once it is running it. */
    async function doomedWorker(id: string) {
      const child = spawn(
        process.execPath,
        [
          BIN,
          'run',
          'slow',
          '--worker',
          '--worker-id',
          id,
          '--lease-ttl',
          '3',
          '--cache-dir',
          'cache',
        ],
        {
          cwd: rig.dir,
          env: { ...process.env, ...rig.env, SLOW: '1' },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      const lines = createInterface({ input: child.stdout });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`${id} never started the slow task`));
        }, 60_000);
        lines.on('line', (l) => {
          if (l.includes('"task-started"') && l.includes('"slow"')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      return child;
    }
    const status = async () =>
      JSON.parse((await rig.run(['status', '--json', '--cache-dir', 'cache'])).stdout) as {
        running: { task: string; worker: string }[];
        stale: { task: string; worker: string }[];
        workers: { worker: string; done: number; running: number }[];
      };
    try {
      const first = await doomedWorker('doomed');
      const live = await status();
      expect(live.running).toMatchObject([{ task: 'slow', worker: 'doomed' }]);
      expect(live.workers.find((w) => w.worker === 'doomed')).toMatchObject({ running: 1 });
      const exited = collect(first);
      first.kill('SIGKILL');
      await exited;
      // (The tasks slow depends on finished: their claims stay as their record.)
      const slowLeases = async () =>
        (await keys(bucket, 'sf/leases/')).filter((k) => k.includes('/slow/'));
      expect((await slowLeases()).length).toBe(1);
      const t0 = Date.now();
      const second = await rig.run([
        'run',
        'slow',
        '--worker',
        '--worker-id',
        'rescuer',
        '--lease-ttl',
        '3',
        '--poll',
        '200',
        '--cache-dir',
        'cache',
      ]);
      expect(second.code, second.stderr).toBe(0);
      expect(startedTasks(second)).toContain('slow');
      expect(second.stdout).toMatch(/took over slow/);
      // Not before the dead worker's lease went stale (3 s TTL, 1 s store-clock granularity).
      expect(Date.now() - t0).toBeGreaterThanOrEqual(2_000);
      const markers = (await keys(bucket, 'sf/markers/')).filter(
        (k) => k.includes('/slow/') || k.includes('slow/@'),
      );
      expect(markers.length).toBe(1);
      const body = await s3
        .client()
        .send(new GetObjectCommand({ Bucket: bucket, Key: markers[0] ?? '' }));
      const marker = JSON.parse((await body.Body?.transformToString()) ?? '{}') as {
        worker: string;
      };
      expect(marker.worker).toBe('rescuer');
      // The dead worker's epoch and the rescuer's stay as the record of the finished claim:
      // neither running nor stale.
      // (On a loaded machine the rescuer can miss its own heartbeats past half its 3 s TTL,
      // fence itself and claim again: more epochs, still one run and one marker.)
      const record = (await slowLeases()).map((k) => k.split('/').at(-1));
      expect(record.slice(0, 2)).toEqual(['e00000000.json', 'e00000001.json']);
      expect(record).toEqual(record.map((_k, i) => `e${String(i).padStart(8, '0')}.json`));
      const after = await status();
      expect(after.running).toEqual([]);
      expect(after.stale).toEqual([]);
      expect(after.workers.find((w) => w.worker === 'rescuer')).toMatchObject({
        done: 1,
        running: 0,
      });

      // reset forgets the marker, so slow runs again; a second doomed worker dies holding it.
      const reset = await rig.run(['reset', 'slow', '--cache-dir', 'cache']);
      expect(reset.code, reset.stderr).toBe(0);
      expect(reset.stdout).toContain('reset slow');
      expect(reset.stdout).toContain('1 marker, 2 leases, 0 part records removed');
      expect(await slowLeases()).toEqual([]);
      const again = await doomedWorker('doomed-2');
      const gone = collect(again);
      again.kill('SIGKILL');
      await gone;
      // unlock --stale leaves a live lease alone, and drops it once it is stale.
      let st = await status();
      for (let i = 0; i < 40 && st.stale.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 250));
        st = await status();
      }
      expect(st.stale).toMatchObject([{ task: 'slow', worker: 'doomed-2' }]);
      const unlock = await rig.run(['unlock', '--stale', '--cache-dir', 'cache']);
      expect(unlock.code, unlock.stderr).toBe(0);
      expect(unlock.stdout).toContain('dropped the lease of slow held by doomed-2');
      expect(await slowLeases()).toEqual([]);
    } finally {
      rig.cleanup();
    }
  }, 180_000);

  it('refuses --worker on a store without create-only puts, pointing at --shard; doctor says why', async () => {
    const { rig, bucket } = await sharedRig();
    await s3.setFeatures({ ifNoneMatch: false, ifMatch: false, conditionalDelete: false });
    try {
      const doc = await rig.run(['doctor', `s3://${bucket}/sf`, '--cache-dir', 'cache']);
      expect(doc.code).toBe(1);
      expect(doc.stdout).toMatch(/--shard/);
      const forced = await rig.run(['run', '--worker', '--force', '--cache-dir', 'cache']);
      expect(forced.code).toBe(2);
      expect(forced.stderr).toMatch(/stackflow reset/);
      const r = await rig.run(['run', '--worker', '--cache-dir', 'cache']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/create-only/);
      expect(r.stderr).toMatch(/--shard i\/N/);
      expect(startedTasks(r)).toEqual([]);
    } finally {
      await s3.setFeatures({ ifNoneMatch: true, ifMatch: true, conditionalDelete: true });
      rig.cleanup();
    }
  }, 60_000);

  it('static shards cover the graph exactly once, without leases', async () => {
    const { rig, bucket } = await sharedRig();
    try {
      const runs = await Promise.all(
        [0, 1, 2].map((i) =>
          rig.run(['run', '--shard', `${String(i)}/3`, '--poll', '200', '--cache-dir', 'cache']),
        ),
      );
      for (const r of runs) expect(r.code, r.stderr).toBe(0);
      const counts = countBy(runs.flatMap(startedTasks));
      expect(counts.size).toBe(total);
      expect([...counts.values()].every((n) => n === 1)).toBe(true);
      expect(rig.outputs(['bucket'])).toEqual(reference);
      expect(await keys(bucket, 'sf/leases/')).toEqual([]);
    } finally {
      rig.cleanup();
    }
  }, 300_000);
});

describe('claims racing for one task', () => {
  const task: TaskInstance = {
    id: 'pack:C++/train-00000-of-00002' as TaskId,
    stage: stageName('pack'),
    kind: 'pack',
    language: 'C++',
    file: {
      path: 'data/C++/train-00000-of-00002.parquet',
      stem: 'train-00000-of-00002',
      size: 1,
      sha256: 'a'.repeat(64),
    },
    params: {},
    deps: [],
  };
  const fp = computeFingerprint({
    task,
    implVersion: '1',
    tools: {},
    revision: 'r',
    stageParams: {},
    inputs: [],
    upstream: new Map(),
  });

  async function race(label: string) {
    const bucket = `race-${label}-${String(++bucketN)}`;
    await s3.createBucket(bucket);
    Object.assign(process.env, s3.env);
    const store = new S3Store(
      {
        bucket,
        prefix: '',
        endpoint: s3.endpoint,
        region: 'us-east-1',
        pathStyle: true,
        unsigned: false,
      },
      { maxSockets: 256 },
    );
    const claimers = Array.from(
      { length: 200 },
      (_, i) => new LeaseClaims(store, { worker: `c${String(i)}`, host: 'h', ttlMs: 60_000 }),
    );
    const outcomes = await Promise.all(claimers.map((c) => c.claim(task, fp)));
    const won = outcomes.filter((o) => o.ok && o.value.kind === 'won');
    const held = outcomes.filter((o) => o.ok && o.value.kind === 'held');
    for (const o of won) if (o.ok && o.value.kind === 'won') await o.value.claim.release('failed');
    store.close();
    return { won: won.length, held: held.length, leftover: await keys(bucket, 'leases/') };
  }

  it('200 concurrent claims: exactly one winner', async () => {
    expect(await race('full')).toEqual({ won: 1, held: 199, leftover: [] });
  }, 60_000);

  it('the same on a store that enforces only create-only puts (If-Match ignored)', async () => {
    await s3.setFeatures({ ifMatch: false, conditionalDelete: false });
    try {
      expect(await race('weak')).toEqual({ won: 1, held: 199, leftover: [] });
    } finally {
      await s3.setFeatures({ ifMatch: true, conditionalDelete: true });
    }
  }, 60_000);
});
