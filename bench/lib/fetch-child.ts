/**
 * One timed pass of bench/fetch.ts, in its own process (started by fetch.ts, never by hand):
 * GET every key of a list from the loopback S3 at a fixed concurrency, one of two ways.
 *
 *   pack  pack's content fetcher as pack drives it: the content store opened the way the session
 *         opens it (openStore, maxSockets = max(64, concurrency)), the `sdk` fetcher of
 *         tasks/pack/fetchers.ts (S3Store.get under withRetry), and orderedMap over row order
 *         with `concurrency` in flight (tasks/pack/part.ts). No decoding: fetching only.
 *   sdk   the reference: a bare S3Client with the same socket pool (keep-alive, maxSockets =
 *         concurrency) and checksum settings as S3Store, SDK defaults otherwise (retry strategy,
 *         no timeouts), `concurrency` loops of GetObjectCommand + transformToByteArray().
 *   http  not a reference, a ceiling: plain node:http GETs of the path-style URLs, unsigned (as
 *         for Software Heritage's public bucket), same socket pool: what the client costs
 *         without the SDK's per-request middleware.
 *
 * A warm-up pass over the first keys runs first (JIT, sockets). Prints one JSON line.
 * With --cpu-profile FILE, the timed pass is profiled through the inspector.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { DuckDBConnection } from '@duckdb/node-api';
import { makeShell } from '../../lib/io/process/shell.js';
import { openStore } from '../../lib/io/stores/store-url.js';
import { orderedMap } from '../../lib/util/ordered.js';
import { makeFetcher } from '../../tasks/pack/fetchers.js';
import { CREDENTIALS } from '../../test/servers/s3/protocol.js';

/** What a pass reports. */
export interface PassResult {
  variant: Variant;
  concurrency: number;
  objects: number;
  bytes: number;
  failures: number;
  seconds: number;
  objectsPerSecond: number;
  /** This process's CPU (user + system) per object during the timed pass. */
  cpuMsPerObject: number;
  /** Share of the pass the event loop was busy. */
  eventLoopUtilization: number;
}

export type Variant = 'pack' | 'sdk' | 'http';

/** GETs `keys` and returns bytes and failures; one implementation per variant. */
type Pass = (keys: readonly string[]) => Promise<{ bytes: number; failures: number }>;

function packPass(endpoint: string, bucket: string, prefix: string, concurrency: number): Pass {
  const store = openStore(`s3://${bucket}/${prefix}`, {
    s3: { [bucket]: { endpoint } },
    env: process.env,
    // What session.ts gives the content store for a pack stage of this concurrency.
    s3Store: { maxSockets: Math.max(64, concurrency) },
  });
  if (!store.ok) throw new Error(store.error.message);
  const ac = new AbortController();
  const fetcher = makeFetcher(
    { fetcher: 'sdk', s5cmdPath: 's5cmd', s5cmdWorkers: 1 },
    {
      $: makeShell({ cwd: tmpdir(), signal: ac.signal }),
      scratch: tmpdir(),
      signal: ac.signal,
      content: store.value,
      pipeline: { dir: tmpdir(), contentSource: `s3://${bucket}/${prefix}`, s3: {} },
    },
  );
  if (!fetcher.ok) throw new Error(fetcher.error.message);
  const fetcherReady = fetcher.value;
  return async (keys) => {
    // The sdk fetcher fetches by blob id and ignores the part's rows, which only the s5cmd
    // fetcher reads through DuckDB: no connection is opened here.
    const part = await fetcherReady.open({
      conn: null as unknown as DuckDBConnection,
      parquet: '',
      part: 0,
      from: 0,
      to: keys.length,
    });
    if (!part.ok) throw new Error(part.error.message);
    let bytes = 0;
    let failures = 0;
    for await (const got of orderedMap(keys, concurrency, (k) => part.value.fetch(k))) {
      if (got.ok) bytes += got.value.length;
      else failures++;
    }
    await part.value.close();
    return { bytes, failures };
  };
}

function sdkPass(endpoint: string, bucket: string, prefix: string, concurrency: number): Pass {
  const client = new S3Client({
    endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { ...CREDENTIALS },
    // As S3Store sets them: without this the SDK's default (WHEN_SUPPORTED) asks for and
    // validates response checksums, which costs the bare loop, not pack, CPU per GET.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: new NodeHttpHandler({
      httpAgent: new Agent({ keepAlive: true, maxSockets: concurrency }),
    }),
  });
  return async (keys) => {
    let next = 0;
    let bytes = 0;
    let failures = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (;;) {
          const key = keys[next++];
          if (key === undefined) return;
          try {
            const out = await client.send(
              new GetObjectCommand({ Bucket: bucket, Key: prefix + key }),
            );
            bytes += (await out.Body?.transformToByteArray())?.length ?? 0;
          } catch {
            failures++;
          }
        }
      }),
    );
    return { bytes, failures };
  };
}

function httpPass(endpoint: string, bucket: string, prefix: string, concurrency: number): Pass {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const base = new URL(endpoint);
  const get = (key: string) =>
    new Promise<number>((done, fail) => {
      const req = request(
        {
          host: base.hostname,
          port: base.port,
          path: `/${bucket}/${prefix}${key}`,
          agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            if (res.statusCode === 200) done(Buffer.concat(chunks).length);
            else fail(new Error(`GET ${key}: ${String(res.statusCode)}`));
          });
          res.on('error', fail);
        },
      );
      req.on('error', fail);
      req.end();
    });
  return async (keys) => {
    let next = 0;
    let bytes = 0;
    let failures = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (;;) {
          const key = keys[next++];
          if (key === undefined) return;
          try {
            bytes += await get(key);
          } catch {
            failures++;
          }
        }
      }),
    );
    return { bytes, failures };
  };
}

const { values } = parseArgs({
  options: {
    variant: { type: 'string' },
    endpoint: { type: 'string' },
    bucket: { type: 'string', default: 'content' },
    prefix: { type: 'string', default: 'content/' },
    keys: { type: 'string' },
    concurrency: { type: 'string', default: '64' },
    warmup: { type: 'string', default: '1000' },
    'cpu-profile': { type: 'string' },
  },
});
const variant: Variant =
  values.variant === 'pack' ? 'pack' : values.variant === 'http' ? 'http' : 'sdk';
const endpoint = values.endpoint ?? '';
const concurrency = Number(values.concurrency);
const keys = JSON.parse(readFileSync(values.keys ?? '', 'utf8')) as string[];
const make = { pack: packPass, sdk: sdkPass, http: httpPass }[variant];
const pass = make(endpoint, values.bucket, values.prefix, concurrency);

await pass(keys.slice(0, Number(values.warmup)));
const profiler = values['cpu-profile'] !== undefined ? new Session() : undefined;
if (profiler) {
  profiler.connect();
  await profiler.post('Profiler.enable');
  await profiler.post('Profiler.start');
}
const elu0 = performance.eventLoopUtilization();
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const got = await pass(keys);
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const elu = performance.eventLoopUtilization(elu0);
if (profiler) {
  const { profile } = await profiler.post('Profiler.stop');
  writeFileSync(values['cpu-profile'] ?? '', JSON.stringify(profile));
  profiler.disconnect();
}
const result: PassResult = {
  variant,
  concurrency,
  objects: keys.length,
  bytes: got.bytes,
  failures: got.failures,
  seconds: Number(seconds.toFixed(3)),
  objectsPerSecond: Math.round(keys.length / seconds),
  cpuMsPerObject: Number(((cpu.user + cpu.system) / 1000 / keys.length).toFixed(3)),
  eventLoopUtilization: Number(elu.utilization.toFixed(3)),
};
process.stdout.write(JSON.stringify(result) + '\n');
// Sockets of the keep-alive pools would hold the process open.
process.exit(0);
