/**
 * A loopback Hugging Face Hub for tests: speaks the parts of the Hub HTTP API that stackflow and
 * @huggingface/hub use (DOMAIN.md §4), for one dataset repo held in memory, plus a "CDN" on a
 * second port (so the resolve redirect is cross-origin, as on huggingface.co), with injectable
 * faults and request statistics. Faked at the protocol, not the SDK (STYLE R8).
 *
 *   GET  /api/datasets/{repo}/revision/{rev}            → {id, sha, …}
 *   GET  /api/datasets/{repo}/tree/{rev}/{path}?recursive=&expand=&cursor=
 *                                                       → [{type, path, size, oid, lfs?}], Link: next
 *   GET|HEAD /datasets/{repo}/resolve/{rev}/{path}      → 302 to the CDN, X-Repo-Commit,
 *                                                         X-Linked-Etag, X-Linked-Size, ETag
 *   GET  (cdn) /cdn/{sha256}?path=…&X-Amz-Signature=…   → bytes, Range → 206 + Content-Range
 *   errors: 404 + X-Error-Code RepoNotFound / RevisionNotFound / EntryNotFound;
 *           gated (a token configured): /resolve/ without it → 401, with another → 403 (GatedRepo)
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

/** Which API a request hit. */
export type RequestKind = 'revision' | 'tree' | 'resolve' | 'cdn';
export const REQUEST_KINDS: readonly RequestKind[] = ['revision', 'tree', 'resolve', 'cdn'];

/** One fault: what to break, on which requests. */
export interface FaultRule {
  kind: RequestKind;
  /**
   * rate-limit: 429 with `RateLimit: "api";r=0;t=<resetSeconds>` and `RateLimit-Policy`.
   * unavailable: 503. reset: half the body, then a TCP reset. truncate: half the body (with the
   * full Content-Length declared), then a clean close. Before headers for non-CDN kinds.
   */
  fault: 'rate-limit' | 'unavailable' | 'reset' | 'truncate';
  /** Only the first N matching requests after setFaults. */
  first?: number;
  /** Else: the probability per matching request (seeded by Faults.seed). */
  rate?: number;
  /** Only requests for this repo path (resolve, cdn). */
  path?: string;
  /** rate-limit: the `t` of RateLimit, in seconds (default 1). */
  resetSeconds?: number;
  /** rate-limit: also send `Retry-After` with this value. */
  retryAfter?: string;
}

export interface Faults {
  rules?: FaultRule[];
  /** Repo paths whose bytes the CDN serves corrupted (one byte flipped; headers stay honest). */
  corrupt?: string[];
  /** Paths injected at the top of every tree listing, as LFS files (or dirs when ending in `..`). */
  hostileNames?: string[];
  /** Delay before each CDN response, ms (makes downloads overlap for concurrency checks). */
  cdnDelayMs?: number;
  /** Seed for `rate` rules. */
  seed?: number;
}

export interface HubStats {
  requests: Record<RequestKind, number>;
  /** CDN requests that carried a Range header: repo path and first byte. */
  ranges: { path: string; offset: number }[];
  /** 429s sent. */
  rateLimited: number;
  /** Body bytes the CDN wrote. */
  bytesServed: number;
  /** Most CDN responses in flight at once. */
  maxConcurrentDownloads: number;
  /** CDN requests carrying an Authorization header (the token must never reach the CDN). */
  authOnCdn: number;
  /** Paths of tree requests, with their query (pagination checks). */
  treeUrls: string[];
}

export interface HubServerOptions {
  /** A directory shaped like the repo (`data/<Language>/*.parquet`). */
  root: string;
  /** `owner/name`. */
  repo: string;
  /** Extra branch or tag names that resolve to the initial commit (`main` always exists). */
  revisions?: string[];
  /** Tree entries per page (default 1000). */
  pageSize?: number;
  /** Gated mode: /resolve/ requires `Authorization: Bearer <token>`. */
  token?: string;
}

interface StoredFile {
  bytes: Buffer;
  sha256: string;
  /** A git-blob-like oid (sha1), as the Hub lists it. */
  oid: string;
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const sha1 = (b: Buffer | string) => createHash('sha1').update(b).digest('hex');

/** mulberry32: a tiny seeded PRNG, so `rate` faults are reproducible. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function readTree(root: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const abs = join(e.parentPath, e.name);
    out.set(relative(root, abs).split(sep).join('/'), await readFile(abs));
  }
  return out;
}

export class HubServer {
  readonly hub: Server;
  readonly cdn: Server;
  private commits = new Map<string, Map<string, StoredFile>>();
  private refs = new Map<string, string>();
  private blobs = new Map<string, Buffer>();
  private faults: Faults = {};
  private ruleHits: number[] = [];
  private random = seeded(1);
  private inFlight = 0;
  private s: HubStats = emptyStats();
  /** The signature the CDN URLs carry: a secret that must never show up in messages. */
  readonly signature = randomBytes(12).toString('hex');

  constructor(private readonly o: HubServerOptions) {
    this.hub = createServer((req, res) => {
      this.handleHub(req, res);
    });
    this.cdn = createServer((req, res) => {
      this.handleCdn(req, res);
    });
  }

  async listen(): Promise<{ endpoint: string; cdn: string }> {
    const on = (srv: Server) =>
      new Promise<number>((resolve) => {
        srv.listen(0, '127.0.0.1', () => {
          resolve((srv.address() as AddressInfo).port);
        });
      });
    const [hubPort, cdnPort] = await Promise.all([on(this.hub), on(this.cdn)]);
    return { endpoint: `http://127.0.0.1:${hubPort}`, cdn: `http://127.0.0.1:${cdnPort}` };
  }

  async close(): Promise<void> {
    for (const srv of [this.hub, this.cdn]) {
      srv.closeAllConnections();
      await new Promise((r) => srv.close(r));
    }
  }

  /** Makes `files` a new commit and points `main` at it; older commits stay reachable by sha. */
  commit(files: Map<string, Buffer>): string {
    const stored = new Map<string, StoredFile>();
    const lines: string[] = [this.o.repo];
    for (const [path, bytes] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const f = {
        bytes,
        sha256: sha256(bytes),
        oid: sha1(`blob ${bytes.length}\0${sha256(bytes)}`),
      };
      stored.set(path, f);
      this.blobs.set(f.sha256, bytes);
      lines.push(`${path} ${f.sha256}`);
    }
    const sha = sha1(lines.join('\n'));
    this.commits.set(sha, stored);
    if (!this.refs.has('main')) for (const name of this.o.revisions ?? []) this.refs.set(name, sha);
    this.refs.set('main', sha);
    return sha;
  }

  setFaults(f: Faults): void {
    this.faults = f;
    this.ruleHits = (f.rules ?? []).map(() => 0);
    this.random = seeded(f.seed ?? 1);
  }

  stats(): HubStats {
    return structuredClone(this.s);
  }

  resetStats(): void {
    this.s = emptyStats();
  }

  /** The first rule that fires for this request, counting it. */
  private fault(kind: RequestKind, path: string | undefined): FaultRule | undefined {
    const rules = this.faults.rules ?? [];
    for (const [i, r] of rules.entries()) {
      if (r.kind !== kind || (r.path !== undefined && r.path !== path)) continue;
      const hit = (this.ruleHits[i] ?? 0) + 1;
      this.ruleHits[i] = hit;
      if (r.first !== undefined ? hit <= r.first : this.random() < (r.rate ?? 0)) return r;
    }
    return undefined;
  }

  /** Answers a rate-limit or 503 fault; true when it did. */
  private statusFault(res: ServerResponse, f: FaultRule | undefined): boolean {
    if (f?.fault === 'rate-limit') {
      this.s.rateLimited++;
      res.writeHead(429, {
        'content-type': 'application/json',
        RateLimit: `"api";r=0;t=${f.resetSeconds ?? 1}`,
        'RateLimit-Policy': '"fixed window";"api";q=500;w=300',
        ...(f.retryAfter !== undefined ? { 'Retry-After': f.retryAfter } : {}),
      });
      res.end(JSON.stringify({ error: 'You have exceeded the rate limit' }));
      return true;
    }
    if (f?.fault === 'unavailable') {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('Service Unavailable');
      return true;
    }
    if (f !== undefined) {
      // reset / truncate before any header: the connection just dies.
      res.socket?.resetAndDestroy();
      return true;
    }
    return false;
  }

  private handleHub(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`);
    const api = /^\/api\/datasets\/([^/]+\/[^/]+)\/(revision|tree)\/([^/]+)(?:\/(.*))?$/.exec(
      url.pathname,
    );
    const resolve = /^\/datasets\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const m = api ?? resolve;
    if (m?.[1] === undefined) {
      notFound(res, 'RepoNotFound', 'Not found');
      return;
    }
    const kind: RequestKind = api ? (api[2] as 'revision' | 'tree') : 'resolve';
    this.s.requests[kind]++;
    const rev = decodeURIComponent((api ? api[3] : resolve?.[2]) ?? '');
    const rawPath = api ? api[4] : resolve?.[3];
    const path = (rawPath ?? '').split('/').map(decodeURIComponent).join('/');
    if (kind === 'tree') this.s.treeUrls.push(`${url.pathname}${url.search}`);
    if (this.statusFault(res, this.fault(kind, path))) return;
    if (m[1] !== this.o.repo) {
      notFound(res, 'RepoNotFound', 'Repository not found');
      return;
    }
    const sha = this.commits.has(rev) ? rev : this.refs.get(rev);
    const files = sha === undefined ? undefined : this.commits.get(sha);
    if (sha === undefined || files === undefined) {
      notFound(res, 'RevisionNotFound', `Invalid rev id: ${rev}`);
      return;
    }
    if (kind === 'revision') {
      json(res, 200, {
        _id: sha1(this.o.repo).slice(0, 24),
        id: this.o.repo,
        sha,
        private: false,
        gated: this.o.token !== undefined ? 'auto' : false,
        siblings: [...files.keys()].map((rfilename) => ({ rfilename })),
      });
      return;
    }
    if (kind === 'tree') {
      this.tree(url, res, files, path);
      return;
    }
    if (this.o.token !== undefined) {
      const auth = req.headers.authorization;
      if (auth !== `Bearer ${this.o.token}`) {
        res.writeHead(auth === undefined ? 401 : 403, {
          'content-type': 'application/json',
          'X-Error-Code': 'GatedRepo',
          'X-Error-Message': `Access to dataset ${this.o.repo} is restricted.`,
        });
        res.end(JSON.stringify({ error: `Access to dataset ${this.o.repo} is restricted.` }));
        return;
      }
    }
    const f = files.get(path);
    if (f === undefined) {
      notFound(res, 'EntryNotFound', `${path} does not exist`);
      return;
    }
    const cdnPort = (this.cdn.address() as AddressInfo).port;
    res.writeHead(302, {
      Location: `http://127.0.0.1:${cdnPort}/cdn/${f.sha256}?path=${encodeURIComponent(path)}&X-Amz-Signature=${this.signature}`,
      'X-Repo-Commit': sha,
      'X-Linked-Etag': `"${f.sha256}"`,
      'X-Linked-Size': String(f.bytes.length),
      ETag: `"${f.oid}"`,
      'Content-Length': '0',
    });
    res.end();
  }

  private tree(url: URL, res: ServerResponse, files: Map<string, StoredFile>, path: string): void {
    const recursive = url.searchParams.get('recursive') === 'true';
    const prefix = path === '' ? '' : `${path}/`;
    const dirs = new Set<string>();
    for (const p of files.keys()) {
      const parts = p.split('/');
      for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
    }
    if (path !== '' && !dirs.has(path) && !files.has(path)) {
      notFound(res, 'EntryNotFound', `${path} does not exist`);
      return;
    }
    const under = (p: string) =>
      p.startsWith(prefix) && (recursive || !p.slice(prefix.length).includes('/'));
    const entries: unknown[] = (this.faults.hostileNames ?? []).map((p) =>
      p.endsWith('..')
        ? { type: 'directory', oid: sha1(p), size: 0, path: p }
        : {
            type: 'file',
            oid: sha1(p),
            size: 5,
            path: p,
            lfs: { oid: sha256(p), size: 5, pointerSize: 128 },
          },
    );
    const all = [...[...dirs].filter(under), ...[...files.keys()].filter(under)].sort();
    for (const p of all) {
      const f = files.get(p);
      entries.push(
        f === undefined
          ? { type: 'directory', oid: sha1(p), size: 0, path: p }
          : {
              type: 'file',
              oid: f.oid,
              size: f.bytes.length,
              path: p,
              lfs: { oid: f.sha256, size: f.bytes.length, pointerSize: 134 },
            },
      );
    }
    const pageSize = this.o.pageSize ?? 1000;
    const cursor = url.searchParams.get('cursor');
    const start = cursor === null ? 0 : Number(Buffer.from(cursor, 'base64url').toString());
    const page = entries.slice(start, start + pageSize);
    const headers: Record<string, string> = {};
    if (start + pageSize < entries.length) {
      const next = new URL(url);
      next.searchParams.set('cursor', Buffer.from(String(start + pageSize)).toString('base64url'));
      headers.Link = `<${next.href}>; rel="next"`;
    }
    json(res, 200, page, headers);
  }

  private handleCdn(req: IncomingMessage, res: ServerResponse): void {
    this.s.requests.cdn++;
    if (req.headers.authorization !== undefined) this.s.authOnCdn++;
    const url = new URL(req.url ?? '/', 'http://cdn');
    const m = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    const path = url.searchParams.get('path') ?? '';
    let bytes = m?.[1] === undefined ? undefined : this.blobs.get(m[1]);
    if (bytes === undefined || url.searchParams.get('X-Amz-Signature') !== this.signature) {
      res.writeHead(403, { 'content-type': 'text/plain' });
      res.end('AccessDenied');
      return;
    }
    if (this.faults.corrupt?.includes(path) === true) {
      bytes = Buffer.from(bytes);
      const at = bytes.length >> 1;
      bytes[at] = (bytes[at] ?? 0) ^ 0xff;
    }
    this.inFlight++;
    this.s.maxConcurrentDownloads = Math.max(this.s.maxConcurrentDownloads, this.inFlight);
    res.once('close', () => {
      this.inFlight--;
    });
    const body = bytes;
    const go = () => {
      this.serveBytes(req, res, body, path);
    };
    const delay = this.faults.cdnDelayMs ?? 0;
    if (delay > 0) setTimeout(go, delay);
    else go();
  }

  private serveBytes(req: IncomingMessage, res: ServerResponse, bytes: Buffer, path: string): void {
    const f = this.fault('cdn', path);
    if (f?.fault === 'rate-limit' || f?.fault === 'unavailable') {
      this.statusFault(res, f);
      return;
    }
    const size = bytes.length;
    let start = 0;
    let end = size - 1;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const headers: Record<string, string> = {
      'Accept-Ranges': 'bytes',
      'Content-Type': 'application/octet-stream',
      ETag: `"${sha256(bytes)}"`,
    };
    if (range?.[1] !== undefined) {
      start = Number(range[1]);
      if (range[2] !== undefined && range[2] !== '') end = Math.min(end, Number(range[2]));
      this.s.ranges.push({ path, offset: start });
      if (start >= size) {
        res.writeHead(416, { 'Content-Range': `bytes */${size}` });
        res.end();
        return;
      }
      headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    }
    const slice = bytes.subarray(start, end + 1);
    res.writeHead(range ? 206 : 200, { ...headers, 'Content-Length': String(slice.length) });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    if (f?.fault === 'reset' || f?.fault === 'truncate') {
      const half = slice.subarray(0, slice.length >> 1);
      this.s.bytesServed += half.length;
      res.write(half, () => {
        // Give the bytes time to leave before the connection dies, so the client sees them
        // (a reset drops what the client has not read yet).
        setTimeout(() => {
          if (f.fault === 'reset') res.socket?.resetAndDestroy();
          else res.socket?.end();
        }, 100);
      });
      return;
    }
    this.s.bytesServed += slice.length;
    res.end(slice);
  }
}

function emptyStats(): HubStats {
  return {
    requests: { revision: 0, tree: 0, resolve: 0, cdn: 0 },
    ranges: [],
    rateLimited: 0,
    bytesServed: 0,
    maxConcurrentDownloads: 0,
    authOnCdn: 0,
    treeUrls: [],
  };
}

function json(res: ServerResponse, status: number, body: unknown, headers = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function notFound(res: ServerResponse, code: string, message: string): void {
  res.writeHead(404, {
    'content-type': 'application/json',
    'X-Error-Code': code,
    'X-Error-Message': message,
  });
  res.end(JSON.stringify({ error: message }));
}
