/**
 * A real-protocol S3 server on loopback for tests: s3rver 3.7.1 with its defects fixed (see
 * /work/shared/reference/s3-test-servers.md and the module docs here), plus fault injection and
 * statistics through an admin API. Run as a child process, so it and its clients each get a core:
 *
 *     node --import tsx test/servers/s3/server.ts --dir <dir> [--port 0] [--buckets a,b]
 *          [--exit-on-stdin-close] [--stock]
 *
 * Prints exactly one line to stdout once listening, `{"port":N}`, and nothing else. Unexpected
 * server errors go to stderr. Exits on SIGTERM / SIGINT, or when stdin closes if asked to (so
 * it never outlives a test runner that was killed).
 */
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { harnessMiddleware, injectedErrors } from './app.js';
import type { ServerEnv } from './conditions.js';
import { keyLock } from './conditions.js';
import { FaultInjector, Stats } from './faults.js';
import { KeyLocks } from './lock.js';
import { DEFAULT_FEATURES } from './protocol.js';
import { createS3rver, isS3Error } from './s3rver.js';
import { ObjectFiles } from './store.js';
import type { StoredMetadata } from './store.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    port: { type: 'string', default: '0' },
    buckets: { type: 'string' },
    'exit-on-stdin-close': { type: 'boolean', default: false },
    // Stock s3rver behind the admin API: to show which harness tests it fails (none of the fixes).
    stock: { type: 'boolean', default: false },
  },
});
if (values.dir === undefined || !/^\d+$/.test(values.port)) {
  console.error('usage: server.ts --dir <dir> [--port N] [--buckets a,b] [--exit-on-stdin-close]');
  process.exit(2);
}
const dir = resolve(values.dir);
await mkdir(dir, { recursive: true });

const app = createS3rver({
  silent: true,
  directory: dir,
  address: '127.0.0.1',
  port: Number(values.port),
  vhostBuckets: false,
});
const locks = new KeyLocks();
const env: ServerEnv = {
  store: app.store,
  files: new ObjectFiles(app.store),
  locks,
  features: { ...DEFAULT_FEATURES },
};

// The one s3rver path still writing objects (browser-form PostObject) goes through the atomic
// writer too, under the key's lock.
const putObject = async (object: Parameters<typeof app.store.putObject>[0]) => {
  const release = await locks.acquire(keyLock(object.bucket, object.key), 'write');
  try {
    const { etag, size } = await env.files.write(
      object.bucket,
      object.key,
      object.content as Buffer | Readable,
      object.metadata as StoredMetadata,
    );
    return { size, md5: etag.slice(1, -1) };
  } finally {
    release();
  }
};
if (!values.stock) app.store.putObject = putObject;

// s3rver's constructor registers logger, XML encoder, mount path, vhost, router. The logger goes:
// it formats every request with chalk only to drop the line (silent), ~1/6 of the server's
// CPU under load. The harness goes right before the router. Refuse to guess if a different
// s3rver laid its middleware out otherwise.
const names = app.middleware.map((m) => m.name);
if (names.length !== 5 || names[0] !== 'logger' || names[4] !== 'dispatch') {
  throw new Error(`Internal error: unexpected s3rver middleware ${JSON.stringify(names)}`);
}
app.middleware.splice(0, 1);
app.middleware.splice(3, 0, harnessMiddleware(env, new FaultInjector(), new Stats(), values.stock));

/** Errors a client causes by going away; nothing the server did wrong. */
const CLIENT_GONE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);
app.on('error', (err: unknown) => {
  if (typeof err === 'object' && err !== null && injectedErrors.has(err)) return;
  // S3 errors are answers (404, 412, 501 ...), not server faults; InternalError wraps a crash.
  if (isS3Error(err) && err.code !== 'InternalError') return;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CLIENT_GONE.has(code)) return;
  console.error('unexpected error:', err);
});

for (const bucket of (values.buckets ?? '').split(',').filter((b) => b !== '')) {
  await app.store.putBucket(bucket);
}

const server = createServer(app.callback());
// Longer than any client's idle time in a test, so a pooled socket is not closed by the server
// just as a client reuses it (a spurious ECONNRESET unrelated to injected faults).
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.listen(Number(values.port), '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('Internal error: no port');
  process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
});

let stopping = false;
function shutdown(): void {
  if (stopping) return;
  stopping = true;
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
if (values['exit-on-stdin-close']) {
  process.stdin.on('end', shutdown).on('close', shutdown).resume();
}
