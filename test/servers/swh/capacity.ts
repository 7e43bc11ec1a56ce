/**
 * How many GETs a second the synthetic Software Heritage serves on this machine: the server in
 * its own process (latency model off), driven by plain keep-alive node:http GET loops (cheaper per
 * request than the SDK, so the clients are less of a limit) in 1, 2, … client processes at once,
 * and by one SDK client (what one process of a real client takes). Used by bench/scale.ts; also
 * runnable alone:
 *
 *     node --import tsx test/servers/swh/capacity.ts [--seconds 5] [--concurrency 128] [--procs 1,2,3]
 *
 * A client process (`--client`) waits for `--start-at` (epoch ms; warming up meanwhile), GETs for
 * `--seconds`, and prints one JSON line: `{"gets":N,"seconds":S}`.
 */
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startSwhServer } from './harness.js';

export interface CapacityByProcs {
  procs: number;
  /** GETs/s answered, all client processes together. */
  getsPerSecond: number;
  /** Server CPU per GET (ms) and cores it used, from its own counters. */
  serverCpuMsPerGet: number;
  serverCores: number;
}

export interface Capacity {
  /** The most GETs/s answered to plain node:http clients (over the client process counts tried). */
  httpGetsPerSecond: number;
  byProcs: CapacityByProcs[];
  /** GETs/s one core of the server would answer at its measured CPU per GET. */
  serverGetsPerCoreSecond: number;
  /** GETs/s answered to one SDK client (one process). */
  sdkGetsPerSecond: number;
  /** Server CPU per GET (ms) at the best client process count. */
  serverCpuMsPerGet: number;
  concurrency: number;
  seconds: number;
  /** The body pool after warming: bodies and their gzip bytes. */
  pool: { bodies: number; gzBytes: number };
}

const idOf = (i: number) => (i * 2654435761 + 12345).toString(16).padStart(40, '0').slice(-40);

async function drive(seconds: number, width: number, get: (i: number) => Promise<void>, from = 0) {
  let n = 0;
  let i = from;
  const until = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (performance.now() < until) {
        await get(i++);
        n++;
      }
    }),
  );
  return n;
}

/** A keep-alive node:http GET of content/<id> that rejects on anything but 200. */
function httpGetter(endpoint: string, bucket: string, width: number) {
  const base = new URL(endpoint);
  const agent = new Agent({ keepAlive: true, maxSockets: width });
  const get = (i: number) =>
    new Promise<void>((done, fail) => {
      const req = request(
        { host: base.hostname, port: base.port, path: `/${bucket}/content/${idOf(i)}`, agent },
        (res) => {
          res.on('data', () => undefined);
          res.on('end', () => {
            if (res.statusCode === 200) done();
            else fail(new Error(`GET: ${String(res.statusCode)}`));
          });
        },
      );
      req.on('error', fail);
      req.end();
    });
  return {
    get,
    close: () => {
      agent.destroy();
    },
  };
}

/** The client process's loop (`--client`). */
async function client(o: {
  endpoint: string;
  bucket: string;
  seconds: number;
  width: number;
  startAt: number;
  offset: number;
}) {
  const { get, close } = httpGetter(o.endpoint, o.bucket, o.width);
  // Warm up (JIT, sockets) until the common start.
  await drive(Math.max(0.5, (o.startAt - Date.now()) / 1000), o.width, get, o.offset);
  const t0 = performance.now();
  const gets = await drive(o.seconds, o.width, get, o.offset + 1e8);
  const seconds = (performance.now() - t0) / 1000;
  close();
  process.stdout.write(`${JSON.stringify({ gets, seconds })}\n`);
}

const SELF = fileURLToPath(import.meta.url);

function runClient(args: string[]): Promise<{ gets: number; seconds: number }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['--import', 'tsx', SELF, '--client', ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('error', reject);
    c.on('exit', (code) => {
      if (code !== 0) reject(new Error(`capacity client exited ${String(code)}`));
      else
        resolve(
          JSON.parse(out.trim().split('\n').pop() ?? '{}') as { gets: number; seconds: number },
        );
    });
  });
}

export async function measureCapacity(
  seconds = 5,
  width = 128,
  procs: readonly number[] = [1, 2, 3],
): Promise<Capacity> {
  const swh = await startSwhServer({ config: { latency: { medianMs: 0 } } });
  try {
    const pool = await swh.warm();
    const byProcs: CapacityByProcs[] = [];
    for (const k of procs) {
      // Time for k tsx processes to start before the common start.
      const startAt = Date.now() + 2500 + 500 * k;
      const common = ['--endpoint', swh.endpoint, '--bucket', swh.bucket];
      const clients = Array.from({ length: k }, (_, j) =>
        runClient([
          ...common,
          '--seconds',
          String(seconds),
          '--concurrency',
          String(Math.ceil(width / k)),
          '--start-at',
          String(startAt),
          '--offset',
          String(j * 1e9),
        ]),
      );
      await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now())));
      await swh.resetStats();
      const got = await Promise.all(clients);
      const st = await swh.stats();
      byProcs.push({
        procs: k,
        getsPerSecond: Math.round(got.reduce((a, g) => a + g.gets / g.seconds, 0)),
        serverCpuMsPerGet: Number((st.cpuMs / Math.max(1, st.requests)).toFixed(4)),
        serverCores: Number((st.cpuMs / Math.max(1, st.elapsedMs)).toFixed(2)),
      });
    }
    const best = byProcs.reduce((a, b) => (b.getsPerSecond > a.getsPerSecond ? b : a));

    const sdk = swh.client({
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: new NodeHttpHandler({
        httpAgent: new Agent({ keepAlive: true, maxSockets: width }),
      }),
    });
    const sdkGet = async (i: number) => {
      const out = await sdk.send(
        new GetObjectCommand({ Bucket: swh.bucket, Key: `content/${idOf(i)}` }),
      );
      await out.Body?.transformToByteArray();
    };
    await drive(1, width, sdkGet);
    const t1 = performance.now();
    const nSdk = await drive(seconds, width, sdkGet);
    const sdkSeconds = (performance.now() - t1) / 1000;
    sdk.destroy();
    return {
      httpGetsPerSecond: best.getsPerSecond,
      byProcs,
      serverGetsPerCoreSecond: Math.round(1000 / Math.max(0.0001, best.serverCpuMsPerGet)),
      sdkGetsPerSecond: Math.round(nSdk / sdkSeconds),
      serverCpuMsPerGet: best.serverCpuMsPerGet,
      concurrency: width,
      seconds,
      pool,
    };
  } finally {
    await swh.stop();
  }
}

if (process.argv[1] === SELF) {
  const { values } = parseArgs({
    options: {
      client: { type: 'boolean', default: false },
      endpoint: { type: 'string', default: '' },
      bucket: { type: 'string', default: 'softwareheritage' },
      seconds: { type: 'string', default: '5' },
      concurrency: { type: 'string', default: '128' },
      procs: { type: 'string', default: '1,2,3' },
      'start-at': { type: 'string', default: '0' },
      offset: { type: 'string', default: '0' },
    },
  });
  if (values.client) {
    await client({
      endpoint: values.endpoint,
      bucket: values.bucket,
      seconds: Number(values.seconds),
      width: Number(values.concurrency),
      startAt: Number(values['start-at']),
      offset: Number(values.offset),
    });
  } else {
    console.log(
      JSON.stringify(
        await measureCapacity(
          Number(values.seconds),
          Number(values.concurrency),
          values.procs.split(',').map(Number),
        ),
      ),
    );
  }
}
