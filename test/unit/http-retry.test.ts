import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RetryNotice } from '../../lib/util/retry.js';
import {
  isRetryableNetworkError,
  redactUrl,
  retryingFetch,
  serverWaitMs,
} from '../../lib/io/hub/http-retry.js';

/** A loopback server answering each request with the next scripted behaviour (the last repeats). */
type Step = (req: IncomingMessage, res: ServerResponse) => void;
const status =
  (code: number, headers: Record<string, string> = {}): Step =>
  (_req, res) => {
    res.writeHead(code, headers);
    res.end(`status ${code}`);
  };
const reset: Step = (req) => {
  req.socket.resetAndDestroy();
};
const silent: Step = () => undefined;

/** A port nothing listens on (a fresh one: fetch refuses "bad ports" such as 9 outright). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('retryingFetch', () => {
  let server: Server;
  let url: string;
  let script: Step[];
  let seen: number;
  let retries: RetryNotice[];
  beforeEach(async () => {
    script = [];
    seen = 0;
    retries = [];
    server = createServer((req, res) => {
      const step = script[Math.min(seen, script.length - 1)] ?? status(200);
      seen++;
      step(req, res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/path/file?token=SECRET&sig=x`;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  const f = (o: Partial<Parameters<typeof retryingFetch>[0]> = {}) =>
    retryingFetch({
      retries: 3,
      baseMs: 1,
      random: () => 1,
      onRetry: (r) => retries.push(r),
      ...o,
    });

  it('honours RateLimit t= on a 429, then returns the success', async () => {
    script = [
      status(429, {
        RateLimit: '"api";r=0;t=1',
        'RateLimit-Policy': '"fixed window";"api";q=500;w=300',
      }),
      status(200),
    ];
    const started = Date.now();
    const res = await f()(url);
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(retries).toEqual([
      {
        what: `GET ${url.split('?')[0] ?? ''}`,
        attempt: 1,
        reason: 'HTTP 429 (rate limited)',
        waitMs: 1000,
      },
    ]);
  });

  it('honours Retry-After in seconds and as an HTTP date, capped by maxWaitMs', async () => {
    script = [
      status(429, { 'Retry-After': '0' }),
      status(503, { 'Retry-After': new Date(Date.now() + 60_000).toUTCString() }),
      status(200),
    ];
    const res = await f({ maxWaitMs: 30 })(url);
    expect(res.status).toBe(200);
    expect(retries.map((r) => r.waitMs)).toEqual([0, 30]);
  });

  it('retries 500/502/503/504 with growing backoff up to the bound, then returns the last answer', async () => {
    script = [status(500), status(502), status(504), status(503)];
    const res = await f({ baseMs: 2 })(url);
    expect(res.status).toBe(503);
    expect(seen).toBe(4);
    expect(retries.map((r) => [r.reason, r.waitMs])).toEqual([
      ['HTTP 500', 2],
      ['HTTP 502', 4],
      ['HTTP 504', 8],
    ]);
  });

  it('does not retry other 4xx', async () => {
    for (const code of [400, 401, 403, 404, 416]) {
      script = [status(code)];
      seen = 0;
      expect((await f()(url)).status).toBe(code);
      expect(seen).toBe(1);
    }
    expect(retries).toEqual([]);
  });

  it('retries connection resets and refused connections, then rethrows', async () => {
    script = [reset, reset, status(200)];
    expect((await f()(url)).status).toBe(200);
    expect(retries.map((r) => r.reason)).toEqual(['ECONNRESET', 'ECONNRESET']);
    retries = [];
    await expect(f({ retries: 1 })(`http://127.0.0.1:${await closedPort()}/x`)).rejects.toThrow(
      'fetch failed',
    );
    expect(retries).toHaveLength(1);
    expect(retries[0]?.reason).toMatch(/ECONNREFUSED/);
  });

  it('retries a request whose headers do not come in time', async () => {
    script = [silent, status(200)];
    const res = await f({ headersTimeoutMs: 100 })(url);
    expect(res.status).toBe(200);
    expect(retries[0]?.reason).toMatch(/ETIMEDOUT/);
  });

  it('stops at once when the caller aborts, even mid-wait', async () => {
    script = [status(429, { RateLimit: '"api";r=0;t=30' })];
    const ac = new AbortController();
    setTimeout(() => {
      ac.abort();
    }, 50);
    const started = Date.now();
    await expect(f()(url, { signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(seen).toBe(1);
  });

  it('never puts query strings, credentials or headers into onRetry', async () => {
    script = [status(503), status(200)];
    await f()(url, { headers: { Authorization: 'Bearer hf_SECRET' } });
    expect(JSON.stringify(retries)).not.toMatch(/SECRET|sig=|Bearer/);
  });
});

describe('serverWaitMs', () => {
  const h = (o: Record<string, string>) => new Headers(o);
  it('reads RateLimit t of the exhausted policy, and the larger of RateLimit and Retry-After', () => {
    expect(serverWaitMs(h({ RateLimit: '"api";r=0;t=55' }), 0)).toBe(55_000);
    expect(serverWaitMs(h({ RateLimit: '"api";r=10;t=5, "resolvers";r=0;t=20' }), 0)).toBe(20_000);
    expect(serverWaitMs(h({ RateLimit: '"api";r=0;t=2', 'Retry-After': '7' }), 0)).toBe(7_000);
    expect(serverWaitMs(h({ 'Retry-After': 'Thu, 01 Jan 1970 00:00:10 GMT' }), 4_000)).toBe(6_000);
    expect(serverWaitMs(h({ 'Retry-After': 'soon' }), 0)).toBeUndefined();
    expect(serverWaitMs(h({}), 0)).toBeUndefined();
  });
});

describe('isRetryableNetworkError / redactUrl', () => {
  const withCause = (msg: string, cause: unknown) => new TypeError(msg, { cause });
  const coded = (code: string, msg = code) => Object.assign(new Error(msg), { code });
  it('knows undici and Node network errors from aborts and bugs', () => {
    expect(isRetryableNetworkError(withCause('fetch failed', coded('ECONNRESET')))).toBe(true);
    expect(
      isRetryableNetworkError(
        withCause('terminated', coded('UND_ERR_SOCKET', 'other side closed')),
      ),
    ).toBe(true);
    expect(isRetryableNetworkError(new Error('socket hang up'))).toBe(true);
    expect(
      isRetryableNetworkError(withCause('fetch failed', coded('UND_ERR_CONNECT_TIMEOUT'))),
    ).toBe(true);
    expect(isRetryableNetworkError(new TypeError('fetch failed'))).toBe(true);
    expect(isRetryableNetworkError(withCause('fetch failed', coded('ENOTFOUND')))).toBe(false);
    expect(isRetryableNetworkError(new DOMException('aborted', 'AbortError'))).toBe(false);
    expect(isRetryableNetworkError(new TypeError('Invalid URL'))).toBe(false);
  });
  it('keeps scheme, host and path only', () => {
    expect(redactUrl('https://u:p@cdn.example/a/b?X-Amz-Signature=s#f')).toBe(
      'https://cdn.example/a/b',
    );
  });
});
