/**
 * The reference of bench/scale.ts, in its own process: a bare SDK GET loop against the synthetic
 * Software Heritage, `window` GETs in flight, for `seconds`. The client is built as stackflow
 * builds the content store's (unsigned, path style, keep-alive pool of `window` sockets, checksums
 * only when required) with the SDK's default retry strategy; no ordering, no decoding. Prints one
 * JSON line (BareResult).
 *
 *   node --import tsx bench/lib/scale-bare.ts --endpoint URL --window 256 --seconds 20
 */
import { Agent } from 'node:http';
import { parseArgs } from 'node:util';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { blobIdOf } from './scale-ids.js';

export interface BareResult {
  window: number;
  seconds: number;
  gets: number;
  failures: number;
  getsPerSecond: number;
  /** This process's CPU (user + system) per GET, ms: the SDK's cost of one GET. */
  cpuMsPerGet: number;
  bytes: number;
}

const { values } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    bucket: { type: 'string', default: 'softwareheritage' },
    window: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '2' },
    offset: { type: 'string', default: '0' },
  },
});
const window = Number(values.window);
const client = new S3Client({
  endpoint: values.endpoint ?? '',
  forcePathStyle: true,
  region: 'us-east-1',
  signer: { sign: (request) => Promise.resolve(request) },
  credentials: { accessKeyId: '', secretAccessKey: '' },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
  requestHandler: new NodeHttpHandler({
    httpAgent: new Agent({ keepAlive: true, maxSockets: window }),
  }),
});
let next = Number(values.offset);

async function loop(seconds: number) {
  let gets = 0;
  let failures = 0;
  let bytes = 0;
  const until = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (performance.now() < until) {
        try {
          const out = await client.send(
            new GetObjectCommand({ Bucket: values.bucket, Key: `content/${blobIdOf(next++)}` }),
          );
          bytes += (await out.Body?.transformToByteArray())?.length ?? 0;
          gets++;
        } catch {
          failures++;
        }
      }
    }),
  );
  return { gets, failures, bytes };
}

await loop(Number(values.warmup));
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const got = await loop(Number(values.seconds));
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const result: BareResult = {
  window,
  seconds: Number(seconds.toFixed(2)),
  gets: got.gets,
  failures: got.failures,
  getsPerSecond: Math.round(got.gets / seconds),
  cpuMsPerGet: Number(((cpu.user + cpu.system) / 1000 / Math.max(1, got.gets)).toFixed(4)),
  bytes: got.bytes,
};
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(0);
