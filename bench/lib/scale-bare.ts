/**
 * The reference of bench/scale.ts, in its own process: a bare SDK GET loop against the synthetic
 * Software Heritage, `window` GETs in flight, for `seconds`. The client is the one stackflow
 * builds for the content store, from the same functions (lib/io/stores/s3-store.ts
 * s3ClientConfig with lib/session.ts contentStoreOptions: unsigned, path style, keep-alive pool
 * of `window` sockets, checksums only when required, one attempt per GET), so the two cannot
 * drift apart; a GET's body is read as S3Store.get reads it. No ordering, no decoding. Prints one
 * JSON line (BareResult).
 *
 *   node --import tsx bench/lib/scale-bare.ts --endpoint URL --window 256 --seconds 20
 */
import { parseArgs } from 'node:util';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { s3ClientConfig } from '../../lib/io/stores/s3-store.js';
import { resolveS3Location } from '../../lib/io/stores/s3-location.js';
import { contentStoreOptions } from '../../lib/session.js';
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
const bucket = values.bucket;
const loc = resolveS3Location(
  `s3://${bucket}/content`,
  { [bucket]: { endpoint: values.endpoint ?? '' } },
  {},
);
if (!loc.ok) throw new Error(loc.error.message);
const location = loc.value;
const client = new S3Client(await s3ClientConfig(location, contentStoreOptions(window)));
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
            new GetObjectCommand({ Bucket: bucket, Key: `${location.prefix}${blobIdOf(next++)}` }),
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
