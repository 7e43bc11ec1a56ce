/**
 * The test-side handle of the S3 test server (server.ts): starts it as a child process on
 * loopback, and drives its admin API (faults, features, stats).
 *
 *     const s3 = await startS3Server({ buckets: ['data'] });
 *     try {
 *       await s3.client().send(new PutObjectCommand({ Bucket: 'data', Key: 'k', Body: 'x' }));
 *       await s3.setFaults({ rate: 0.1, kinds: ['503', 'reset'], seed: 1 });
 *       // ... run the CLI with { ...s3.env, <endpoint flag> = s3.endpoint } ...
 *     } finally {
 *       await s3.stop();
 *     }
 */
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { startServerChild } from '../child.js';
import type { ServerChild } from '../child.js';
import { ADMIN_PREFIX, CREDENTIALS } from './protocol.js';
import type { FaultConfig, Features, ServerStats } from './protocol.js';

export type { FaultConfig, FaultKind, Features, ServerStats } from './protocol.js';

export interface S3TestServer {
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  /** The server process's pid (benchmarks read its CPU time). */
  pid: number;
  /**
   * An SDK client for it: path style, region us-east-1, credentials S3RVER/S3RVER, default
   * checksum settings (so stream bodies are aws-chunked, as against AWS). `config` overrides any
   * of that (e.g. `{ maxAttempts: 1 }` to see a fault instead of the SDK's retry).
   */
  client(config?: Partial<S3ClientConfig>): S3Client;
  /**
   * Environment for child processes (the CLI under test): credentials, region, no instance
   * metadata lookups, no SDK Node-version warning. No endpoint variable: pass `endpoint` the way
   * the CLI takes it.
   */
  env: Record<string, string>;
  /** CreateBucket through S3. Fails if the bucket exists (s3rver answers BucketAlreadyExists). */
  createBucket(name: string): Promise<void>;
  /** Uploads every file under localDir to bucket/prefix (keys = relative paths with '/'). */
  upload(bucket: string, prefix: string, localDir: string): Promise<number>;
  /** Faults for the requests that follow, or null for none. */
  setFaults(f: FaultConfig | null): Promise<void>;
  /** Switches conditional-request enforcement (all on by default) to imitate weaker stores. */
  setFeatures(f: Partial<Features>): Promise<void>;
  stats(): Promise<ServerStats>;
  resetStats(): Promise<void>;
  /** Stops the server; removes its data directory if startS3Server created it. */
  stop(): Promise<void>;
}

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const SERVER = join(REPO, 'test/servers/s3/server.ts');
const START_TIMEOUT_MS = 30_000;

const CHILD_ENV = {
  AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
  AWS_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

/**
 * Starts a server. `dir` keeps the data there (left in place on stop); by default a temp dir
 * (on tmpfs if there is one) is used and removed on stop. `buckets` are created before it answers.
 */
export async function startS3Server(
  opts: { dir?: string; buckets?: string[] } = {},
): Promise<S3TestServer> {
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(scratchBase(), 'stackflow-s3-')));
  const args = ['--import', 'tsx', SERVER, '--dir', dir, '--port', '0', '--exit-on-stdin-close'];
  if (opts.buckets !== undefined && opts.buckets.length > 0) {
    args.push('--buckets', opts.buckets.join(','));
  }
  // Only to demonstrate s3rver's defects: S3_TEST_SERVER_STOCK=1 serves stock s3rver (no fixes,
  // no faults) behind the same admin API, e.g. to see which harness tests it fails.
  if (process.env.S3_TEST_SERVER_STOCK === '1') args.push('--stock');
  let server: ServerChild;
  try {
    server = await startServerChild({
      name: 's3-test-server',
      command: process.execPath,
      args,
      cwd: REPO,
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      startTimeoutMs: START_TIMEOUT_MS,
    });
  } catch (err) {
    if (ownDir) await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const endpoint = server.endpoint;

  const admin = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(`${endpoint}${ADMIN_PREFIX}${path}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok)
      throw new Error(`S3 test server admin ${method} ${path}: ${String(res.status)} ${text}`);
    return JSON.parse(text) as unknown;
  };

  const client = (config: Partial<S3ClientConfig> = {}) => {
    // The SDK warns once per process on Node 20 (see the reference doc); the test log needs no
    // such line, and a caller that set the variable keeps its choice.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    return new S3Client({
      endpoint,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { ...CREDENTIALS },
      ...config,
    });
  };

  let stopped: Promise<void> | undefined;
  return {
    endpoint,
    pid: server.pid,
    client,
    env: { ...CHILD_ENV },
    async createBucket(name) {
      const c = client();
      try {
        await c.send(new CreateBucketCommand({ Bucket: name }));
      } finally {
        c.destroy();
      }
    },
    async upload(bucket, prefix, localDir) {
      const files = await listFiles(localDir);
      const c = client();
      try {
        let next = 0;
        const worker = async () => {
          while (next < files.length) {
            const file = files[next++];
            if (file === undefined) break;
            const key = prefix + relative(localDir, file).split(sep).join('/');
            await c.send(
              new PutObjectCommand({ Bucket: bucket, Key: key, Body: await readFile(file) }),
            );
          }
        };
        await Promise.all(Array.from({ length: 16 }, worker));
      } finally {
        c.destroy();
      }
      return files.length;
    },
    async setFaults(f) {
      await admin('PUT', 'faults', f);
    },
    async setFeatures(f) {
      await admin('PUT', 'features', f);
    },
    async stats() {
      return (await admin('GET', 'stats')) as ServerStats;
    },
    async resetStats() {
      await admin('POST', 'stats/reset');
    },
    stop() {
      stopped ??= (async () => {
        await server.stop();
        if (ownDir) await rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

/**
 * Where a server's data goes by default: tmpfs when there is one. On this machine's ext4 (a VM
 * disk mounted with `discard`) creating and renaming a small file costs ~0.9 ms of CPU, on
 * /dev/shm ~0.04 ms, and every PUT does that three times.
 */
function scratchBase(): string {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
}
