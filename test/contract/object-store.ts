/**
 * The ObjectStore contract: one suite every implementation must pass (memory, fs, later S3), so
 * that a store is "only another implementation". Each test gets a fresh, empty store.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Failure, Result } from '../../lib/errors.js';
import type { ListOptions, ObjectStore } from '../../lib/io/stores/object-store.js';
import {
  CLOCK_PREFIX,
  forEachKey,
  readStoreClock,
  storeNow,
} from '../../lib/io/stores/object-store.js';
import { objectKey as k } from '../../lib/model.js';

/** Builds a fresh store for one test, and what removes it afterwards. */
export type MakeStore = () => Promise<{ store: ObjectStore; cleanup: () => Promise<void> }>;

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

function must<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(`expected ok, got ${r.error.reason}: ${r.error.message}`);
  return r.value;
}

function failure(r: Result<unknown>): Failure {
  if (r.ok) throw new Error('expected a failure, got ok');
  return r.error;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Runs `fn` over `items`, `width` at a time. */
async function inBatches<T>(items: T[], width: number, fn: (t: T) => Promise<unknown>) {
  for (let i = 0; i < items.length; i += width)
    await Promise.all(items.slice(i, i + width).map(fn));
}

/** Every page of a listing, flattened, with the number of list calls it took. */
async function listEverything(store: ObjectStore, prefix: string, opts: ListOptions = {}) {
  const keys: string[] = [];
  const prefixes: string[] = [];
  const sizes: number[] = [];
  let pageToken: string | undefined;
  do {
    const page = must(await store.list(prefix, { ...opts, ...(pageToken ? { pageToken } : {}) }));
    keys.push(...page.objects.map((o) => o.key));
    prefixes.push(...page.prefixes);
    sizes.push(page.objects.length + page.prefixes.length);
    pageToken = page.nextToken;
  } while (pageToken !== undefined);
  return { keys, prefixes, sizes };
}

const byteOrder = (keys: string[]) =>
  [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

/** `forEachKey` (the store's `listKeys` where it has one), collected. */
async function allKeys(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  const r = await forEachKey(store, prefix, (key) => out.push(key));
  if (!r.ok) throw new Error(r.error.message);
  return out;
}

/** Registers the contract suite for one ObjectStore implementation. */
export function testObjectStore(name: string, make: MakeStore): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let store: ObjectStore;
    let cleanup: () => Promise<void>;
    beforeEach(async () => {
      ({ store, cleanup } = await make());
    });
    afterEach(async () => {
      await cleanup();
    });

    const text = async (key: string) => must(await store.get(k(key))).toString('utf8');

    it('round-trips every body kind, with the sha256 of what was written', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'stackflow-body-'));
      try {
        const fileBytes = randomBytes(300_000);
        await writeFile(join(dir, 'src.bin'), fileBytes);
        const bodies = {
          'body/string': ['héllo wörld ✓\n', Buffer.from('héllo wörld ✓\n', 'utf8')],
          'body/bytes': [new Uint8Array([1, 2, 3]), Buffer.from([1, 2, 3])],
          'body/stream': [
            Readable.from([Buffer.from('ab'), Buffer.from('cd')]),
            Buffer.from('abcd'),
          ],
          'body/file': [{ file: join(dir, 'src.bin') }, fileBytes],
          'body/empty': ['', Buffer.alloc(0)],
        } as const;
        for (const [key, [body, expected]] of Object.entries(bodies)) {
          const info = must(await store.put(k(key), body));
          expect(info).toMatchObject({ key, size: expected.length, sha256: sha(expected) });
          expect(must(await store.get(k(key))).equals(expected)).toBe(true);
          const head = must(await store.head(k(key)));
          expect(head).toMatchObject({ key, size: expected.length, etag: info.etag });
          if (head.sha256 !== undefined) expect(head.sha256).toBe(sha(expected));
        }
        const missing = failure(await store.put(k('body/x'), { file: join(dir, 'nope.bin') }));
        expect(missing.reason).toBe('not-found');
        expect(failure(await store.head(k('body/x'))).reason).toBe('not-found');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('preserves binary bytes exactly', async () => {
      const bytes = Buffer.concat([
        Buffer.from(Array.from({ length: 256 }, (_, i) => i)),
        Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82, 0x00, 0x0d, 0x0a]),
      ]);
      expect(must(await store.put(k('bin'), bytes)).sha256).toBe(sha(bytes));
      expect(must(await store.get(k('bin'))).equals(bytes)).toBe(true);
      expect((await readAll(must(await store.getStream(k('bin'))))).equals(bytes)).toBe(true);
    });

    it('streams 5 MB in and out, and reads from a start offset', async () => {
      const bytes = randomBytes(5 * 1024 * 1024);
      const chunks = function* () {
        for (let i = 0; i < bytes.length; i += 65_536) yield bytes.subarray(i, i + 65_536);
      };
      const info = must(await store.put(k('big/5mb.bin'), Readable.from(chunks())));
      expect(info).toMatchObject({ size: bytes.length, sha256: sha(bytes) });
      expect(sha(await readAll(must(await store.getStream(k('big/5mb.bin')))))).toBe(sha(bytes));
      const tail = await readAll(
        must(await store.getStream(k('big/5mb.bin'), { start: 4_000_000 })),
      );
      expect(tail.equals(bytes.subarray(4_000_000))).toBe(true);
    });

    it('getStream honours start, including at and past the end', async () => {
      must(await store.put(k('digits'), '0123456789'));
      const from = async (start: number) =>
        (await readAll(must(await store.getStream(k('digits'), { start })))).toString();
      expect(await from(0)).toBe('0123456789');
      expect(await from(3)).toBe('3456789');
      expect(await from(10)).toBe('');
      expect(await from(25)).toBe('');
      expect(failure(await store.getStream(k('digits'), { start: -1 })).reason).toBe(
        'invalid-input',
      );
    });

    it('reports not-found for a missing key on get, getStream and head', async () => {
      for (const r of [
        await store.get(k('no/such')),
        await store.getStream(k('no/such')),
        await store.head(k('no/such')),
      ]) {
        expect(failure(r)).toMatchObject({ reason: 'not-found', key: 'no/such' });
      }
    });

    it('deletes idempotently', async () => {
      must(await store.put(k('del/me'), 'x'));
      must(await store.delete(k('del/me')));
      must(await store.delete(k('del/me')));
      must(await store.delete(k('del/never-existed')));
      expect(failure(await store.get(k('del/me'))).reason).toBe('not-found');
      expect(must(await store.list('del/')).objects).toEqual([]);
    });

    it('accepts keys with + ( ) . _ %, spaces and unicode', async () => {
      const keys = [
        'data/C++/train-00001-of-00002.parquet',
        'weird/a+b (1).x_y%20z',
        'weird/space here/file name.txt',
        'weird/日本語/ü.txt',
        'weird/emoji-😀.bin',
        'weird/~tilde&amp;=@!$,;\'"',
      ];
      for (const key of keys) must(await store.put(k(key), `content of ${key}`));
      for (const key of keys) expect(await text(key)).toBe(`content of ${key}`);
      expect((await listEverything(store, '')).keys).toEqual(byteOrder(keys));
      expect((await listEverything(store, 'data/C++/')).keys).toEqual([keys[0]]);
    });

    it('lists in UTF-8 byte order, page by page without loss', async () => {
      const keys = ['p0', 'p/x', 'p.a', 'p-1', 'p'];
      for (const key of keys) must(await store.put(k(key), key));
      const expected = ['p', 'p-1', 'p.a', 'p/x', 'p0'];
      expect(must(await store.list('')).objects.map((o) => o.key)).toEqual(expected);
      expect(await allKeys(store, '')).toEqual(expected);
      const onePerPage = await listEverything(store, '', { pageSize: 1 });
      expect(onePerPage.keys).toEqual(expected);
      expect(onePerPage.sizes).toEqual([1, 1, 1, 1, 1]);
      const grouped = must(await store.list('', { delimiter: '/' }));
      expect(grouped.objects.map((o) => o.key)).toEqual(['p', 'p-1', 'p.a', 'p0']);
      expect(grouped.prefixes).toEqual(['p/']);
      // UTF-16 order would put U+1F600 (a surrogate pair) before U+FF61; UTF-8 puts it after.
      for (const key of ['u/😀', 'u/｡', 'u/z', 'u/é']) must(await store.put(k(key), key));
      expect((await listEverything(store, 'u/', { pageSize: 2 })).keys).toEqual([
        'u/z',
        'u/é',
        'u/｡',
        'u/😀',
      ]);
      expect(await allKeys(store, 'u/')).toEqual(['u/z', 'u/é', 'u/｡', 'u/😀']);
    });

    it('lets a key be an object and a prefix of others, in either order', async () => {
      must(await store.put(k('a/b'), 'file first'));
      must(await store.put(k('a/b/c'), 'then below it'));
      must(await store.put(k('x/y/z'), 'dir first'));
      must(await store.put(k('x/y'), 'then the prefix itself'));
      must(await store.put(k('a/b'), 'overwritten'));
      expect(await text('a/b')).toBe('overwritten');
      expect(await text('x/y')).toBe('then the prefix itself');
      expect((await listEverything(store, '')).keys).toEqual(['a/b', 'a/b/c', 'x/y', 'x/y/z']);
      expect(await allKeys(store, '')).toEqual(['a/b', 'a/b/c', 'x/y', 'x/y/z']);
      must(await store.delete(k('a/b/c')));
      must(await store.delete(k('x/y')));
      expect(await text('a/b')).toBe('overwritten');
      expect(await text('x/y/z')).toBe('dir first');
      expect((await listEverything(store, '')).keys).toEqual(['a/b', 'x/y/z']);
    });

    it('paginates 2,500 keys in exactly 3 pages of at most 1,000', async () => {
      const keys = Array.from({ length: 2500 }, (_, i) => `many/k-${String(i).padStart(5, '0')}`);
      await inBatches(keys, 50, async (key) => must(await store.put(k(key), key)));
      const all = await listEverything(store, 'many/', { pageSize: 1000 });
      expect(all.sizes).toEqual([1000, 1000, 500]);
      expect(new Set(all.keys).size).toBe(2500);
      expect(all.keys).toEqual(keys);
      expect(await allKeys(store, 'many/')).toEqual(keys);
      expect((await listEverything(store, 'many/')).sizes).toEqual([1000, 1000, 500]);
      expect(must(await store.list('many/', { pageSize: 5000 })).objects).toHaveLength(1000);
    });

    it('matches prefixes that do not end at a "directory" boundary', async () => {
      const keys = ['data/C++/x', 'data/C/y', 'data/Cobol/z', 'data/D/w', 'data/C'];
      for (const key of keys) must(await store.put(k(key), key));
      const found = await listEverything(store, 'data/C');
      expect(found.keys).toEqual(['data/C', 'data/C++/x', 'data/C/y', 'data/Cobol/z']);
      expect(await allKeys(store, 'data/C')).toEqual(found.keys);
      expect(await allKeys(store, 'nothing/here')).toEqual([]);
      const grouped = await listEverything(store, 'data/C', { delimiter: '/' });
      expect(grouped.keys).toEqual(['data/C']);
      expect(grouped.prefixes).toEqual(['data/C++/', 'data/C/', 'data/Cobol/']);
      expect((await listEverything(store, 'data/C/')).keys).toEqual(['data/C/y']);
      expect((await listEverything(store, 'nothing/here')).keys).toEqual([]);
    });

    it('groups keys by a delimiter into prefixes, counted once across pages', async () => {
      for (const key of ['d/a/1', 'd/a/2', 'd/a/3/4', 'd/b/1', 'd/c', 'd/a-x']) {
        must(await store.put(k(key), key));
      }
      const page = must(await store.list('d/', { delimiter: '/' }));
      expect(page.objects.map((o) => o.key)).toEqual(['d/a-x', 'd/c']);
      expect(page.prefixes).toEqual(['d/a/', 'd/b/']);
      const paged = await listEverything(store, 'd/', { delimiter: '/', pageSize: 1 });
      expect(paged.sizes).toEqual([1, 1, 1, 1]);
      expect(paged.keys).toEqual(['d/a-x', 'd/c']);
      expect(paged.prefixes).toEqual(['d/a/', 'd/b/']);
      expect((await listEverything(store, 'd/a', { delimiter: '-' })).prefixes).toEqual(['d/a-']);
    });

    it('rejects a malformed page token and page size', async () => {
      expect(failure(await store.list('', { pageToken: '%%%' })).reason).toBe('invalid-input');
      expect(failure(await store.list('', { pageSize: 0 })).reason).toBe('invalid-input');
      expect(failure(await store.list('', { pageSize: 1.5 })).reason).toBe('invalid-input');
    });

    it('create-only put fails once the key exists and leaves it unchanged', async () => {
      const first = must(await store.put(k('once'), 'first', { ifNoneMatch: '*' }));
      const second = failure(await store.put(k('once'), 'second', { ifNoneMatch: '*' }));
      expect(second).toMatchObject({ reason: 'precondition-failed', key: 'once' });
      expect(await text('once')).toBe('first');
      expect(must(await store.head(k('once'))).etag).toBe(first.etag);
    });

    it('50 concurrent create-only puts to one key: exactly one wins', async () => {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          store.put(k('race/create'), `writer ${i}`, { ifNoneMatch: '*' }),
        ),
      );
      const winners = results.flatMap((r, i) => (r.ok ? [i] : []));
      expect(winners).toHaveLength(1);
      for (const r of results) if (!r.ok) expect(r.error.reason).toBe('precondition-failed');
      expect(await text('race/create')).toBe(`writer ${winners[0] ?? -1}`);
    });

    it('replace-if-etag succeeds with the current etag only', async () => {
      const v1 = must(await store.put(k('cas'), 'v1'));
      const v2 = must(await store.put(k('cas'), 'v2', { ifMatch: v1.etag }));
      expect(v2.etag).not.toBe(v1.etag);
      const stale = failure(await store.put(k('cas'), 'v3', { ifMatch: v1.etag }));
      expect(stale).toMatchObject({ reason: 'precondition-failed', key: 'cas' });
      expect(await text('cas')).toBe('v2');
      const absent = failure(await store.put(k('cas-missing'), 'x', { ifMatch: v1.etag }));
      expect(absent).toMatchObject({ reason: 'not-found', key: 'cas-missing' });
      expect(failure(await store.head(k('cas-missing'))).reason).toBe('not-found');
      const both = await store.put(k('cas'), 'x', { ifMatch: v2.etag, ifNoneMatch: '*' });
      expect(failure(both).reason).toBe('invalid-input');
    });

    it('changes the etag whenever the bytes change, and agrees on it in head and list', async () => {
      // S3's etag of a single put is the md5 of the bytes: identical bytes may keep their etag.
      // So a replace-if-etag protocol must write distinct bytes each time (leases carry a
      // holder and a counter), and this is all a store promises.
      const etags = new Set<string>();
      for (let i = 0; i < 10; i++)
        etags.add(must(await store.put(k('same'), `v${String(i)}`)).etag);
      expect(etags.size).toBe(10);
      const current = must(await store.head(k('same'))).etag;
      expect(etags.has(current)).toBe(true);
      expect(must(await store.list('same')).objects[0]?.etag).toBe(current);
    });

    it('20 concurrent replace-if-etag racers holding one etag: exactly one wins', async () => {
      const base = must(await store.put(k('race/cas'), 'base'));
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          store.put(k('race/cas'), `racer ${i}`, { ifMatch: base.etag }),
        ),
      );
      const winners = results.flatMap((r, i) => (r.ok ? [i] : []));
      expect(winners).toHaveLength(1);
      for (const r of results) if (!r.ok) expect(r.error.reason).toBe('precondition-failed');
      expect(await text('race/cas')).toBe(`racer ${winners[0] ?? -1}`);
    });

    it('reports modified by the store clock in put, head and list, later after a rewrite', async () => {
      // These stores run on this host (loopback), so their clock is the local one; S3 floors
      // to whole seconds, hence the slack below.
      const before = Date.now();
      const put = must(await store.put(k('time/a'), 'one'));
      const after = Date.now();
      const first = must(await store.head(k('time/a'))).modified;
      if (first === undefined) throw new Error('head reported no modified time');
      expect(first).toBeGreaterThanOrEqual(before - 2000);
      expect(first).toBeLessThanOrEqual(after + 2000);
      if (put.modified !== undefined) expect(put.modified).toBe(first); // S3: undefined
      expect(must(await store.list('time/')).objects[0]?.modified).toBe(first);
      await new Promise((r) => setTimeout(r, 1100)); // past S3's 1 s granularity
      const rewrite = must(await store.put(k('time/a'), 'two'));
      const second = must(await store.head(k('time/a'))).modified ?? -1;
      expect(second).toBeGreaterThan(first);
      if (rewrite.modified !== undefined) expect(rewrite.modified).toBe(second);
      expect(must(await store.list('time/')).objects[0]?.modified).toBe(second);
    });

    it('reads the store clock through a throwaway object it removes', async () => {
      const before = Date.now();
      const now = must(await storeNow(store));
      expect(Math.abs(now - before)).toBeLessThan(3000);
      const reading = must(await readStoreClock(store));
      expect(reading.roundTripMs).toBeGreaterThanOrEqual(0);
      expect(Math.abs(reading.storeMs - reading.localMs)).toBeLessThan(3000);
      expect(must(await store.list(CLOCK_PREFIX)).objects).toEqual([]);
    });

    it('deletes conditionally: the right etag only, not-found when absent', async () => {
      const v1 = must(await store.put(k('cdel/x'), 'v1'));
      const v2 = must(await store.put(k('cdel/x'), 'v2'));
      const stale = failure(await store.delete(k('cdel/x'), { ifMatch: v1.etag }));
      expect(stale).toMatchObject({ reason: 'precondition-failed', key: 'cdel/x' });
      expect(await text('cdel/x')).toBe('v2');
      must(await store.delete(k('cdel/x'), { ifMatch: v2.etag }));
      expect(failure(await store.head(k('cdel/x'))).reason).toBe('not-found');
      const gone = failure(await store.delete(k('cdel/x'), { ifMatch: v2.etag }));
      expect(gone).toMatchObject({ reason: 'not-found', key: 'cdel/x' });
      must(await store.delete(k('cdel/x'))); // without a condition: still idempotent
      must(await store.delete(k('cdel/x'), {}));
    });

    it('20 concurrent conditional writers and deleters holding one etag: exactly one wins', async () => {
      const base = must(await store.put(k('race/del'), 'base'));
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          i % 2 === 0
            ? store.delete(k('race/del'), { ifMatch: base.etag })
            : store.put(k('race/del'), `racer ${String(i)}`, { ifMatch: base.etag }),
        ),
      );
      const winners = results.flatMap((r, i) => (r.ok ? [i] : []));
      expect(winners).toHaveLength(1);
      for (const r of results) {
        if (!r.ok) expect(['precondition-failed', 'not-found']).toContain(r.error.reason);
      }
      const winner = winners[0] ?? -1;
      const now = await store.get(k('race/del'));
      if (winner % 2 === 0) expect(now.ok ? 'ok' : now.error.reason).toBe('not-found');
      else expect(now.ok && now.value.toString()).toBe(`racer ${String(winner)}`);
    });

    it('never exposes a torn object to a concurrent reader', async () => {
      const versions = Array.from({ length: 21 }, () => randomBytes(1024 * 1024));
      const known = new Set(versions.map((v) => sha(v)));
      must(await store.put(k('torn/obj'), versions[0] ?? Buffer.alloc(0)));
      let done = false;
      let reads = 0;
      const reader = async () => {
        while (!done) {
          const viaGet = must(await store.get(k('torn/obj')));
          const viaStream = await readAll(must(await store.getStream(k('torn/obj'))));
          expect(known.has(sha(viaGet))).toBe(true);
          expect(known.has(sha(viaStream))).toBe(true);
          reads += 2;
          await new Promise((r) => setImmediate(r)); // a memory store never leaves the microtask queue
        }
      };
      const readers = [reader(), reader()];
      for (const v of versions.slice(1)) {
        must(await store.put(k('torn/obj'), v));
        await new Promise((r) => setImmediate(r));
      }
      done = true;
      await Promise.all(readers);
      expect(reads).toBeGreaterThan(0);
      expect(sha(must(await store.get(k('torn/obj'))))).toBe(sha(versions[20] ?? ''));
    });
  });
}
