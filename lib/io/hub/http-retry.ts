/**
 * A `fetch` with retries, for the Hugging Face Hub (and any HTTP API with the same manners):
 *
 * - 429: wait what the server asks (`RateLimit: "api";r=0;t=55` → 55 s, or `Retry-After` in
 *   seconds or as an HTTP date), capped by `maxWaitMs`; without either, jittered backoff.
 * - 500/502/503/504 and network errors (reset, refused, hang-up, undici `fetch failed`, timeouts):
 *   jittered exponential backoff (full jitter), at most `retries` times.
 * - Anything else (other 4xx included) is returned at once: a 401 or 404 never improves.
 *
 * It covers getting the response headers; a body that breaks later is the caller's to resume
 * (hub-hf.ts resumes downloads with Range). Nothing here logs: `onRetry` receives the notice
 * every retrying layer gives (lib/util/retry.ts): the method and URL without its query string
 * (signed CDN URLs carry secrets there) or user info, the attempt, a reason without headers, and
 * the wait.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Failure } from '../../errors.js';
import { errnoFailure } from '../../errors.js';
import type { RetryNotice } from '../../util/retry.js';
import { backoffMs } from '../../util/retry.js';

/** Told about each retry; `what` is `<METHOD> <url without query, fragment or credentials>`. */
export type OnRetry = (notice: RetryNotice) => void;

export interface HttpRetryOptions {
  /** Extra attempts after the first, for every retryable outcome (429 included). */
  retries: number;
  /** First backoff ceiling (doubles per attempt); default 500 ms. */
  baseMs?: number;
  /** Largest backoff ceiling; default 30 s. */
  maxBackoffMs?: number;
  /** Largest wait a server may ask for with RateLimit / Retry-After; default 120 s. */
  maxWaitMs?: number;
  /**
   * Time allowed until response headers arrive, per attempt; default 60 s. A timeout is retried
   * like a reset. Reading the body is not limited (a 2.5 GB body takes what it takes).
   */
  headersTimeoutMs?: number;
  onRetry?: OnRetry;
  /** The fetch underneath; default the global one. */
  fetch?: typeof fetch;
  /** Random source in [0,1) for jitter (tests). */
  random?: () => number;
  /** Clock for `Retry-After` dates (tests). */
  now?: () => number;
}

/** Status codes worth another attempt. */
const RETRY_STATUS = new Set([429, 500, 502, 503, 504]);

/** Error codes (Node and undici) that mean the connection, not the request, failed. */
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
const NETWORK_MESSAGES = ['socket hang up', 'other side closed', 'terminated'];

/** Wraps `opts.fetch` (or the global fetch) with the retry policy above. */
export function retryingFetch(opts: HttpRetryOptions): typeof fetch {
  const base = opts.fetch ?? fetch;
  const random = opts.random ?? Math.random;
  const backoff = (attempt: number) =>
    backoffMs(attempt, opts.baseMs ?? 500, opts.maxBackoffMs ?? 30_000, random);
  const maxWait = opts.maxWaitMs ?? 120_000;
  const headersTimeout = opts.headersTimeoutMs ?? 60_000;

  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    // A streamed body cannot be sent twice; such a request gets one attempt.
    const retries = init?.body instanceof ReadableStream ? 0 : opts.retries;
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted();
      let reason: string;
      let waitMs: number;
      try {
        const res = await withHeadersTimeout(base, input, init, {
          signal: signal ?? undefined,
          ms: headersTimeout,
        });
        if (!RETRY_STATUS.has(res.status) || attempt >= retries) return res;
        const asked = serverWaitMs(res.headers, (opts.now ?? Date.now)());
        reason = res.status === 429 ? 'HTTP 429 (rate limited)' : `HTTP ${res.status}`;
        waitMs = asked !== undefined ? Math.min(asked, maxWait) : backoff(attempt);
        // Free the connection: an unread body pins its socket.
        await res.body?.cancel().catch(() => undefined);
      } catch (e) {
        if (signal?.aborted === true || !isRetryableNetworkError(e) || attempt >= retries) throw e;
        reason = describeNetworkError(e);
        waitMs = backoff(attempt);
      }
      opts.onRetry?.({ what: `${method} ${redactUrl(url)}`, attempt: attempt + 1, reason, waitMs });
      await sleep(waitMs, undefined, signal ? { signal } : {});
    }
  };
}

/** Calls `f`, aborting the attempt when headers take longer than `ms` (with an ETIMEDOUT error). */
async function withHeadersTimeout(
  f: typeof fetch,
  input: Parameters<typeof fetch>[0],
  init: RequestInit | undefined,
  { signal, ms }: { signal: AbortSignal | undefined; ms: number },
): Promise<Response> {
  const timer = new AbortController();
  const t = setTimeout(() => {
    timer.abort(
      Object.assign(new Error(`no response within ${Math.round(ms / 1000)} s`), {
        code: 'ETIMEDOUT',
      }),
    );
  }, ms);
  try {
    const both = signal ? AbortSignal.any([signal, timer.signal]) : timer.signal;
    return await f(input, { ...init, signal: both });
  } finally {
    clearTimeout(t);
  }
}

/**
 * The wait a 429/503 asks for, in ms: the largest of `RateLimit`'s `t` (of an exhausted policy,
 * `r=0`, when one is marked) and `Retry-After` (seconds or HTTP date). Undefined when neither.
 */
export function serverWaitMs(headers: Headers, now: number): number | undefined {
  const waits: number[] = [];
  const rl = headers.get('ratelimit');
  if (rl !== null) {
    const items = rl.split(',').map((item) => ({
      r: /;\s*r=(\d+)/.exec(item)?.[1],
      t: /;\s*t=(\d+)/.exec(item)?.[1],
    }));
    const exhausted = items.filter((i) => i.r === '0');
    for (const i of exhausted.length > 0 ? exhausted : items) {
      if (i.t !== undefined) waits.push(Number(i.t) * 1000);
    }
  }
  const ra = headers.get('retry-after')?.trim();
  if (ra !== undefined && ra !== '') {
    if (/^\d+$/.test(ra)) waits.push(Number(ra) * 1000);
    else {
      const at = Date.parse(ra);
      if (!Number.isNaN(at)) waits.push(Math.max(0, at - now));
    }
  }
  return waits.length > 0 ? Math.max(...waits) : undefined;
}

/** True for errors of the connection (worth a retry), false for aborts and bugs. */
export function isRetryableNetworkError(e: unknown): boolean {
  if (!(e instanceof Error) || e.name === 'AbortError') return false;
  if (e.name === 'TimeoutError') return true;
  const chain = causes(e);
  if (chain.some(isNetworkLink)) return true;
  // undici reports any network failure as `TypeError: fetch failed`; without a cause it is
  // still the network. With a cause we trust the cause (ENOTFOUND, "bad port" are not transient).
  return e instanceof TypeError && e.message === 'fetch failed' && e.cause === undefined;
}

/** A short reason for messages, e.g. `ECONNRESET` or `UND_ERR_SOCKET (other side closed)`. */
export function describeNetworkError(e: unknown): string {
  const chain = causes(e);
  const coded = chain.find((c) => codeOf(c) !== undefined);
  if (coded !== undefined) {
    const code = codeOf(coded) ?? '';
    const msg = coded.message;
    return msg === '' || msg.includes(code) ? code : `${code} (${msg})`;
  }
  const last = chain[chain.length - 1];
  return last === undefined ? String(e) : `${last.name}: ${last.message}`;
}

/**
 * An exception from a request (fetch, a body read, a client library) as a Failure: an abort is
 * `aborted`, network trouble `transient`, a local file-system error `invalid-input` (a full or
 * read-only disk needs the user), anything else `transient` with its message.
 */
export function fetchFailure(e: unknown, what: string, signal?: AbortSignal): Failure {
  if (signal?.aborted === true || (e instanceof Error && e.name === 'AbortError')) {
    return { reason: 'aborted', message: 'interrupted' };
  }
  const known = errnoFailure(e, what);
  if (known !== undefined && known.reason !== 'transient') return known; // unreachable, EACCES, ENOSPC
  if (isRetryableNetworkError(e) || (e instanceof TypeError && e.message === 'fetch failed')) {
    return { reason: 'transient', message: `${what}: ${describeNetworkError(e)}` };
  }
  if (e instanceof Error && (e as NodeJS.ErrnoException).syscall !== undefined) {
    return { reason: 'invalid-input', message: `${what}: ${e.message}` };
  }
  return { reason: 'transient', message: `${what}: ${e instanceof Error ? e.message : String(e)}` };
}

/** `https://host/path` of a URL: no user info, no query (signatures, tokens), no fragment. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(unparseable URL)';
  }
}

function isNetworkLink(e: Error): boolean {
  const code = codeOf(e);
  return (code !== undefined && NETWORK_CODES.has(code)) || NETWORK_MESSAGES.includes(e.message);
}

function codeOf(e: Error): string | undefined {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** `e`, its cause, the cause's cause…: undici wraps the socket error one or two levels down. */
function causes(e: unknown): Error[] {
  const out: Error[] = [];
  let cur: unknown = e;
  while (cur instanceof Error && out.length < 6) {
    out.push(cur);
    cur = cur.cause;
  }
  return out;
}
