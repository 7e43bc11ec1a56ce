import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsStore } from '../../lib/io/stores/fs-store.js';
import type { ObjectKey } from '../../lib/model.js';
import { objectKey as k } from '../../lib/model.js';
import { testObjectStore } from './object-store.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const fsStoreModule = pathToFileURL(join(repoRoot, 'lib/io/stores/fs-store.ts')).href;
const hashKey = (key: string) => createHash('sha256').update(key).digest('hex').slice(0, 40);

async function freshDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'stackflow-fs-store-'));
}

testObjectStore('fs', async () => {
  const dir = await freshDir();
  return {
    store: new FsStore(join(dir, 'root')),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

/**
 * Starts `count` node processes that each open an FsStore on `root`, report ready, and on "go"
 * attempt one put of `key`; returns each child's outcome (`ok` or the failure reason).
 */
async function raceInProcesses(root: string, key: string, count: number, ifMatch?: string) {
  const script = `
    const { FsStore } = await import(process.env.SF_MODULE);
    const store = new FsStore(process.env.SF_ROOT);
    const opts = process.env.SF_IFMATCH ? { ifMatch: process.env.SF_IFMATCH } : { ifNoneMatch: '*' };
    process.stdin.once('data', async () => {
      const r = await store.put(process.env.SF_KEY, 'child ' + process.env.SF_TAG, opts);
      process.stdout.write((r.ok ? 'ok' : r.error.reason) + '\\n');
      process.exit(0);
    });
    process.stdout.write('ready\\n');`;
  const children = Array.from({ length: count }, (_, i) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        cwd: repoRoot,
        stdio: ['pipe', 'pipe', 'inherit'],
        env: {
          ...process.env,
          SF_MODULE: fsStoreModule,
          SF_ROOT: root,
          SF_KEY: key,
          SF_TAG: String(i),
          SF_IFMATCH: ifMatch ?? '',
        },
      },
    );
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    return { child, next: async () => String((await lines.next()).value) };
  });
  expect(await Promise.all(children.map((c) => c.next()))).toEqual(Array(count).fill('ready'));
  for (const { child } of children) child.stdin.write('go\n');
  return Promise.all(children.map((c) => c.next()));
}

describe('FsStore', () => {
  let dir: string;
  let root: string;
  let store: FsStore;
  beforeEach(async () => {
    dir = await freshDir();
    root = join(dir, 'root');
    store = new FsStore(root);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const text = async (key: string) => {
    const r = await store.get(k(key));
    return r.ok ? r.value.toString() : r.error.reason;
  };

  it('rejects keys that would escape the root or collide with its own files', async () => {
    const bad = [
      '../x',
      'a/../../x',
      '/abs',
      'a\\b',
      'a//b',
      'a/./b',
      'a/',
      '',
      'nul\0',
      '.tmp/x',
      '.locks/y',
    ];
    for (const key of bad as ObjectKey[]) {
      for (const r of [
        await store.put(key, 'x'),
        await store.get(key),
        await store.getStream(key),
        await store.head(key),
        await store.delete(key),
      ]) {
        expect(r.ok ? 'ok' : r.error.reason, JSON.stringify(key)).toBe('invalid-input');
      }
      expect(store.localPath(key)).toBeUndefined();
    }
    expect(await readdir(dir)).toEqual([]);
    expect(await store.list('../')).toEqual({ ok: true, value: { objects: [], prefixes: [] } });
  });

  it('creates the root lazily', async () => {
    expect((await store.get(k('a'))).ok).toBe(false);
    expect(await store.list('')).toEqual({ ok: true, value: { objects: [], prefixes: [] } });
    expect((await store.delete(k('a'))).ok).toBe(true);
    expect(await readdir(dir)).toEqual([]);
    expect((await store.put(k('a/b.txt'), 'hi')).ok).toBe(true);
    expect(await readFile(join(root, 'a', 'b.txt'), 'utf8')).toBe('hi');
    expect(store.url).toBe(`file://${root}`);
  });

  it('maps keys to files, and localPath names the file holding the bytes', async () => {
    await store.put(k('data/C++/x.parquet'), 'parquet bytes');
    expect(store.localPath(k('data/C++/x.parquet'))).toBe(join(root, 'data/C++/x.parquet'));
    await store.put(k('data'), 'an object that is also a prefix');
    expect(await readFile(store.localPath(k('data')) ?? '', 'utf8')).toBe(
      'an object that is also a prefix',
    );
    await store.delete(k('data/C++/x.parquet'));
    expect(await readdir(join(root, 'data'))).toEqual(['\\object']); // empty C++/ pruned
  });

  it('hides .tmp and .locks junk from listings, and sweeps temp files older than an hour', async () => {
    await mkdir(join(root, '.tmp'), { recursive: true });
    await mkdir(join(root, '.locks'), { recursive: true });
    await writeFile(join(root, '.tmp', 'old-junk'), 'x');
    await writeFile(join(root, '.tmp', 'new-junk'), 'x');
    await writeFile(join(root, '.locks', 'junk.lock'), 'x');
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    await utimes(join(root, '.tmp', 'old-junk'), twoHoursAgo, twoHoursAgo);
    await store.put(k('real'), 'x');
    const page = await store.list('');
    expect(page.ok && page.value.objects.map((o) => o.key)).toEqual(['real']);
    expect(page.ok && page.value.prefixes).toEqual([]);
    expect(await readdir(join(root, '.tmp'))).toEqual(['new-junk']);
  });

  it('breaks a lock left by a dead process or older than 30 s', async () => {
    await store.put(k('locked'), 'v1');
    const lock = (key: string) => join(root, '.locks', `${hashKey(key)}.lock`);
    await writeFile(lock('locked'), `999999999 ${hostname()}\n`);
    expect((await store.put(k('locked'), 'v2')).ok).toBe(true);
    await writeFile(lock('locked'), `1 some-other-host\n`);
    const old = new Date(Date.now() - 60_000);
    await utimes(lock('locked'), old, old);
    expect((await store.put(k('locked'), 'v3')).ok).toBe(true);
    expect(await text('locked')).toBe('v3');
    expect(await readdir(join(root, '.locks'))).toEqual([]);
  });

  it('stops waiting for a held lock when its signal aborts (instead of waiting 60 s)', async () => {
    const ac = new AbortController();
    const interruptible = new FsStore(root, { signal: ac.signal });
    expect((await interruptible.put(k('held'), 'v1')).ok).toBe(true);
    // A live owner on this host (this very process), fresh: not stale, so the put must wait.
    const lock = join(root, '.locks', `${hashKey('held')}.lock`);
    await writeFile(lock, `${String(process.pid)} ${hostname()}\n`);
    const started = Date.now();
    setTimeout(() => {
      ac.abort();
    }, 200);
    const r = await interruptible.put(k('held'), 'v2');
    expect(r.ok ? 'ok' : r.error).toMatchObject({
      reason: 'aborted',
      message: expect.stringMatching(/stopped waiting for its lock/) as unknown,
    });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await text('held')).toBe('v1');
    // The lock it waited for is not its own: left in place for its owner.
    expect(await readFile(lock, 'utf8')).toBe(`${String(process.pid)} ${hostname()}\n`);
    // Already aborted: fails at once.
    expect((await interruptible.put(k('held'), 'v3')).ok).toBe(false);
  });

  it('keeps an object readable after a crash mid-move, and a later process finishes the move', async () => {
    await store.put(k('p'), 'the object p');
    // What a kill -9 between the two renames of "p → aside → p/\object" leaves behind:
    const sidecar = join(root, '.tmp', `${hashKey('p')}.key`);
    await writeFile(sidecar, 'p');
    await rename(join(root, 'p'), join(root, '.tmp', `${hashKey('p')}.aside`));
    const old = new Date(Date.now() - 60_000);
    await utimes(sidecar, old, old);
    expect(await text('p')).toBe('the object p');
    const nextProcess = new FsStore(root);
    expect((await nextProcess.put(k('q'), 'any write')).ok).toBe(true);
    const page = await nextProcess.list('');
    expect(page.ok && page.value.objects.map((o) => o.key)).toEqual(['p', 'q']);
    expect(await readdir(join(root, '.tmp'))).toEqual([]);
    expect((await store.put(k('p/x'), 'below')).ok).toBe(true);
    expect(await text('p')).toBe('the object p');
    expect((await stat(join(root, 'p', '\\object'))).isFile()).toBe(true);
  });

  it('a kill -9 mid-write leaves the old or the new object, and no lock that blocks the next writer', async () => {
    const script = `
      const { FsStore } = await import(process.env.SF_MODULE);
      const store = new FsStore(process.env.SF_ROOT);
      for (let i = 0; ; i++) {
        await store.put(process.env.SF_KEY, Buffer.alloc(1 << 20, i % 2 ? 'b' : 'a'));
        if (i === 3) process.stdout.write('writing\\n');
      }`;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, SF_MODULE: fsStoreModule, SF_ROOT: root, SF_KEY: 'victim.bin' },
      },
    );
    await createInterface({ input: child.stdout })[Symbol.asyncIterator]().next();
    await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    const r = await store.get(k('victim.bin'));
    if (!r.ok) throw new Error(r.error.message);
    expect(r.value.length).toBe(1 << 20);
    expect(new Set(r.value).size).toBe(1);
    const page = await store.list('');
    expect(page.ok && page.value.objects.map((o) => o.key)).toEqual(['victim.bin']);
    const started = Date.now();
    expect((await store.put(k('victim.bin'), 'after the crash')).ok).toBe(true);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await text('victim.bin')).toBe('after the crash');
  });

  it('create-only is atomic across processes: 8 racers, one winner', async () => {
    const outcomes = await raceInProcesses(root, 'markers/once.json', 8);
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'precondition-failed')).toHaveLength(7);
    const winner = outcomes.indexOf('ok');
    expect(await text('markers/once.json')).toBe(`child ${winner}`);
  });

  it('replace-if-etag is atomic across processes: 8 racers, one winner', async () => {
    const base = await store.put(k('state.json'), 'base');
    if (!base.ok) throw new Error(base.error.message);
    const outcomes = await raceInProcesses(root, 'state.json', 8, base.value.etag);
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'precondition-failed')).toHaveLength(7);
    const winner = outcomes.indexOf('ok');
    expect(await text('state.json')).toBe(`child ${winner}`);
  });
});
