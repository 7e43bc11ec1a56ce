/**
 * Hugging Face credentials: where the token comes from, where it may go, and what a refusal means.
 *
 * Found the way `huggingface_hub` finds them (so a user's
 * `huggingface-cli login` just works): `HF_TOKEN`, else the file at `HF_TOKEN_PATH`, else
 * `$HF_HOME/token` with `HF_HOME` defaulting to `~/.cache/huggingface` (or
 * `$XDG_CACHE_HOME/huggingface`); a leading `~` is expanded; endpoint from
 * `HF_ENDPOINT`. `@huggingface/hub` reads none of these itself.
 *
 * `resolveHfAuth` is a pure function of an env record and a file reader, so tests need no real
 * home directory. `hubFetch` sends the token to the endpoint's origin only; `hubFailure` turns a
 * refusal into one how-to message.
 */
import { readFileSync } from 'node:fs';
import type { Failure, Result } from '../../errors.js';
import { err, ok } from '../../errors.js';

/** Reads a text file; `undefined` when it does not exist. Other errors throw. */
export type ReadText = (path: string) => string | undefined;

/** What was found. The token never appears in messages; `tokenSource` says where it came from. */
export interface HfAuth {
  /** Hub base URL without a trailing slash, e.g. `https://huggingface.co`. */
  endpoint: string;
  /** Bearer token, trimmed; absent when none is configured. */
  token?: string;
  /** Where the token came from, for messages: `HF_TOKEN`, or the file path. */
  tokenSource?: string;
}

export const DEFAULT_HF_ENDPOINT = 'https://huggingface.co';

/** Reads a file as UTF-8; a missing file (or a missing parent directory) is `undefined`. */
export const readTextIfExists: ReadText = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw e;
  }
};

/**
 * Resolves token and endpoint from `env`. An empty or whitespace-only value counts as unset (as
 * in huggingface_hub). Errors: an unreadable token file, a malformed `HF_ENDPOINT`.
 */
export function resolveHfAuth(
  env: Readonly<Record<string, string | undefined>>,
  readText: ReadText = readTextIfExists,
): Result<HfAuth> {
  const endpoint = resolveEndpoint(env.HF_ENDPOINT);
  if (!endpoint.ok) return endpoint;
  const home = nonEmpty(env.HOME) ?? nonEmpty(env.USERPROFILE);
  const expand = (p: string) =>
    home !== undefined && (p === '~' || p.startsWith('~/')) ? home + p.slice(1) : p;

  const fromEnv = nonEmpty(env.HF_TOKEN);
  if (fromEnv !== undefined && !isHeaderSafe(fromEnv)) return badToken('HF_TOKEN');
  if (fromEnv !== undefined)
    return ok({ endpoint: endpoint.value, token: fromEnv, tokenSource: 'HF_TOKEN' });

  // huggingface_hub also honours XDG_CACHE_HOME for the default HF_HOME.
  const cacheHome =
    nonEmpty(env.XDG_CACHE_HOME) ?? (home !== undefined ? `${home}/.cache` : undefined);
  const hfHome =
    nonEmpty(env.HF_HOME) ?? (cacheHome !== undefined ? `${cacheHome}/huggingface` : undefined);
  const tokenPath =
    nonEmpty(env.HF_TOKEN_PATH) ?? (hfHome !== undefined ? `${expand(hfHome)}/token` : undefined);
  if (tokenPath === undefined) return ok({ endpoint: endpoint.value });
  const path = expand(tokenPath);
  let text: string | undefined;
  try {
    text = readText(path);
  } catch (e) {
    return err({
      reason: 'invalid-input',
      message: `cannot read the Hugging Face token file ${path}: ${(e as Error).message}`,
    });
  }
  const token = nonEmpty(text);
  if (token !== undefined && !isHeaderSafe(token)) return badToken(path);
  return ok(
    token === undefined
      ? { endpoint: endpoint.value }
      : { endpoint: endpoint.value, token, tokenSource: path },
  );
}

function resolveEndpoint(raw: string | undefined): Result<string> {
  const value = nonEmpty(raw);
  if (value === undefined) return ok(DEFAULT_HF_ENDPOINT);
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return err({
      reason: 'invalid-input',
      message: `HF_ENDPOINT ${JSON.stringify(value)} is not a URL`,
    });
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.search !== '' || u.hash !== '') {
    return err({
      reason: 'invalid-input',
      message: `HF_ENDPOINT ${JSON.stringify(value)} must be an http(s) base URL such as ${DEFAULT_HF_ENDPOINT}`,
    });
  }
  // Credentials in the endpoint would end up in every message that names a URL.
  if (u.username !== '' || u.password !== '') {
    return err({
      reason: 'invalid-input',
      message: 'HF_ENDPOINT must not contain credentials: set HF_TOKEN instead',
    });
  }
  return ok(value.replace(/\/+$/, ''));
}

/**
 * A token goes into a header: only visible ASCII. Checked here because fetch's own error for a bad
 * header value quotes the value, i.e. the token.
 */
const isHeaderSafe = (t: string): boolean => /^[\x21-\x7e]+$/.test(t);

function badToken(source: string): Result<never> {
  return err({
    reason: 'invalid-input',
    message: `the Hugging Face token from ${source} contains spaces or characters a token cannot have (was a second line or a quote pasted in?)`,
  });
}

function nonEmpty(s: string | undefined): string | undefined {
  const t = s?.trim();
  return t === undefined || t === '' ? undefined : t;
}

/** Who is asking the Hub: the repo, the endpoint and the token, for requests and messages. */
export interface HubCaller {
  /** `owner/name` of a dataset repo. */
  repo: string;
  endpoint: string;
  token?: string;
  /** Where the token came from, named in the gated-repo message instead of the token. */
  tokenSource?: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * One request to the Hub through `http` (the retrying fetch), following redirects by hand so that
 * the token goes to the endpoint's origin only: the CDN a download is redirected to, or a Link
 * header pointing elsewhere, never sees it. Returns the final response and the headers of the
 * first one (the Hub's own, which carry X-Linked-Etag / X-Linked-Size / X-Repo-Commit).
 */
export async function hubFetch(
  http: typeof fetch,
  caller: HubCaller,
  url: string,
  init: RequestInit,
): Promise<{ res: Response; first: Headers }> {
  const origin = new URL(caller.endpoint).origin;
  let current = url;
  let first: Headers | undefined;
  for (let hop = 0; hop <= 5; hop++) {
    const headers = new Headers(init.headers);
    headers.delete('authorization');
    if (caller.token !== undefined && new URL(current).origin === origin) {
      headers.set('Authorization', `Bearer ${caller.token}`);
    }
    const res = await http(current, { ...init, headers, redirect: 'manual' });
    first ??= res.headers;
    const location = res.headers.get('location');
    if (!REDIRECTS.has(res.status) || location === null) return { res, first };
    await res.body?.cancel().catch(() => undefined);
    current = new URL(location, current).href;
  }
  throw new Error(`too many redirects from ${new URL(url).origin}`);
}

/**
 * A Hub error answer as a Failure: by `X-Error-Code` first (the Hub answers 401, not 404, for a
 * repo an anonymous caller cannot see), then by status. 401/403 get the one how-to message for
 * gated datasets, saying whether a token was sent and from where (never the token itself).
 */
export function hubFailure(
  caller: HubCaller,
  res: { status: number; headers: Headers },
  about: {
    /** What was being done, for the message (`downloading data/…`). */
    what: string;
    /** The repo path asked for, if any (named when it does not exist). */
    path?: string | undefined;
    /** Retries already spent on this request (said when giving up on a 429/5xx). */
    retries: number;
  },
): Failure {
  const { what, path, retries } = about;
  const url = `hf://datasets/${caller.repo}`;
  const code = res.headers.get('x-error-code') ?? '';
  const detail = res.headers.get('x-error-message')?.slice(0, 200);
  const said = detail !== undefined && detail !== '' ? `: ${detail}` : '';
  const sent = caller.token !== undefined;
  if (code === 'RepoNotFound') {
    const hint = sent ? '' : ' (if it is private, set HF_TOKEN)';
    return {
      reason: 'not-found',
      key: caller.repo,
      message: `dataset ${caller.repo} not found on ${caller.endpoint}${hint}`,
    };
  }
  if (code === 'RevisionNotFound') {
    return { reason: 'not-found', key: url, message: `${what}: revision not found${said}` };
  }
  if (code === 'EntryNotFound' || (res.status === 404 && code !== 'GatedRepo')) {
    const missing = path ?? 'the entry';
    return {
      reason: 'not-found',
      key: path ?? url,
      message: `${what}: ${missing} does not exist in ${url} (HTTP ${res.status})${said}`,
    };
  }
  if (code === 'GatedRepo' || res.status === 401 || res.status === 403) {
    const token = sent
      ? `A token was sent (from ${caller.tokenSource ?? 'the configuration'}) and refused with HTTP ${res.status}: make sure its account accepted the terms and the token can read the repo.`
      : 'No token was sent.';
    return {
      reason: 'invalid-input',
      message: `${what}: ${caller.repo} is gated. Accept its terms at https://huggingface.co/datasets/${caller.repo}, then set HF_TOKEN (or run \`huggingface-cli login\`). ${token}`,
    };
  }
  if (res.status === 429 || res.status >= 500) {
    return {
      reason: 'transient',
      message: `${what}: HTTP ${res.status} after ${retries} retries${said}`,
    };
  }
  return { reason: 'invalid-input', message: `${what}: unexpected HTTP ${res.status}${said}` };
}
