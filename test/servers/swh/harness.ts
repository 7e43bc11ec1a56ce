/**
 * The test-side handle of the synthetic Software Heritage (server.ts): starts it as a child
 * process on loopback and drives its control API.
 *
 *     const swh = await startSwhServer({ config: { latency: { medianMs: 5 } } });
 *     try {
 *       const got = await swh.client().send(new GetObjectCommand({ Bucket: swh.bucket, Key: 'content/<sha1>' }));
 *       await swh.setConfig({ rateLimit: { perSecond: 500 } });
 *       // pipeline.yaml: content.source = swh.contentUrl, s3: { [swh.bucket]: { endpoint: swh.endpoint } }
 *       const { byOutcome, timeline } = await swh.stats();
 *     } finally {
 *       await swh.stop();
 *     }
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { S3Client } from '@aws-sdk/client-s3';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { startServerChild } from '../child.js';
import type { SwhConfig, SwhConfigPatch } from './model.js';
import type { SwhStats } from './protocol.js';
import { CONTROL_PREFIX } from './protocol.js';

export type { SwhConfig, SwhConfigPatch } from './model.js';
export type { SecondStats, SwhStats } from './protocol.js';

export interface SwhTestServer {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  /** The bucket served (`softwareheritage` unless configured). */
  bucket: string;
  /** `s3://<bucket>/<prefix without its slash>`: pipeline.yaml's `content.source`. */
  contentUrl: string;
  /** The child's pid (for taskset, or to read its CPU time). */
  pid: number;
  /**
   * An SDK client as stackflow builds one for this bucket: path style, us-east-1, unsigned (no
   * signature, no credential lookup). `config` overrides any of it.
   */
  client(config?: Partial<S3ClientConfig>): S3Client;
  config(): Promise<SwhConfig>;
  /** Applies a patch at once (e.g. a new rate limit mid-run); rejects with the server's errors. */
  setConfig(patch: SwhConfigPatch): Promise<SwhConfig>;
  stats(): Promise<SwhStats>;
  resetStats(): Promise<void>;
  /** Makes every pooled body now, so that a timed run does not pay for gzip of MB-sized blobs. */
  warm(): Promise<{ bodies: number; gzBytes: number }>;
  stop(): Promise<void>;
}

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SERVER = join(REPO, 'test/servers/swh/server.ts');
const START_TIMEOUT_MS = 30_000;

/**
 * Starts a server with `config` laid over the defaults (model.ts DEFAULT_CONFIG). `cpus` pins it
 * to those CPUs with taskset (benchmarks that pin the client elsewhere).
 */
export async function startSwhServer(
  opts: { config?: SwhConfigPatch; cpus?: string } = {},
): Promise<SwhTestServer> {
  const nodeArgs = [
    '--import',
    'tsx',
    SERVER,
    '--port',
    '0',
    '--exit-on-stdin-close',
    '--config',
    JSON.stringify(opts.config ?? {}),
  ];
  const [cmd, args] =
    opts.cpus === undefined
      ? [process.execPath, nodeArgs]
      : ['taskset', ['-c', opts.cpus, process.execPath, ...nodeArgs]];
  const server = await startServerChild({
    name: 'swh-test-server',
    command: cmd,
    args,
    cwd: REPO,
    startTimeoutMs: START_TIMEOUT_MS,
  });
  const endpoint = server.endpoint;
  const control = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const send = () =>
      fetch(`${endpoint}${CONTROL_PREFIX}${path}`, {
        method,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    // A keep-alive connection the server closed while idle fails the request that reuses it
    // (undici: "other side closed"); the control requests are idempotent, so once more.
    const res = await send().catch(() => send());
    const text = await res.text();
    if (!res.ok)
      throw new Error(`swh test server ${method} ${path}: ${String(res.status)} ${text}`);
    return JSON.parse(text) as unknown;
  };
  let current: SwhConfig;
  try {
    current = (await control('GET', 'config')) as SwhConfig;
  } catch (e) {
    await server.stop();
    throw e;
  }
  return {
    endpoint,
    bucket: current.bucket,
    contentUrl: `s3://${current.bucket}/${current.prefix.replace(/\/$/, '')}`,
    pid: server.pid,
    client(config = {}) {
      process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
      return new S3Client({
        endpoint,
        forcePathStyle: true,
        region: 'us-east-1',
        signer: { sign: (request) => Promise.resolve(request) },
        credentials: { accessKeyId: '', secretAccessKey: '' },
        ...config,
      });
    },
    config: async () => (await control('GET', 'config')) as SwhConfig,
    setConfig: async (patch) => (await control('PUT', 'config', patch)) as SwhConfig,
    stats: async () => (await control('GET', 'stats')) as SwhStats,
    resetStats: async () => {
      await control('POST', 'stats/reset');
    },
    warm: async () => (await control('POST', 'pool/warm')) as { bodies: number; gzBytes: number },
    stop: () => server.stop(),
  };
}
