/**
 * Throughput ceiling of the S3 test server on this machine, for benchmarks that run against it:
 * PUT and GET of small objects at a fixed concurrency, server in its own process.
 *
 *     node --import tsx test/servers/s3/bench.ts [--size 1024] [--concurrency 64] [--seconds 3]
 */
import { randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { parseArgs } from 'node:util';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startS3Server } from './harness.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1024' },
    concurrency: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '3' },
    objects: { type: 'string', default: '1000' },
  },
});
const size = Number(values.size);
const width = Number(values.concurrency);
const seconds = Number(values.seconds);
const objects = Number(values.objects);

const s3 = await startS3Server({ buckets: ['bench'] });
const client = s3.client({
  requestHandler: new NodeHttpHandler({
    httpAgent: new Agent({ keepAlive: true, maxSockets: width }),
  }),
});
const body = randomBytes(size);
const keys = Array.from({ length: objects }, (_, i) => `obj/${String(i).padStart(6, '0')}`);

/** Runs `op` from `width` workers until `until()` says stop; returns completed operations. */
async function drive(op: (i: number) => Promise<unknown>, until: (done: number) => boolean) {
  let done = 0;
  let issued = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (!until(issued)) {
        const i = issued++;
        await op(i);
        done++;
      }
    }),
  );
  return done;
}

try {
  let t0 = performance.now();
  const puts = await drive(
    (i) => client.send(new PutObjectCommand({ Bucket: 'bench', Key: keys[i] ?? 'x', Body: body })),
    (issued) => issued >= objects,
  );
  const putRate = puts / ((performance.now() - t0) / 1000);

  // Warm the JIT of both processes (the first second runs at about half speed), then measure.
  const read = async (i: number) => {
    const r = await client.send(
      new GetObjectCommand({ Bucket: 'bench', Key: keys[i % objects] ?? 'x' }),
    );
    await r.Body?.transformToByteArray();
  };
  const warm = performance.now() + 1000;
  await drive(read, () => performance.now() >= warm);
  t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const deadline = t0 + seconds * 1000;
  const gets = await drive(read, () => performance.now() >= deadline);
  const getRate = gets / ((performance.now() - t0) / 1000);
  const cpu = process.cpuUsage(cpu0);
  console.log(
    JSON.stringify({
      objectBytes: size,
      concurrency: width,
      putPerSecond: Math.round(putRate),
      getPerSecond: Math.round(getRate),
      gets,
      // The SDK's own cost per GET, in this (client) process: the ceiling on a 2-core machine
      // is shared between it and the server.
      clientCpuMsPerGet: Number(((cpu.user + cpu.system) / 1000 / gets).toFixed(3)),
    }),
  );
} finally {
  client.destroy();
  await s3.stop();
}
