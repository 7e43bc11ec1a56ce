/**
 * The Hugging Face Hub as a HubSource (`hf://datasets/<owner>/<name>`).
 *
 *   resolveRevision  GET {endpoint}/api/datasets/{repo}/revision/{rev} → sha (cached per revision)
 *   listLanguages    one recursive listing of `data/` per pinned sha (@huggingface/hub listFiles,
 *   listFiles        Link pagination), cached: 658 languages must not cost 658 API calls
 *   download         GET {endpoint}/datasets/{repo}/resolve/{sha}/{path} → 302 → CDN, by hand:
 *                    resumable `.part` file, sha256 while streaming, Range after a reset
 *
 * Every request names the pinned commit sha, never a branch: a revision that is not a sha is
 * resolved first. The token goes only into the Authorization header of requests to the endpoint's
 * own origin (never to the CDN a download redirects to), and is scrubbed from every Failure.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import type { Failure, Result } from '../../errors.js';
import { err, ok } from '../../errors.js';
import { cmp } from '../../fingerprint.js';
import type { ManifestEntry } from '../../model.js';
import type { StatFs } from '../fs/disk.js';
import { PartFile, SpaceReservations, moveFile } from '../fs/disk.js';
import type { HubCaller, ReadText } from './hf-auth.js';
import { hubFailure, hubFetch, resolveHfAuth } from './hf-auth.js';
import { backoffMs } from '../../util/retry.js';
import type { OnRetry } from './http-retry.js';
import {
  describeNetworkError,
  fetchFailure,
  isRetryableNetworkError,
  redactUrl,
  retryingFetch,
} from './http-retry.js';
import type { DownloadOptions, HubSource } from './hub.js';
import {
  checkRemoteName,
  checkRepoPath,
  isCommitSha,
  isSha256,
  mismatch,
  parseParquetPath,
} from './hub.js';
import { ensureDir } from '../fs/mkdirs.js';

export interface HfHubOptions extends HubCaller {
  /** Where `<sha256>.part` files grow; keep it on the filesystem of the download destinations. */
  downloadsDir: string;
  /** Downloads in flight at once (each may be 2.5 GB); default 4. */
  maxConcurrentDownloads?: number;
  /** Retries per request (429, 5xx, network) and per stretch of a download without progress; default 4. */
  retries?: number;
  /** Told about every retry (for `retry` events); the URL carries no query and no token. */
  onRetry?: OnRetry;
  /** First backoff ceiling in ms (default 500); tests shrink it. */
  retryBaseMs?: number;
  /** Cap on a server-requested wait (RateLimit / Retry-After), default 120 s. */
  maxWaitMs?: number;
  /** The fetch under the retrying one (tests, proxies). */
  fetch?: typeof fetch;
  /** Replaces `statfs` for the free-space check (tests). */
  statfs?: StatFs;
}

/** A full-length commit sha: what a pinned revision looks like. */
/** The `data/` tree at one commit: language folders and their parquet entries. */
interface TreeIndex {
  languages: string[];
  files: Map<string, ManifestEntry[]>;
}

/** Status and headers of the response an operation failed on (for error codes). */
interface HttpTrouble {
  status: number;
  headers: Headers;
}

export class HfHub implements HubSource {
  readonly url: string;
  private readonly http: typeof fetch;
  private readonly retries: number;
  private readonly baseMs: number;
  private readonly revisions = new Map<string, Promise<Result<string>>>();
  private readonly trees = new Map<string, Promise<Result<TreeIndex>>>();
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly space = new SpaceReservations();
  /** Per-`.part` chains: two downloads of the same bytes in this process take turns. */
  private readonly partLocks = new Map<string, Promise<unknown>>();

  constructor(private readonly o: HfHubOptions) {
    this.url = `hf://datasets/${o.repo}`;
    this.retries = o.retries ?? 4;
    this.baseMs = o.retryBaseMs ?? 500;
    this.limit = pLimit(o.maxConcurrentDownloads ?? 4);
    this.http = retryingFetch({
      retries: this.retries,
      baseMs: this.baseMs,
      ...(o.maxWaitMs !== undefined ? { maxWaitMs: o.maxWaitMs } : {}),
      ...(o.onRetry ? { onRetry: o.onRetry } : {}),
      ...(o.fetch ? { fetch: o.fetch } : {}),
    });
  }

  resolveRevision(revision: string): Promise<Result<string>> {
    return this.cached(this.revisions, revision, async () => {
      const what = `revision ${JSON.stringify(revision)} of ${this.url}`;
      const url = `${this.o.endpoint}/api/datasets/${this.o.repo}/revision/${encodeURIComponent(revision)}`;
      const got = await this.getJson(url, what);
      if (!got.ok) return got;
      const sha = (got.value as { sha?: unknown } | null)?.sha;
      if (typeof sha !== 'string' || !isCommitSha(sha)) {
        return err({
          reason: 'transient',
          message: `${what}: the Hub answered without a commit sha`,
        });
      }
      return ok(sha);
    });
  }

  async listLanguages(revision: string): Promise<Result<string[]>> {
    const tree = await this.tree(revision);
    return tree.ok ? ok([...tree.value.languages]) : tree;
  }

  async listFiles(language: string, revision: string): Promise<Result<ManifestEntry[]>> {
    const checked = checkRemoteName(language, 'language folder');
    if (!checked.ok) return checked;
    const tree = await this.tree(revision);
    if (!tree.ok) return tree;
    const files = tree.value.files.get(language);
    if (files === undefined) {
      return err({
        reason: 'not-found',
        key: `data/${language}`,
        message: `${this.url} has no folder data/${language}/ at ${revision}`,
      });
    }
    return ok(files.map((f) => ({ ...f })));
  }

  async download(
    entry: ManifestEntry,
    revision: string,
    dest: string,
    opts: DownloadOptions,
  ): Promise<Result<{ size: number; sha256: string }>> {
    const path = checkRepoPath(entry.path, 'the manifest');
    if (!path.ok) return path;
    // The sha256 names the .part file, so it must be exactly a digest.
    if (!isSha256(entry.sha256) || !Number.isSafeInteger(entry.size) || entry.size < 0) {
      return err({
        reason: 'invalid-input',
        message: `manifest entry ${entry.path} has no valid size and sha256`,
      });
    }
    const sha = await this.pin(revision);
    if (!sha.ok) return sha;
    // Local trouble (an unwritable downloads dir, a full disk) arrives as an exception from fs.
    const r = await this.limit(() =>
      this.withPartLock(entry.sha256, () => this.downloadNow(entry, sha.value, dest, opts)),
    ).catch((e: unknown) => err(fetchFailure(e, `downloading ${entry.path}`, opts.signal)));
    return this.scrub(r);
  }

  async checkAccess(entry: ManifestEntry, revision: string): Promise<Result<void>> {
    const path = checkRepoPath(entry.path, 'the manifest');
    if (!path.ok) return path;
    const sha = await this.pin(revision);
    if (!sha.ok) return sha;
    const url = this.resolveUrl(sha.value, entry.path);
    try {
      // One byte through the whole chain (resolve, redirect, CDN): what a download will need.
      const { res } = await hubFetch(this.http, this.o, url, { headers: { Range: 'bytes=0-0' } });
      await res.body?.cancel().catch(() => undefined);
      if (res.ok) return ok(undefined);
      return this.scrub(
        err(
          hubFailure(this.o, res, {
            what: `downloading ${entry.path}`,
            path: entry.path,
            retries: 0,
          }),
        ),
      );
    } catch (e) {
      return this.scrub(err(fetchFailure(e, `downloading ${entry.path}`)));
    }
  }

  private resolveUrl(sha: string, path: string): string {
    const encoded = path.split('/').map(encodeURIComponent).join('/');
    return `${this.o.endpoint}/datasets/${this.o.repo}/resolve/${sha}/${encoded}`;
  }

  /** The commit sha to request with: `revision` itself when it is one, else resolved. */
  private pin(revision: string): Promise<Result<string>> {
    return isCommitSha(revision) ? Promise.resolve(ok(revision)) : this.resolveRevision(revision);
  }

  private async tree(revision: string): Promise<Result<TreeIndex>> {
    const sha = await this.pin(revision);
    if (!sha.ok) return sha;
    return this.cached(this.trees, sha.value, () => this.listTree(sha.value));
  }

  /** One paginated, recursive listing of `data/`, every path checked before it is used. */
  private async listTree(sha: string): Promise<Result<TreeIndex>> {
    const where = `${this.url} at ${sha}`;
    let trouble: HttpTrouble | undefined;
    const dirs = new Set<string>();
    const files = new Map<string, ManifestEntry[]>();
    // Loaded on first use: a mirror-based run or a run with fresh manifests never needs it.
    const { listFiles: hubListFiles } = await import('@huggingface/hub');
    try {
      for await (const e of hubListFiles({
        repo: { type: 'dataset', name: this.o.repo },
        revision: sha,
        path: 'data',
        recursive: true,
        expand: false,
        hubUrl: this.o.endpoint,
        // Auth comes from our fetch (same-origin only, see hubFetch in hf-auth.ts), not from
        // `accessToken`, which also throws for tokens not starting with `hf_`. The library throws
        // HubApiError without the headers, so keep the last bad answer for its X-Error-Code.
        fetch: async (input, init) => {
          const res = await this.libFetch(input, init);
          trouble = res.ok ? undefined : { status: res.status, headers: res.headers };
          return res;
        },
      })) {
        const p = checkRepoPath(e.path, `the listing of ${where}`);
        if (!p.ok) return this.scrub(p);
        const parts = e.path.split('/');
        if (parts[0] !== 'data') continue;
        if (e.type === 'directory' && parts.length === 2 && parts[1] !== undefined) {
          dirs.add(parts[1]);
          continue;
        }
        const pq = e.type === 'file' ? parseParquetPath(e.path) : undefined;
        if (pq === undefined) continue;
        if (e.lfs === undefined || !isSha256(e.lfs.oid)) {
          return err({
            reason: 'invalid-input',
            message: `${e.path} in ${where} is listed without an LFS sha256, so it cannot be verified`,
          });
        }
        dirs.add(pq.language);
        const list = files.get(pq.language) ?? [];
        list.push({ path: e.path, stem: pq.stem, size: e.lfs.size, sha256: e.lfs.oid });
        files.set(pq.language, list);
      }
    } catch (e) {
      const what = `the listing of data/ in ${where}`;
      return this.scrub(
        err(
          trouble
            ? hubFailure(this.o, trouble, { what, path: 'data', retries: this.retries })
            : fetchFailure(e, what),
        ),
      );
    }
    const languages = [...dirs].sort(cmp);
    for (const l of languages) {
      files.set(
        l,
        (files.get(l) ?? []).sort((a, b) => cmp(a.path, b.path)),
      );
    }
    return ok({ languages, files });
  }

  private async downloadNow(
    entry: ManifestEntry,
    sha: string,
    dest: string,
    opts: DownloadOptions,
  ): Promise<Result<{ size: number; sha256: string }>> {
    if (opts.signal.aborted) return err({ reason: 'aborted', message: 'interrupted' });
    const dir = this.o.downloadsDir;
    const part = join(dir, `${entry.sha256}.part`);
    const url = this.resolveUrl(sha, entry.path);
    await ensureDir(dir);
    // Resume what an earlier attempt (or process) left: hash its bytes, then ask for the rest.
    const file = await PartFile.resume(part, entry.size);
    const resumed = file.offset > 0;
    const room = await this.space.reserve(
      dir,
      entry.size - file.offset,
      `downloading ${entry.path}`,
      this.o.statfs,
    );
    if (!room.ok) return room;
    try {
      let r = await this.transfer(entry, url, file, opts);
      if (!r.ok && r.error.reason === 'checksum-mismatch' && resumed) {
        // The old .part may hold the bad bytes (a crash, a disk fault): one fresh try.
        await rm(part, { force: true });
        file.restart();
        r = await this.transfer(entry, url, file, opts);
      }
      if (!r.ok) return r;
      await moveFile(part, dest);
      return ok({ size: entry.size, sha256: entry.sha256 });
    } finally {
      room.value.release();
    }
  }

  /**
   * Streams the rest of `url` into `file`, resuming with Range after a broken body, until the
   * file is complete; then checks it. A mismatch deletes the `.part`; any other failure keeps it
   * for the next attempt.
   */
  private async transfer(
    entry: ManifestEntry,
    url: string,
    file: PartFile,
    opts: DownloadOptions,
  ): Promise<Result<true>> {
    const fail = async (f: Failure): Promise<Result<true>> => {
      if (f.reason === 'checksum-mismatch') await rm(file.path, { force: true });
      return err(f);
    };
    let stuck = 0; // consecutive broken attempts without a new byte
    let requested = false;
    while (file.offset < entry.size || !requested) {
      requested = true;
      const from = file.offset;
      let res: Response;
      let first: Headers;
      try {
        ({ res, first } = await hubFetch(this.http, this.o, url, {
          ...(from > 0 ? { headers: { Range: `bytes=${from}-` } } : {}),
          signal: opts.signal,
        }));
      } catch (e) {
        return fail(fetchFailure(e, `downloading ${entry.path}`, opts.signal));
      }
      const claimed = linkedClaims(first);
      if (
        (claimed.sha256 !== undefined && claimed.sha256 !== entry.sha256) ||
        (claimed.size !== undefined && claimed.size !== entry.size)
      ) {
        // The Hub says the file at this commit is not the one in the manifest: no need to fetch it.
        await res.body?.cancel().catch(() => undefined);
        return fail(
          mismatch(
            entry,
            { size: claimed.size ?? entry.size, sha256: claimed.sha256 ?? '(unknown)' },
            `${this.url} (X-Linked headers)`,
          ),
        );
      }
      if (res.status === 416 && from > 0) {
        // Our .part is not a prefix the server can continue: start over.
        await res.body?.cancel().catch(() => undefined);
        file.restart();
        continue;
      }
      if (res.status !== 200 && res.status !== 206) {
        await res.body?.cancel().catch(() => undefined);
        return fail(
          hubFailure(this.o, res, {
            what: `downloading ${entry.path}`,
            path: entry.path,
            retries: this.retries,
          }),
        );
      }
      if (from > 0 && (res.status === 200 || contentRangeStart(res.headers) !== from)) {
        // The server ignored (or misread) the Range: take the full body from byte 0.
        if (res.status !== 200) {
          await res.body?.cancel().catch(() => undefined);
          return fail({
            reason: 'transient',
            message: `${redactUrl(url)}: unusable Content-Range for a resume`,
          });
        }
        file.restart();
      }
      const body = res.body
        ? await file.append(res.body, { limit: entry.size, onBytes: opts.onBytes })
        : {};
      if (body.error === undefined) {
        if (file.offset >= entry.size) break;
        // A clean end before the full size: a short body without a declared length. Resume it.
      } else if (opts.signal.aborted) {
        return err({ reason: 'aborted', message: 'interrupted' });
      } else if (!isRetryableNetworkError(body.error)) {
        return fail(fetchFailure(body.error, `downloading ${entry.path}`, opts.signal));
      }
      stuck = file.offset > from ? 1 : stuck + 1;
      const reason = `${body.error === undefined ? 'short body' : describeNetworkError(body.error)} at byte ${file.offset} of ${entry.size}`;
      if (stuck > this.retries) {
        return fail({
          reason: 'transient',
          message: `downloading ${entry.path} from ${this.url} kept breaking (${reason}); the ${file.offset} bytes received are kept and resumed next time`,
        });
      }
      const waitMs = backoffMs(stuck - 1, this.baseMs, 30_000);
      this.o.onRetry?.({ what: `GET ${redactUrl(url)}`, attempt: stuck, reason, waitMs });
      try {
        await sleep(waitMs, undefined, { signal: opts.signal });
      } catch {
        return err({ reason: 'aborted', message: 'interrupted' });
      }
    }
    const digest = file.digest();
    if (file.offset !== entry.size || digest !== entry.sha256) {
      return fail(mismatch(entry, { size: file.offset, sha256: digest }, this.url));
    }
    return ok(true);
  }

  /** The Hub fetch (same-origin auth, redirects by hand) in the shape @huggingface/hub takes. */
  private async libFetch(
    input: Parameters<typeof fetch>[0],
    init?: RequestInit,
  ): Promise<Response> {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    return (await hubFetch(this.http, this.o, url, init ?? {})).res;
  }

  private async getJson(url: string, what: string): Promise<Result<unknown>> {
    try {
      const { res } = await hubFetch(this.http, this.o, url, {
        headers: { accept: 'application/json' },
      });
      if (!res.ok) {
        await res.body?.cancel().catch(() => undefined);
        return this.scrub(err(hubFailure(this.o, res, { what, retries: this.retries })));
      }
      return ok(await res.json());
    } catch (e) {
      return this.scrub(err(fetchFailure(e, what)));
    }
  }

  /** Belt and braces: no Failure leaves this class with the token in it. */
  private scrub<T>(r: Result<T>): Result<T> {
    const t = this.o.token;
    if (r.ok || t === undefined) return r;
    const fields: [string, unknown][] = Object.entries(r.error);
    if (!fields.some(([, v]) => typeof v === 'string' && v.includes(t))) return r;
    const clean = fields.map(([k, v]) => [
      k,
      typeof v === 'string' ? v.replaceAll(t, 'hf_***') : v,
    ]);
    return err(Object.fromEntries(clean) as Failure);
  }

  /** Memoizes successes only: a failed lookup is asked again next time. */
  private cached<T>(
    map: Map<string, Promise<Result<T>>>,
    key: string,
    load: () => Promise<Result<T>>,
  ): Promise<Result<T>> {
    const hit = map.get(key);
    if (hit !== undefined) return hit;
    const p = load().then((r) => {
      if (!r.ok) map.delete(key);
      return this.scrub(r);
    });
    map.set(key, p);
    return p;
  }

  private async withPartLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.partLocks.get(key) ?? Promise.resolve();
    const run = before.then(fn, fn);
    const settled = run.catch(() => undefined);
    this.partLocks.set(key, settled);
    try {
      return await run;
    } finally {
      if (this.partLocks.get(key) === settled) this.partLocks.delete(key);
    }
  }
}

/**
 * Builds an HfHub for `hf://datasets/<owner>/<name>`, taking token and endpoint from `env`
 * (HF_TOKEN, HF_TOKEN_PATH, HF_HOME, HF_ENDPOINT; see hf-auth.ts).
 */
export function openHfHub(
  sourceUrl: string,
  env: Readonly<Record<string, string | undefined>>,
  opts: Omit<HfHubOptions, 'repo' | 'endpoint' | 'token' | 'tokenSource'> & {
    /** Reads the token file (tests). */
    readText?: ReadText;
  },
): Result<HfHub> {
  const m = /^hf:\/\/datasets\/([A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*)\/?$/.exec(sourceUrl);
  if (m?.[1] === undefined) {
    return err({
      reason: 'invalid-input',
      message: `dataset source ${JSON.stringify(sourceUrl)} must look like hf://datasets/<owner>/<name>`,
    });
  }
  const auth = resolveHfAuth(env, opts.readText);
  if (!auth.ok) return auth;
  const { readText: _readText, ...rest } = opts;
  return ok(
    new HfHub({
      ...rest,
      repo: m[1],
      endpoint: auth.value.endpoint,
      ...(auth.value.token !== undefined ? { token: auth.value.token } : {}),
      ...(auth.value.tokenSource !== undefined ? { tokenSource: auth.value.tokenSource } : {}),
    }),
  );
}

/** What the Hub's first answer says about the file: `X-Linked-Etag` (sha256) and `X-Linked-Size`. */
function linkedClaims(h: Headers): { sha256?: string; size?: number } {
  const etag = h.get('x-linked-etag')?.replace(/^W\//, '').replaceAll('"', '');
  const size = h.get('x-linked-size');
  return {
    // Only a sha256-shaped etag is an LFS oid; anything else (a git or xet hash) is not comparable.
    ...(etag !== undefined && isSha256(etag) ? { sha256: etag } : {}),
    ...(size !== null && /^\d+$/.test(size) ? { size: Number(size) } : {}),
  };
}

function contentRangeStart(h: Headers): number | undefined {
  const m = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(h.get('content-range') ?? '');
  return m?.[1] === undefined ? undefined : Number(m[1]);
}
