/**
 * Fetching contents: objects/s of pack's content fetcher (the `sdk` fetcher: S3Store.get under
 * withRetry, driven by orderedMap over row order, as tasks/pack/part.ts drives it) against a bare
 * SDK GetObject loop at the same concurrency and socket pool, on the same loopback S3 (the test
 * server, s3rver in its own process) and the same 10,000+ gzip blobs (source-code-like text,
 * median ~4 KB before gzip, keys = 40-hex sha1).
 *
 * Each pass runs in a fresh process (bench/lib/fetch-child.ts) after a warm-up, alternating
 * pack, sdk, http, pack, sdk, http, ... per concurrency; the figure is the median of the
 * per-round pack/sdk ratios. `http` (plain unsigned node:http GETs) is not a reference but the
 * client's ceiling without the SDK, for context. Then one pack and one sdk pass are CPU-profiled
 * (inspector, timed pass only) to say where the difference goes.
 *
 *   npx tsx bench/fetch.ts [--quick] [--objects 10000] [--concurrency 64,256] [--rounds 5]
 *                          [--warmup 1000] [--skip-profile]
 *
 * Writes bench/results/fetch.json. Target: pack ≥ 0.9× the bare loop. A missed target is
 * reported as `pass: false`; only a pass with failed GETs sets a non-zero exit code.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { startS3Server } from '../test/servers/s3/harness.js';
import type { S3TestServer } from '../test/servers/s3/harness.js';
import type { PassResult, Variant } from './lib/fetch-child.js';
import { makeBlobs, shuffled } from './lib/fetch-data.js';
import type { CpuProfile, ProfileSummary } from './lib/fetch-profile.js';
import { summarizeProfile } from './lib/fetch-profile.js';
import { median, writeResults } from './lib/stats.js';

const REPO = resolve(import.meta.dirname, '..');
const CHILD = join(REPO, 'bench/lib/fetch-child.ts');
const BUCKET = 'content';
const PREFIX = 'content/';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    objects: { type: 'string' },
    concurrency: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    warmup: { type: 'string' },
    'skip-profile': { type: 'boolean', default: false },
  },
});
const quick = values.quick;
const N = Number(values.objects ?? (quick ? 2000 : 10_000));
const widths = (values.concurrency ?? (quick ? '64' : '64,256')).split(',').map(Number);
const rounds = Number(values.rounds);
const warmup = Number(values.warmup ?? Math.min(1000, Math.round(N / 5)));
/** pack and sdk are compared; http (plain unsigned GETs) is the client's ceiling, for context. */
const VARIANTS = ['pack', 'sdk', 'http'] as const;

const r3 = (x: number) => Number(x.toFixed(3));

async function upload(s3: S3TestServer, blobs: { id: string; gz: Buffer }[]): Promise<void> {
  const client = s3.client();
  try {
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        for (;;) {
          const b = blobs[next++];
          if (b === undefined) return;
          await client.send(
            new PutObjectCommand({ Bucket: BUCKET, Key: PREFIX + b.id, Body: b.gz }),
          );
        }
      }),
    );
  } finally {
    client.destroy();
  }
}

/** One pass in a fresh process; also the GETs the server saw for it (warm-up included). */
async function pass(
  s3: S3TestServer,
  variant: Variant,
  concurrency: number,
  keysFile: string,
  profileFile?: string,
): Promise<PassResult & { serverGets: number }> {
  await s3.resetStats();
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      CHILD,
      '--variant',
      variant,
      '--endpoint',
      s3.endpoint,
      '--bucket',
      BUCKET,
      '--prefix',
      PREFIX,
      '--keys',
      keysFile,
      '--concurrency',
      String(concurrency),
      '--warmup',
      String(warmup),
      ...(profileFile !== undefined ? ['--cpu-profile', profileFile] : []),
    ],
    { cwd: REPO, env: { ...process.env, ...s3.env }, encoding: 'utf8', timeout: 600_000 },
  );
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (r.status !== 0 || line === undefined) {
    throw new Error(`${variant} pass failed (${String(r.status)}): ${r.stderr.slice(-2000)}`);
  }
  const stats = await s3.stats();
  return { ...(JSON.parse(line) as PassResult), serverGets: stats.byOp.GetObject ?? 0 };
}

const root = mkdtempSync(join(tmpdir(), 'stackflow-fetch-'));
const load0 = loadavg();
const passes: (PassResult & { serverGets: number; round: number })[] = [];
const profiles: Record<string, Partial<Record<Variant, ProfileSummary>>> = {};
let data = { objects: 0, gzMedianBytes: 0, rawMedianBytes: 0, rawToGz: 0 };
const s3 = await startS3Server({ buckets: [BUCKET] });
try {
  let t = performance.now();
  const blobs = makeBlobs(N);
  const raw = blobs.map((b) => b.rawBytes);
  const gz = blobs.map((b) => b.gz.length);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  data = {
    objects: N,
    gzMedianBytes: median(gz),
    rawMedianBytes: median(raw),
    rawToGz: r3(sum(raw) / sum(gz)),
  };
  console.log(
    `generated ${String(N)} blobs in ${((performance.now() - t) / 1000).toFixed(1)} s: median ${String(data.rawMedianBytes)} B raw, ${String(data.gzMedianBytes)} B gzip`,
  );
  t = performance.now();
  await upload(s3, blobs);
  console.log(`uploaded in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const keysFile = join(root, 'keys.json');
  writeFileSync(keysFile, JSON.stringify(shuffled(blobs.map((b) => b.id))));

  for (const c of widths) {
    for (let round = 1; round <= rounds; round++) {
      for (const v of VARIANTS) {
        const p = await pass(s3, v, c, keysFile);
        passes.push({ ...p, round });
        console.log(
          `  c=${String(c)} round ${String(round)} ${v}: ${String(p.objectsPerSecond)} objects/s, ${p.cpuMsPerObject.toFixed(3)} CPU ms/object, ${String(p.serverGets)} GETs at the server`,
        );
      }
    }
  }
  if (!values['skip-profile']) {
    for (const c of widths) {
      profiles[String(c)] = {};
      for (const v of ['pack', 'sdk'] as const) {
        const file = join(root, `${v}-${String(c)}.cpuprofile`);
        await pass(s3, v, c, keysFile, file);
        const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
        const entry = profiles[String(c)];
        if (entry) entry[v] = summarizeProfile(prof);
      }
    }
  }
} finally {
  await s3.stop();
  rmSync(root, { recursive: true, force: true });
}

const results = widths.map((c) => {
  const of = (v: string) => passes.filter((p) => p.concurrency === c && p.variant === v);
  const ratios = Array.from({ length: rounds }, (_, i) => {
    const a = of('pack')[i]?.objectsPerSecond ?? NaN;
    const b = of('sdk')[i]?.objectsPerSecond ?? NaN;
    return a / b;
  });
  const cpuRatios = Array.from({ length: rounds }, (_, i) => {
    const a = of('pack')[i]?.cpuMsPerObject ?? NaN;
    const b = of('sdk')[i]?.cpuMsPerObject ?? NaN;
    return b / a;
  });
  return {
    concurrency: c,
    packObjectsPerSecond: Math.round(median(of('pack').map((p) => p.objectsPerSecond))),
    sdkObjectsPerSecond: Math.round(median(of('sdk').map((p) => p.objectsPerSecond))),
    /** Median of the per-round pack/sdk ratios: the headline figure. */
    ratio: r3(median(ratios)),
    ratios: ratios.map(r3),
    /**
     * Median of per-round sdk/pack client CPU per object: the throughput ratio the client's CPU
     * allows (the client is the bottleneck here), less sensitive to other load on the machine.
     */
    cpuRatio: r3(median(cpuRatios)),
    packCpuMsPerObject: r3(median(of('pack').map((p) => p.cpuMsPerObject))),
    sdkCpuMsPerObject: r3(median(of('sdk').map((p) => p.cpuMsPerObject))),
    packEventLoopUtilization: r3(median(of('pack').map((p) => p.eventLoopUtilization))),
    sdkEventLoopUtilization: r3(median(of('sdk').map((p) => p.eventLoopUtilization))),
    /** Plain unsigned node:http GETs: the client ceiling without the SDK (context only). */
    httpObjectsPerSecond: Math.round(median(of('http').map((p) => p.objectsPerSecond))),
    httpCpuMsPerObject: r3(median(of('http').map((p) => p.cpuMsPerObject))),
  };
});

/** Per concurrency: CPU ms per 1,000 objects by area, pack minus sdk, largest first. */
const profileDiff = Object.fromEntries(
  Object.entries(profiles).map(([c, byVariant]) => {
    const pack = byVariant.pack?.byArea ?? {};
    const sdk = byVariant.sdk?.byArea ?? {};
    const per1k = (ms: number | undefined) => r3(((ms ?? 0) * 1000) / N);
    const areas = [...new Set([...Object.keys(pack), ...Object.keys(sdk)])];
    return [
      c,
      areas
        .map((area) => ({
          area,
          packMsPer1k: per1k(pack[area]),
          sdkMsPer1k: per1k(sdk[area]),
          diffMsPer1k: r3(per1k(pack[area]) - per1k(sdk[area])),
        }))
        .sort((a, b) => Math.abs(b.diffMsPer1k) - Math.abs(a.diffMsPer1k)),
    ];
  }),
);

const failed = passes.filter((p) => p.failures > 0 || p.serverGets !== p.objects + warmup);
const out = {
  name: 'fetch',
  date: new Date().toISOString(),
  machine: {
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? '?',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    loadavgBefore: load0.map((x) => Number(x.toFixed(2))),
    loadavgAfter: loadavg().map((x) => Number(x.toFixed(2))),
  },
  setup: {
    data,
    server: 'test/servers/s3 (s3rver child process, data on /dev/shm), loopback',
    pack: 'openStore(s3://content/content, maxSockets max(64,c)) → makeFetcher(sdk) → orderedMap(keys, c)',
    sdk: 'S3Client (keep-alive agent maxSockets c, checksums WHEN_REQUIRED as S3Store; SDK defaults otherwise) → c loops of GetObject + transformToByteArray',
    warmupObjects: warmup,
    rounds,
    http: 'plain node:http GET, unsigned, same agent (a ceiling for context, not the reference)',
    order: 'per concurrency: pack, sdk, http, pack, sdk, http, ... (fresh process per pass)',
    quick,
  },
  target: "pack's fetcher ≥ 0.9× the bare SDK GET loop at equal concurrency",
  results,
  pass: results.every((r) => r.ratio >= 0.9),
  passes,
  profiles,
  profileDiff,
};
writeResults('fetch', out);

console.table(
  results.map((r) => ({
    concurrency: r.concurrency,
    'pack obj/s': r.packObjectsPerSecond,
    'sdk obj/s': r.sdkObjectsPerSecond,
    'pack/sdk': r.ratio,
    'CPU-bound ratio': r.cpuRatio,
    'pack CPU ms/obj': r.packCpuMsPerObject,
    'sdk CPU ms/obj': r.sdkCpuMsPerObject,
    'pack ELU': r.packEventLoopUtilization,
    'sdk ELU': r.sdkEventLoopUtilization,
    'http obj/s': r.httpObjectsPerSecond,
    'http CPU ms/obj': r.httpCpuMsPerObject,
  })),
);
for (const [c, rows] of Object.entries(profileDiff)) {
  console.log(`profile, concurrency ${c}: self CPU ms per 1,000 objects by area (pack − sdk)`);
  console.table(rows.slice(0, 12));
}
console.log(
  `pack/sdk ${results.map((r) => `c=${String(r.concurrency)}: ${String(r.ratio)}`).join(', ')}; pass=${String(out.pass)}; wrote bench/results/fetch.json`,
);
if (failed.length > 0) {
  console.error(`${String(failed.length)} pass(es) had failed or retried GETs`);
  process.exitCode = 1;
}
