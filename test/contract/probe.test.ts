/**
 * The store probe and `stackflow doctor` against real stores: memory, fs, and the loopback S3
 * server with its conditional-request checks switched off one by one to imitate weaker stores
 * (radosgw ignores DELETE If-Match; stock servers ignore every condition).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { doctor } from '../../lib/doctor.js';
import type { Result } from '../../lib/errors.js';
import { FsStore } from '../../lib/io/stores/fs-store.js';
import { MemoryStore } from '../../lib/io/stores/memory-store.js';
import type { ObjectStore } from '../../lib/io/stores/object-store.js';
import {
  cachedProbe,
  leaseSupport,
  probeCachePath,
  probeStore,
} from '../../lib/io/stores/probe.js';
import type { ProbeReport } from '../../lib/io/stores/probe.js';
import { S3Store } from '../../lib/io/stores/s3-store.js';
import { startS3Server } from '../servers/s3/harness.js';
import type { Features, S3TestServer } from '../servers/s3/harness.js';

let server: S3TestServer;
let n = 0;
let scratch: string;

beforeAll(async () => {
  server = await startS3Server();
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' });
  scratch = await mkdtemp(join(tmpdir(), 'stackflow-probe-'));
}, 60_000);
afterAll(async () => {
  await server.stop();
  await rm(scratch, { recursive: true, force: true });
});
afterEach(async () => {
  await server.setFeatures({ ifNoneMatch: true, ifMatch: true, conditionalDelete: true });
});

function must<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(`expected ok, got ${r.error.reason}: ${r.error.message}`);
  return r.value;
}

/** A fresh bucket, so that every test has its own store URL (and probe cache file). */
async function freshBucket(): Promise<string> {
  const bucket = `probe-${String(++n)}`;
  await server.createBucket(bucket);
  return bucket;
}

async function s3Store(): Promise<S3Store> {
  const bucket = await freshBucket();
  return new S3Store({
    bucket,
    prefix: 'state/',
    endpoint: server.endpoint,
    region: 'us-east-1',
    pathStyle: true,
    unsigned: false,
  });
}

/** What doctor needs to reach a bucket of the test server. */
const doctorOpts = (bucket: string, extra: { json?: boolean; cacheDir?: string } = {}) => ({
  s3Settings: { [bucket]: { endpoint: server.endpoint } },
  env: {},
  ...extra,
});

/** Every key left in the store (the probe must leave none). */
async function keysOf(store: ObjectStore): Promise<string[]> {
  return must(await store.list('')).objects.map((o) => o.key);
}

function expectSaneClock(report: ProbeReport) {
  const { storeNowMs, localNowMs, skewMs } = report.clock;
  expect(Math.abs(skewMs)).toBeLessThan(2000); // one host: only S3's flooring and the round trip
  expect(Math.abs(localNowMs - Date.now())).toBeLessThan(60_000);
  expect(skewMs).toBe(storeNowMs - localNowMs);
  expect(Date.parse(report.probedAt)).not.toBeNaN();
}

describe('probeStore', () => {
  it.each([
    ['memory', () => Promise.resolve(new MemoryStore('memory://probe'))],
    ['fs', async () => new FsStore(join(await mkdtemp(join(scratch, 'fs-')), 'root'))],
    ['s3', s3Store],
  ] as const)('finds every condition enforced on %s, and cleans up', async (_, make) => {
    const store = await make();
    const report = must(await probeStore(store));
    expect(report).toMatchObject({
      url: store.url,
      createOnly: true,
      ifMatch: true,
      conditionalDelete: true,
      notes: [],
    });
    expectSaneClock(report);
    expect(leaseSupport(report)).toEqual({ dynamic: true, protocol: 'create-only-epochs' });
    expect(await keysOf(store)).toEqual([]);
    if (store instanceof S3Store) store.close();
  });

  const weaker: [
    string,
    Partial<Features>,
    Pick<ProbeReport, 'createOnly' | 'ifMatch' | 'conditionalDelete'>,
  ][] = [
    [
      'If-Match on PUT',
      { ifMatch: false },
      { createOnly: true, ifMatch: false, conditionalDelete: true },
    ],
    [
      'DELETE If-Match (like radosgw)',
      { conditionalDelete: false },
      { createOnly: true, ifMatch: true, conditionalDelete: false },
    ],
    [
      'If-None-Match',
      { ifNoneMatch: false },
      { createOnly: false, ifMatch: true, conditionalDelete: true },
    ],
    [
      'every condition',
      { ifNoneMatch: false, ifMatch: false, conditionalDelete: false },
      { createOnly: false, ifMatch: false, conditionalDelete: false },
    ],
  ];
  it.each(weaker)('on S3 ignoring %s', async (_, features, expected) => {
    await server.setFeatures(features);
    const store = await s3Store();
    const report = must(await probeStore(store));
    expect(report).toMatchObject({ ...expected, notes: [] });
    expectSaneClock(report);
    const verdict = leaseSupport(report);
    expect(verdict.dynamic).toBe(expected.createOnly);
    if (!verdict.dynamic) {
      expect(verdict.reason).toContain('does not enforce create-only puts');
      expect(verdict.reason).toContain('--shard i/N');
    }
    expect(await keysOf(store)).toEqual([]);
    store.close();
  });

  it('fails, rather than guessing, when the store cannot be used', async () => {
    const gone = new S3Store({
      bucket: 'no-such-bucket',
      prefix: '',
      endpoint: server.endpoint,
      region: 'us-east-1',
      pathStyle: true,
      unsigned: false,
    });
    const r = await probeStore(gone);
    expect(r.ok ? 'ok' : r.error.reason).toBe('invalid-input');
    gone.close();
    const down = new S3Store(
      {
        bucket: 'b',
        prefix: '',
        endpoint: 'http://127.0.0.1:1',
        region: 'us-east-1',
        pathStyle: true,
        unsigned: false,
      },
      { retries: 1, baseMs: 1 },
    );
    const r2 = await probeStore(down);
    // Nothing listens there: a network failure, retried like any transient one.
    expect(r2.ok ? 'ok' : r2.error.reason).toBe('network-unreachable');
    down.close();
  });
});

describe('cachedProbe', () => {
  it('reuses a report for 24 h without a single store request', async () => {
    const cacheDir = await mkdtemp(join(scratch, 'cache-'));
    const store = await s3Store();
    const first = must(await cachedProbe(store, cacheDir));
    const path = probeCachePath(cacheDir, store.url);
    expect(path).toMatch(/\/probes\/[0-9a-f]{16}\.json$/);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual(first);

    await server.resetStats();
    expect(must(await cachedProbe(store, cacheDir))).toEqual(first);
    const almostADay = Date.parse(first.probedAt) + 24 * 3_600_000 - 1000;
    expect(must(await cachedProbe(store, cacheDir, { now: () => almostADay }))).toEqual(first);
    expect((await server.stats()).requests).toBe(0);

    // Older than 24 h, a bypass, or a torn file: probed again.
    const aDayLater = Date.parse(first.probedAt) + 24 * 3_600_000 + 1000;
    const late = must(await cachedProbe(store, cacheDir, { now: () => aDayLater }));
    expect(late.probedAt).toBe(new Date(aDayLater).toISOString());
    const afterExpiry = (await server.stats()).requests;
    expect(afterExpiry).toBeGreaterThan(0);
    const again = must(await cachedProbe(store, cacheDir, { reprobe: true }));
    expect(again.probedAt).not.toBe(late.probedAt);
    expect((await server.stats()).requests).toBeGreaterThan(afterExpiry);
    await writeFile(path, '{"url": "half a rep');
    await server.resetStats();
    must(await cachedProbe(store, cacheDir));
    expect((await server.stats()).requests).toBeGreaterThan(0);
    expect(JSON.parse(await readFile(path, 'utf8'))).toMatchObject({ url: store.url });
    store.close();
  });

  it('never serves one store the report of another', async () => {
    const cacheDir = await mkdtemp(join(scratch, 'cache-'));
    const a = new MemoryStore('memory://a');
    const b = new MemoryStore('memory://b');
    const ra = must(await cachedProbe(a, cacheDir));
    // A file that claims another URL (a hash collision, or a hand edit) is not trusted.
    await writeFile(probeCachePath(cacheDir, b.url), JSON.stringify(ra));
    expect(must(await cachedProbe(b, cacheDir)).url).toBe('memory://b');
  });
});

describe('doctor', () => {
  it('all enforced: exit 0, the table, and the lease protocol', async () => {
    const bucket = await freshBucket();
    const cacheDir = await mkdtemp(join(scratch, 'cache-'));
    const { code, out } = await doctor(`s3://${bucket}/state`, doctorOpts(bucket, { cacheDir }));
    expect(code).toBe(0);
    const lines = out.split('\n');
    expect(lines[0]).toMatch(
      new RegExp(`^stackflow doctor s3://${bucket}/state \\(probed .+Z\\)$`),
    );
    expect(lines.slice(2, 5)).toEqual([
      '  create-only puts      enforced  a lease claim is a create-only put: exactly one host wins each task',
      '  replace-if-etag puts  enforced  available; the lease protocol does not need it',
      '  conditional deletes   enforced  available; the lease protocol does not need them',
    ]);
    expect(lines[5]).toMatch(
      /^ {2}clock skew {12}[+-]\d\.\d s {4}store minus this host, ±1 s: S3 times are whole seconds; lease ages use only the store's clock$/,
    );
    expect(lines.slice(6)).toEqual([
      '',
      '✅ dynamic claiming works: stackflow run --worker uses the create-only-epochs lease protocol',
      '',
    ]);
    // The fresh report is left for runs to reuse.
    const cached = JSON.parse(
      await readFile(probeCachePath(cacheDir, `s3://${bucket}/state`), 'utf8'),
    ) as ProbeReport;
    expect(cached.createOnly).toBe(true);
  });

  it('DELETE If-Match ignored: exit 0, and says the protocol does not need it', async () => {
    await server.setFeatures({ conditionalDelete: false });
    const bucket = await freshBucket();
    const { code, out } = await doctor(`s3://${bucket}`, doctorOpts(bucket));
    expect(code).toBe(0);
    expect(out).toContain(
      '  conditional deletes   ignored   not needed: a lease holder deletes only its own epochs\n',
    );
    expect(out).toContain('  create-only puts      enforced  ');
    expect(out).toContain('✅ dynamic claiming works');
  });

  it('If-Match ignored: exit 0', async () => {
    await server.setFeatures({ ifMatch: false });
    const bucket = await freshBucket();
    const { code, out } = await doctor(`s3://${bucket}`, doctorOpts(bucket));
    expect(code).toBe(0);
    expect(out).toContain(
      '  replace-if-etag puts  ignored   not needed: leases use create-only puts only\n',
    );
  });

  it('every condition ignored: exit 1, dynamic claiming refused in favour of --shard', async () => {
    await server.setFeatures({ ifNoneMatch: false, ifMatch: false, conditionalDelete: false });
    const bucket = await freshBucket();
    const { code, out } = await doctor(`s3://${bucket}/x`, doctorOpts(bucket));
    expect(code).toBe(1);
    expect(out).toContain(
      '  create-only puts      ignored   two hosts could win the same claim: dynamic claiming needs this\n',
    );
    expect(out.trimEnd().split('\n').at(-1)).toBe(
      `❌ dynamic claiming is refused: s3://${bucket}/x does not enforce create-only puts ` +
        '(PUT If-None-Match: *), so two hosts could claim the same task: dynamic claiming ' +
        '(--worker) needs them. Split the work statically instead: run host i of N with ' +
        '--shard i/N (0-based: --shard 0/4 … --shard 3/4).',
    );
  });

  it('--json: the report and the verdict', async () => {
    await server.setFeatures({ ifNoneMatch: false });
    const bucket = await freshBucket();
    const { code, out } = await doctor(`s3://${bucket}`, doctorOpts(bucket, { json: true }));
    expect(code).toBe(1);
    const parsed = JSON.parse(out) as { report: ProbeReport; verdict: { dynamic: boolean } };
    expect(parsed.report).toMatchObject({
      url: `s3://${bucket}`,
      createOnly: false,
      ifMatch: true,
      conditionalDelete: true,
    });
    expect(parsed.verdict.dynamic).toBe(false);
  });

  it('memory and fs stores: exit 0', async () => {
    expect((await doctor('memory://doctor')).code).toBe(0);
    const dir = await mkdtemp(join(scratch, 'fs-'));
    const fs = await doctor(`file://${dir}/state`);
    expect(fs.code).toBe(0);
    expect(fs.out).toMatch(/clock skew {12}[+-]0\.\d s {4}store minus this host; lease ages/);
  });

  it('an invalid or unreachable store: exit 2 with the reason', async () => {
    expect(await doctor('gs://bucket')).toEqual({
      code: 2,
      out:
        '❌ gs://bucket: cannot use this store: unsupported store URL "gs://bucket": ' +
        'use file:///absolute/dir or s3://bucket/prefix\n',
    });
    const down = await doctor('s3://b', {
      s3Settings: { b: { endpoint: 'http://127.0.0.1:1' } },
      env: {},
      s3Store: { baseMs: 1 },
    });
    expect(down.code).toBe(2);
    expect(down.out).toMatch(/^❌ s3:\/\/b: cannot use this store: put s3:\/\/b\/_probe\//);
    const json = await doctor('s3://no-such-bucket', {
      ...doctorOpts('no-such-bucket'),
      json: true,
    });
    expect(json.code).toBe(2);
    expect(JSON.parse(json.out)).toEqual({
      url: 's3://no-such-bucket',
      error: {
        reason: 'invalid-input',
        message: expect.stringContaining('bucket no-such-bucket does not exist') as unknown,
      },
    });
  });
});
