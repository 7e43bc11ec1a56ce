/**
 * HfHub against the loopback Hub (test/servers/hub): the HubSource contract, then what only a
 * remote source has: pagination, pinning, resumes, rate limits, retries, gating, secrets, hostile
 * listings, the download cap and the disk-space check.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Failure } from '../../lib/errors.js';
import type { HfHubOptions } from '../../lib/io/hub/hub-hf.js';
import { HfHub, openHfHub } from '../../lib/io/hub/hub-hf.js';
import type { RetryNotice } from '../../lib/util/retry.js';
import type { ManifestEntry } from '../../lib/model.js';
import type { HubServerHandle } from '../servers/hub/harness.js';
import { startHubServer } from '../servers/hub/harness.js';
import { failure, must, testHubSource } from './hub.js';

const sample = fileURLToPath(new URL('../../examples/sample/hf', import.meta.url));
const REPO = 'bigcode/the-stack-v2';

/** A port nothing listens on (fetch refuses "bad ports" such as 9 outright). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}
const TOKEN = 'hf_LoopbackSecretToken0123456789';

testHubSource('hf (loopback Hub)', async () => {
  const server = await startHubServer({ root: sample, repo: REPO, pageSize: 3 });
  const dir = await mkdtemp(join(tmpdir(), 'stackflow-hub-hf-'));
  const scratch = join(dir, 'scratch');
  await import('node:fs/promises').then((fs) => fs.mkdir(scratch));
  return {
    hub: new HfHub({
      repo: REPO,
      endpoint: server.endpoint,
      downloadsDir: join(dir, 'downloads'),
      retryBaseMs: 5,
    }),
    revision: server.sha,
    root: sample,
    scratch,
    cleanup: async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('HfHub against the loopback Hub', () => {
  let server: HubServerHandle;
  let dir: string;
  let downloads: string;
  let retries: RetryNotice[];
  const failures: Failure[] = [];

  /** A hub on the loopback server; every failure it returns is kept for the secrets check. */
  const makeHub = (o: Partial<HfHubOptions> = {}) =>
    new HfHub({
      repo: REPO,
      endpoint: server.endpoint,
      downloadsDir: downloads,
      retryBaseMs: 5,
      maxWaitMs: 3_000,
      onRetry: (r) => retries.push(r),
      ...o,
    });
  const entry = async (hub: HfHub, lang: string): Promise<ManifestEntry> => {
    const e = must(await hub.listFiles(lang, server.sha))[0];
    if (e === undefined) throw new Error(`no file in ${lang}`);
    return e;
  };
  const download = async (hub: HfHub, e: ManifestEntry, name = 'out.parquet') => {
    const r = await hub.download(e, server.sha, join(dir, name), {
      signal: new AbortController().signal,
    });
    if (!r.ok) failures.push(r.error);
    return r;
  };
  const fileBytes = (e: ManifestEntry) => readFile(join(sample, e.path));

  beforeEach(async () => {
    server = await startHubServer({ root: sample, repo: REPO, token: TOKEN, pageSize: 2 });
    dir = await mkdtemp(join(tmpdir(), 'stackflow-hub-hf-'));
    downloads = join(dir, 'downloads');
    retries = [];
  });
  afterEach(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('follows Link pagination (page size 2) and lists once per pinned sha', async () => {
    const hub = makeHub({ token: TOKEN });
    const langs = must(await hub.listLanguages(server.sha));
    expect(langs).toEqual(['C', 'C++', 'Graphviz_(DOT)', 'JavaScript', 'Python', 'Shell']);
    // 6 folders + 7 parquets = 13 entries → 7 pages of 2.
    const urls = server.stats().treeUrls;
    expect(urls).toHaveLength(7);
    expect(urls[0]).toBe(
      `/api/datasets/${REPO}/tree/${server.sha}/data?recursive=true&expand=false`,
    );
    expect(urls.slice(1).every((u) => u.includes('cursor='))).toBe(true);
    expect(must(await hub.listFiles('C++', server.sha))).toHaveLength(2);
    expect(must(await hub.listFiles('Python', server.sha))).toHaveLength(1);
    expect(server.stats().requests.tree).toBe(7);
  });

  it('pins: a branch is resolved once to its sha, and every request names the sha', async () => {
    const hub = makeHub({ token: TOKEN });
    expect(must(await hub.resolveRevision('main'))).toBe(server.sha);
    expect(must(await hub.resolveRevision('main'))).toBe(server.sha);
    expect(server.stats().requests.revision).toBe(1);
    const old = await entry(hub, 'Shell');
    // A takedown moves main: Shell's parquet changes, C disappears.
    const files = new Map<string, Buffer>();
    for (const lang of ['C++', 'Shell']) {
      for (const n of await readdir(join(sample, 'data', lang))) {
        files.set(`data/${lang}/${n}`, await readFile(join(sample, 'data', lang, n)));
      }
    }
    files.set(old.path, Buffer.from('taken down'));
    const next = await server.setFiles(files);
    expect(next).not.toBe(server.sha);
    // The same hub keeps main → the first sha; the old commit stays readable by sha.
    expect(must(await hub.listLanguages('main'))).toContain('C');
    expect(server.stats().treeUrls.every((u) => u.includes(`/tree/${server.sha}/`))).toBe(true);
    // Asking for `main` still downloads the pinned bytes (the new main has other bytes there).
    const viaMain = await hub.download(old, 'main', join(dir, 'old.parquet'), {
      signal: new AbortController().signal,
    });
    expect(must(viaMain)).toEqual({ size: old.size, sha256: old.sha256 });
    expect(server.stats().requests.revision).toBe(1);
    // A new hub sees the new main.
    const fresh = makeHub();
    expect(must(await fresh.resolveRevision('main'))).toBe(next);
    expect(must(await fresh.listLanguages('main'))).toEqual(['C++', 'Shell']);
    expect(failure(await fresh.resolveRevision('no-such-branch'))).toMatchObject({
      reason: 'not-found',
    });
  });

  it('a reset mid-body resumes with Range from its offset: one file of bytes, not two', async () => {
    const hub = makeHub({ token: TOKEN });
    const e = await entry(hub, 'C');
    server.resetStats();
    server.setFaults({ rules: [{ kind: 'cdn', fault: 'reset', first: 1 }] });
    must(await download(hub, e));
    expect((await readFile(join(dir, 'out.parquet'))).equals(await fileBytes(e))).toBe(true);
    const st = server.stats();
    // The server sent half, then reset. A reset drops whatever the client had not read yet
    // (more of it on a loaded machine), so the resume starts where the client's bytes end:
    // somewhere in the first half, and only the bytes it lacked are sent again.
    expect(st.ranges).toHaveLength(1);
    const offset = st.ranges[0]?.offset ?? 0;
    expect(st.ranges[0]?.path).toBe(e.path);
    expect(offset).toBeGreaterThan(0);
    expect(offset).toBeLessThanOrEqual(e.size >> 1);
    expect(st.bytesServed).toBe((e.size >> 1) + (e.size - offset));
    expect(retries).toHaveLength(1);
    expect(retries[0]?.reason).toMatch(/ECONNRESET|UND_ERR_SOCKET/);
    expect(retries[0]?.what).toBe(
      `GET ${server.endpoint}/datasets/${REPO}/resolve/${server.sha}/${e.path}`,
    );
    expect(await readdir(downloads)).toEqual([]);
  });

  it('resumes a .part left by a killed process, hashing its bytes first', async () => {
    const hub = makeHub({ token: TOKEN });
    const e = await entry(hub, 'Python');
    const bytes = await fileBytes(e);
    await import('node:fs/promises').then((fs) => fs.mkdir(downloads, { recursive: true }));
    await writeFile(join(downloads, `${e.sha256}.part`), bytes.subarray(0, 50_000));
    server.resetStats();
    must(await download(hub, e));
    expect(server.stats().ranges).toEqual([{ path: e.path, offset: 50_000 }]);
    expect(server.stats().bytesServed).toBe(e.size - 50_000);
    expect((await readFile(join(dir, 'out.parquet'))).equals(bytes)).toBe(true);
  });

  it('a .part with bad bytes from an earlier run is detected and downloaded afresh', async () => {
    const hub = makeHub({ token: TOKEN });
    const e = await entry(hub, 'Shell');
    await import('node:fs/promises').then((fs) => fs.mkdir(downloads, { recursive: true }));
    await writeFile(join(downloads, `${e.sha256}.part`), Buffer.alloc(1000, 7));
    must(await download(hub, e));
    expect((await readFile(join(dir, 'out.parquet'))).equals(await fileBytes(e))).toBe(true);
    expect(await readdir(downloads)).toEqual([]);
  });

  it('429 with RateLimit t=1 waits about a second, then succeeds', async () => {
    const hub = makeHub({ token: TOKEN });
    const e = await entry(hub, 'Graphviz_(DOT)');
    server.setFaults({
      rules: [{ kind: 'resolve', fault: 'rate-limit', first: 1, resetSeconds: 1 }],
    });
    const started = Date.now();
    must(await download(hub, e));
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(server.stats().rateLimited).toBe(1);
    expect(retries).toEqual([
      {
        attempt: 1,
        reason: 'HTTP 429 (rate limited)',
        waitMs: 1000,
        what: `GET ${server.endpoint}/datasets/${REPO}/resolve/${server.sha}/data/Graphviz_(DOT)/train-00000-of-00001.parquet`,
      },
    ]);
  });

  it('503 is retried a bounded number of times, then fails as transient', async () => {
    const hub = makeHub({ token: TOKEN, retries: 2 });
    const e = await entry(hub, 'C');
    server.resetStats();
    server.setFaults({ rules: [{ kind: 'resolve', fault: 'unavailable', first: 100 }] });
    const f = failure(await download(hub, e));
    expect(f.reason).toBe('transient');
    expect(f.message).toContain('HTTP 503');
    expect(server.stats().requests.resolve).toBe(3);
    expect(retries.map((r) => r.reason)).toEqual(['HTTP 503', 'HTTP 503']);
    expect(existsSync(join(dir, 'out.parquet'))).toBe(false);
  });

  it('a truncated body is detected: resumed once, and after the bound a transient failure', async () => {
    const hub = makeHub({ token: TOKEN, retries: 2 });
    const e = await entry(hub, 'JavaScript');
    server.setFaults({ rules: [{ kind: 'cdn', fault: 'truncate', first: 1 }] });
    must(await download(hub, e));
    expect((await readFile(join(dir, 'out.parquet'))).equals(await fileBytes(e))).toBe(true);

    retries = [];
    server.setFaults({ rules: [{ kind: 'cdn', fault: 'truncate', first: 100 }] });
    const f = failure(await download(hub, e, 'again.parquet'));
    expect(f.reason).toBe('transient');
    expect(f.message).toContain('kept breaking');
    expect(existsSync(join(dir, 'again.parquet'))).toBe(false);
    // The bytes that did arrive are kept for the next attempt.
    expect(await readdir(downloads)).toEqual([`${e.sha256}.part`]);
  });

  it('an abort mid-download is `aborted`, keeps the .part, and a later call resumes it', async () => {
    const hub = makeHub({ token: TOKEN });
    const e = await entry(hub, 'C');
    const ac = new AbortController();
    let got = 0;
    const r = await hub.download(e, server.sha, join(dir, 'out.parquet'), {
      signal: ac.signal,
      onBytes: (n) => {
        got += n;
        if (got > 0) ac.abort();
      },
    });
    expect(failure(r).reason).toBe('aborted');
    expect(existsSync(join(dir, 'out.parquet'))).toBe(false);
    expect(await readdir(downloads)).toEqual([`${e.sha256}.part`]);
    server.resetStats();
    must(await download(hub, e));
    expect(server.stats().ranges).toEqual([{ path: e.path, offset: got }]);
  });

  it('corrupted bytes are checksum-mismatch: no dest, no .part', async () => {
    const hub = makeHub({ token: TOKEN });
    const e = await entry(hub, 'C++');
    server.setFaults({ corrupt: [e.path] });
    const f = failure(await download(hub, e));
    expect(f).toMatchObject({ reason: 'checksum-mismatch', key: e.path });
    expect(f.message).toContain(e.sha256);
    expect(existsSync(join(dir, 'out.parquet'))).toBe(false);
    expect(await readdir(downloads)).toEqual([]);
  });

  it('gated without a token: a fast how-to failure and zero retries; listing still works', async () => {
    const hub = makeHub();
    const e = await entry(hub, 'C');
    server.resetStats();
    const f = failure(await download(hub, e));
    expect(f.reason).toBe('invalid-input');
    expect(f.message).toContain(`https://huggingface.co/datasets/${REPO}`);
    expect(f.message).toContain('HF_TOKEN');
    expect(f.message).toContain('huggingface-cli login');
    expect(f.message).toContain('No token was sent');
    expect(retries).toEqual([]);
    expect(server.stats().requests).toMatchObject({ resolve: 1, cdn: 0 });
  });

  it('gated with the token works, and the token never reaches the CDN', async () => {
    const hub = makeHub({ token: TOKEN });
    const e = await entry(hub, 'C');
    must(await download(hub, e));
    expect(server.stats().authOnCdn).toBe(0);
  });

  it('a refused token is named by its source, never by its value; no secret in any failure', async () => {
    const wrong = 'hf_WrongButStillSecret42';
    const hub = makeHub({ token: wrong, tokenSource: 'HF_TOKEN' });
    const e = await entry(hub, 'C');
    const f = failure(await download(hub, e));
    expect(f.message).toContain('A token was sent (from HF_TOKEN)');
    expect(f.message).toContain('HTTP 403');
    // A sweep of failure kinds with the right token, then every failure and retry is scanned.
    const good = makeHub({ token: TOKEN, retries: 1 });
    server.setFaults({ rules: [{ kind: 'resolve', fault: 'unavailable', first: 2 }] });
    await download(good, e);
    server.setFaults({ rules: [{ kind: 'cdn', fault: 'reset', first: 100 }] });
    await download(good, e);
    server.setFaults({ corrupt: [e.path] });
    await download(good, e);
    server.setFaults({});
    await download(good, { ...e, path: 'data/C/missing.parquet' });
    const offline = new HfHub({
      repo: REPO,
      endpoint: `http://127.0.0.1:${await closedPort()}`,
      token: TOKEN,
      downloadsDir: downloads,
      retries: 1,
      retryBaseMs: 1,
      onRetry: (r) => retries.push(r),
    });
    const r = await offline.listLanguages('main');
    if (!r.ok) failures.push(r.error);
    expect(failure(r)).toMatchObject({ reason: 'network-unreachable' });
    expect(failure(r).message).toContain('ECONNREFUSED');
    expect(failures.length).toBeGreaterThanOrEqual(6);
    expect(retries.length).toBeGreaterThan(0);
    for (const secret of [TOKEN, wrong, server.signature]) {
      expect(JSON.stringify(failures)).not.toContain(secret);
      expect(JSON.stringify(retries)).not.toContain(secret);
    }
  });

  it('rejects hostile names in a listing, naming the bad path', async () => {
    for (const bad of [
      'data/../evil.parquet',
      'data/..',
      'data/x\\y/a.parquet',
      '/etc/x.parquet',
      'data/C/\u0007bell.parquet',
      'data/ C/x.parquet',
    ]) {
      server.setFaults({ hostileNames: [bad] });
      const f = failure(await makeHub().listLanguages(server.sha));
      expect(f.reason, bad).toBe('invalid-input');
      expect(f.message).toContain(JSON.stringify(bad));
    }
  });

  it('caps concurrent downloads', async () => {
    const hub = makeHub({ token: TOKEN, maxConcurrentDownloads: 2 });
    const all = (
      await Promise.all(
        must(await hub.listLanguages(server.sha)).map((l) => hub.listFiles(l, server.sha)),
      )
    ).flatMap((r) => must(r));
    expect(all).toHaveLength(7);
    server.setFaults({ cdnDelayMs: 50 });
    const results = await Promise.all(all.map((e, i) => download(hub, e, `f${i}.parquet`)));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(server.stats().maxConcurrentDownloads).toBe(2);
  });

  it('fails early when the disk cannot hold the file, giving both numbers', async () => {
    const hub = makeHub({
      token: TOKEN,
      statfs: () => Promise.resolve({ bavail: 10, bsize: 4096 }),
    });
    const e = await entry(hub, 'Python');
    server.resetStats();
    const f = failure(await download(hub, e));
    expect(f.reason).toBe('invalid-input');
    expect(f.message).toContain(
      `needs 0.00 GB, only 0.00 GB free (${e.size} bytes needed, 40960 available)`,
    );
    expect(server.stats().requests.resolve).toBe(0);
  });

  it('an unusable downloads dir is a failure value naming the problem', async () => {
    await writeFile(join(dir, 'a-file'), 'x');
    const hub = makeHub({ token: TOKEN, downloadsDir: join(dir, 'a-file', 'downloads') });
    const f = failure(await download(hub, await entry(hub, 'C')));
    expect(f.reason).toBe('invalid-input');
    expect(f.message).toContain('ENOTDIR');
  });

  it('counts the bytes reserved by downloads in flight', async () => {
    // Room for one of the two ~170 kB files, not both.
    const hub = makeHub({
      token: TOKEN,
      statfs: () => Promise.resolve({ bavail: 60, bsize: 4096 }),
    });
    const c = await entry(hub, 'C');
    const py = await entry(hub, 'Python');
    const [a, b] = await Promise.all([
      download(hub, c, 'c.parquet'),
      download(hub, py, 'py.parquet'),
    ]);
    expect([a.ok, b.ok].sort()).toEqual([false, true]);
    const f = failure(a.ok ? b : a);
    expect(f.message).toContain('reserved by downloads in flight');
  });

  it('a listed parquet without LFS info is an error naming it', async () => {
    server.setFaults({ hostileNames: [] });
    const files = new Map([['data/Go/train-00000-of-00001.parquet', Buffer.from('x')]]);
    await server.setFiles(files);
    // Simulate a non-LFS entry by listing it through a fetch that strips `lfs`.
    const strip: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (typeof input !== 'string' || !input.includes('/tree/')) return res;
      const body = ((await res.json()) as Record<string, unknown>[]).map(
        ({ lfs: _lfs, ...rest }) => rest,
      );
      return new Response(JSON.stringify(body), { status: res.status, headers: res.headers });
    };
    const f = failure(await makeHub({ fetch: strip }).listFiles('Go', 'main'));
    expect(f.reason).toBe('invalid-input');
    expect(f.message).toContain('data/Go/train-00000-of-00001.parquet');
    expect(f.message).toContain('without an LFS sha256');
  });

  it('not-found carries what was missing: repo, revision, entry', async () => {
    const other = new HfHub({
      repo: 'bigcode/nope',
      endpoint: server.endpoint,
      downloadsDir: downloads,
    });
    expect(failure(await other.resolveRevision('main'))).toMatchObject({
      reason: 'not-found',
      key: 'bigcode/nope',
    });
    expect(failure(await makeHub().listLanguages('v9'))).toMatchObject({ reason: 'not-found' });
    const hub = makeHub({ token: TOKEN });
    const e = await entry(hub, 'C');
    const f = failure(await download(hub, { ...e, path: 'data/C/gone.parquet' }));
    expect(f).toMatchObject({ reason: 'not-found', key: 'data/C/gone.parquet' });
  });

  it('openHfHub reads the URL and HF_* from env', async () => {
    const bad = openHfHub('hf://models/x/y', {}, { downloadsDir: downloads });
    expect(failure(bad).message).toContain('hf://datasets/<owner>/<name>');
    const hub = must(
      openHfHub(
        `hf://datasets/${REPO}`,
        { HF_TOKEN: ` ${TOKEN}\n`, HF_ENDPOINT: `${server.endpoint}/` },
        { downloadsDir: downloads, retryBaseMs: 5 },
      ),
    );
    expect(hub.url).toBe(`hf://datasets/${REPO}`);
    const e = must(await hub.listFiles('Shell', 'main'))[0];
    if (e === undefined) throw new Error('no Shell file');
    must(
      await hub.download(e, 'main', join(dir, 'x.parquet'), {
        signal: new AbortController().signal,
      }),
    );
    expect(
      createHash('sha256')
        .update(await readFile(join(dir, 'x.parquet')))
        .digest('hex'),
    ).toBe(e.sha256);
  });
});
