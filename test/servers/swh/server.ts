/**
 * A synthetic Software Heritage content bucket on loopback: answers S3 GetObject / HeadObject for
 * `/<bucket>/<prefix><sha1>` (path style, unsigned, like `s3://softwareheritage/content`) without
 * storing any object. Bodies, sizes, latency, missing ids, faults and the rate limit follow
 * model.ts; the control API is in protocol.ts. Runs as a child process (harness.ts), so its CPU is
 * not the client's:
 *
 *     node --import tsx test/servers/swh/server.ts [--port 0] [--config '<SwhConfigPatch JSON>']
 *          [--exit-on-stdin-close]
 *
 * Prints one line to stdout once listening, `{"port":N}`, and nothing else.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { BodyPool } from './bodies.js';
import type { Outcome, SwhConfig, SwhConfigPatch } from './model.js';
import { DEFAULT_CONFIG, Rng, TokenBucket, applyPatch, checkConfig, decide } from './model.js';
import type { SecondStats, SwhStats } from './protocol.js';
import { CONTROL_PREFIX, OUTCOMES } from './protocol.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    config: { type: 'string', default: '{}' },
    'exit-on-stdin-close': { type: 'boolean', default: false },
  },
});

let config: SwhConfig = applyPatch(DEFAULT_CONFIG, JSON.parse(values.config) as SwhConfigPatch);
const bad = checkConfig(config);
if (bad.length > 0) {
  console.error(`invalid config: ${bad.join('; ')}`);
  process.exit(2);
}
const now = () => performance.now();
let pool = new BodyPool(config.size, config.seed);
let rng = new Rng(config.seed);
const bucket = new TokenBucket(config.rateLimit, now());

interface Counters {
  requests: number;
  byOutcome: Record<Outcome, number>;
  rejected: number;
  bytes: number;
  maxInFlight: number;
  t0: number;
  cpu0: NodeJS.CpuUsage;
  timeline: SecondStats[];
}
const fresh = (): Counters => ({
  requests: 0,
  byOutcome: Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>,
  rejected: 0,
  bytes: 0,
  maxInFlight: inFlight,
  t0: now(),
  cpu0: process.cpuUsage(),
  timeline: [],
});
let inFlight = 0;
let counters = fresh();
const MAX_TIMELINE = 7200;

function second(): SecondStats | undefined {
  const s = Math.floor((now() - counters.t0) / 1000);
  if (s >= MAX_TIMELINE) return undefined;
  const tl = counters.timeline;
  while (tl.length <= s) {
    tl.push({ second: tl.length, requests: 0, ok: 0, slowDown: 0, maxInFlight: inFlight });
  }
  return tl[s];
}

const xmlEscape = (s: string) => s.replace(/[<>&'"]/g, (c) => `&#${String(c.charCodeAt(0))};`);

let requestSeq = 0;
function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  key: string,
  head: boolean,
): void {
  const body = Buffer.from(
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message>` +
      `<Key>${xmlEscape(key)}</Key><RequestId>${String(++requestSeq)}</RequestId></Error>`,
  );
  res.writeHead(status, {
    'content-type': 'application/xml',
    'content-length': String(body.length),
    'x-amz-request-id': String(requestSeq),
  });
  res.end(head ? undefined : body);
}

const ERRORS: Record<Exclude<Outcome, 'ok'>, [number, string, string]> = {
  missing: [404, 'NoSuchKey', 'The specified key does not exist.'],
  'slow-down': [503, 'SlowDown', 'Please reduce your request rate.'],
  'internal-error': [500, 'InternalError', 'We encountered an internal error. Please try again.'],
  unavailable: [503, 'ServiceUnavailable', 'Service is unable to handle request.'],
};

const LAST_MODIFIED = new Date(Date.UTC(2023, 8, 6)).toUTCString();

function serveObject(req: IncomingMessage, res: ServerResponse, path: string): void {
  const head = req.method === 'HEAD';
  const base = `/${config.bucket}/${config.prefix}`;
  const id = path.slice(base.length);
  if (req.method !== 'GET' && !head) {
    counters.rejected++;
    sendError(res, 501, 'NotImplemented', 'Only GET and HEAD are served.', id, head);
    return;
  }
  if (!path.startsWith(base) || !/^[0-9a-f]{40}$/.test(id)) {
    counters.rejected++;
    const other = !path.startsWith(`/${config.bucket}/`);
    if (other) sendError(res, 404, 'NoSuchBucket', 'The bucket does not exist.', path, head);
    else sendError(res, 404, 'NoSuchKey', ERRORS.missing[2], id, head);
    return;
  }
  const t = now();
  const d = decide(config, bucket, rng, id, t);
  counters.requests++;
  counters.byOutcome[d.outcome]++;
  inFlight++;
  counters.maxInFlight = Math.max(counters.maxInFlight, inFlight);
  const sec = second();
  if (sec) {
    sec.requests++;
    if (d.outcome === 'ok') sec.ok++;
    if (d.outcome === 'slow-down') sec.slowDown++;
    sec.maxInFlight = Math.max(sec.maxInFlight, inFlight);
  }
  const answer = () => {
    inFlight--;
    if (d.outcome !== 'ok' || d.plan.kind !== 'body') {
      const [status, code, message] = ERRORS[d.outcome === 'ok' ? 'missing' : d.outcome];
      sendError(res, status, code, message, `${config.prefix}${id}`, head);
      return;
    }
    const b = pool.get(d.plan.cls, d.plan.variant);
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(b.gz.length),
      etag: b.etag,
      'last-modified': LAST_MODIFIED,
      'accept-ranges': 'bytes',
      'x-amz-request-id': String(++requestSeq),
    });
    if (head) res.end();
    else {
      counters.bytes += b.gz.length;
      res.end(b.gz);
    }
  };
  if (d.delayMs <= 0) answer();
  else setTimeout(answer, d.delayMs);
}

function statsNow(): SwhStats {
  const cpu = process.cpuUsage(counters.cpu0);
  second();
  return {
    requests: counters.requests,
    byOutcome: { ...counters.byOutcome },
    rejected: counters.rejected,
    bytes: counters.bytes,
    inFlight,
    maxInFlight: counters.maxInFlight,
    elapsedMs: Math.round(now() - counters.t0),
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    timeline: counters.timeline,
    pool: pool.stats(),
  };
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(body);
}

/** Answers a control request: status and JSON body. */
async function control(req: IncomingMessage, what: string): Promise<[number, unknown]> {
  if (what === 'config' && req.method === 'GET') return [200, config];
  if (what === 'stats' && req.method === 'GET') return [200, statsNow()];
  if (what === 'pool/warm' && req.method === 'POST') {
    pool.warm();
    return [200, pool.stats()];
  }
  if (what === 'stats/reset' && req.method === 'POST') {
    counters = fresh();
    return [200, {}];
  }
  if (what === 'config' && req.method === 'PUT') {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let patch: SwhConfigPatch;
    try {
      patch = JSON.parse(Buffer.concat(chunks).toString('utf8')) as SwhConfigPatch;
    } catch (e) {
      return [400, { errors: [`not JSON: ${(e as Error).message}`] }];
    }
    const next = applyPatch(config, patch);
    const errors = checkConfig(next);
    if (errors.length > 0) return [400, { errors }];
    if (next.seed !== config.seed || JSON.stringify(next.size) !== JSON.stringify(config.size)) {
      pool = new BodyPool(next.size, next.seed);
      rng = new Rng(next.seed);
    }
    bucket.setLimit(next.rateLimit, now());
    config = next;
    return [200, config];
  }
  return [404, { errors: [`no control ${req.method ?? '?'} ${what}`] }];
}

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (path.startsWith(CONTROL_PREFIX)) {
    control(req, path.slice(CONTROL_PREFIX.length)).then(
      ([status, value]) => {
        json(res, status, value);
      },
      (e: unknown) => {
        json(res, 500, { errors: [String(e)] });
      },
    );
    return;
  }
  // The request body (none for GET/HEAD) is drained so the socket can be reused.
  req.resume();
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    counters.rejected++;
    sendError(res, 400, 'InvalidURI', 'Could not parse the specified URI.', path, false);
    return;
  }
  serveObject(req, res, decoded);
});
// Longer than any client's idle time, so a pooled socket is not closed under a client reusing it.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
server.maxRequestsPerSocket = 0;
const CLIENT_GONE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);
server.on('clientError', (e: NodeJS.ErrnoException, socket) => {
  if (!CLIENT_GONE.has(e.code ?? '')) console.error('client error:', e.message);
  socket.destroy();
});
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
