/**
 * How many GETs a second the synthetic Software Heritage serves on this machine: the server in
 * its own process (latency model off), driven by plain keep-alive node:http GETs (cheaper per
 * request than the SDK, so the client is less of a limit) and by the SDK, each for `seconds`.
 * Used by bench/scale.ts; also runnable alone:
 *
 *     node --import tsx test/servers/swh/capacity.ts [--seconds 5] [--concurrency 128]
 */
import { Agent, request } from 'node:http';
import { parseArgs } from 'node:util';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startSwhServer } from './harness.js';

export interface Capacity {
  /** GETs/s answered to plain node:http clients. */
  httpGetsPerSecond: number;
  /** GETs/s answered to the SDK (one client, this process). */
  sdkGetsPerSecond: number;
  /** Server CPU per GET (ms), from the server's own counters, during the http pass. */
  serverCpuMsPerGet: number;
  concurrency: number;
  seconds: number;
  /** The body pool after warming: bodies and their gzip bytes. */
  pool: { bodies: number; gzBytes: number };
}

const idOf = (i: number) => (i * 2654435761 + 12345).toString(16).padStart(40, '0').slice(-40);

async function drive(seconds: number, width: number, get: (i: number) => Promise<void>) {
  let n = 0;
  let i = 0;
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

export async function measureCapacity(seconds = 5, width = 128): Promise<Capacity> {
  const swh = await startSwhServer({ config: { latency: { medianMs: 0 } } });
  try {
    const base = new URL(swh.endpoint);
    const agent = new Agent({ keepAlive: true, maxSockets: width });
    const httpGet = (i: number) =>
      new Promise<void>((done, fail) => {
        const req = request(
          {
            host: base.hostname,
            port: base.port,
            path: `/${swh.bucket}/content/${idOf(i)}`,
            agent,
          },
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
    const pool = await swh.warm();
    await drive(1, width, httpGet); // warm-up: JIT, sockets, the pool's bodies
    await swh.resetStats();
    const t0 = performance.now();
    const nHttp = await drive(seconds, width, httpGet);
    const httpSeconds = (performance.now() - t0) / 1000;
    const st = await swh.stats();
    agent.destroy();

    const client = swh.client({
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: new NodeHttpHandler({
        httpAgent: new Agent({ keepAlive: true, maxSockets: width }),
      }),
    });
    const sdkGet = async (i: number) => {
      const out = await client.send(
        new GetObjectCommand({ Bucket: swh.bucket, Key: `content/${idOf(i)}` }),
      );
      await out.Body?.transformToByteArray();
    };
    await drive(1, width, sdkGet);
    const t1 = performance.now();
    const nSdk = await drive(seconds, width, sdkGet);
    const sdkSeconds = (performance.now() - t1) / 1000;
    client.destroy();
    return {
      httpGetsPerSecond: Math.round(nHttp / httpSeconds),
      sdkGetsPerSecond: Math.round(nSdk / sdkSeconds),
      serverCpuMsPerGet: Number((st.cpuMs / Math.max(1, st.requests)).toFixed(4)),
      concurrency: width,
      seconds,
      pool,
    };
  } finally {
    await swh.stop();
  }
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      concurrency: { type: 'string', default: '128' },
    },
  });
  console.log(
    JSON.stringify(await measureCapacity(Number(values.seconds), Number(values.concurrency))),
  );
}
