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
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { S3Client } from '@aws-sdk/client-s3';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
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
  const child = spawn(cmd, args, { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr: string[] = [];
  createInterface({ input: child.stderr }).on('line', (line) => {
    stderr.push(line);
    if (stderr.length > 200) stderr.shift();
    process.stderr.write(`[swh-test-server] ${line}\n`);
  });
  let port: number;
  try {
    port = await readPort(child, stderr);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  const endpoint = `http://127.0.0.1:${String(port)}`;
  const control = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(`${endpoint}${CONTROL_PREFIX}${path}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok)
      throw new Error(`swh test server ${method} ${path}: ${String(res.status)} ${text}`);
    return JSON.parse(text) as unknown;
  };
  const current = (await control('GET', 'config')) as SwhConfig;
  let stopped: Promise<void> | undefined;
  return {
    endpoint,
    bucket: current.bucket,
    contentUrl: `s3://${current.bucket}/${current.prefix.replace(/\/$/, '')}`,
    pid: child.pid ?? -1,
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
    stop() {
      stopped ??= stopChild(child);
      return stopped;
    },
  };
}

function readPort(child: ChildProcess, stderr: string[]): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`swh test server did not start: ${why}\n${stderr.join('\n')}`));
    };
    const timer = setTimeout(() => {
      fail(`no port after ${String(START_TIMEOUT_MS)} ms`);
    }, START_TIMEOUT_MS);
    child.once('exit', (code, signal) => {
      fail(`exited (${String(code ?? signal)})`);
    });
    child.once('error', (e) => {
      fail(e.message);
    });
    if (child.stdout === null) {
      fail('no stdout');
      return;
    }
    createInterface({ input: child.stdout }).once('line', (line) => {
      const port = (JSON.parse(line) as { port?: unknown }).port;
      if (typeof port !== 'number') {
        fail(`unexpected first line ${line}`);
        return;
      }
      clearTimeout(timer);
      resolvePort(port);
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((res) => {
    child.once('exit', () => {
      res();
    });
  });
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
