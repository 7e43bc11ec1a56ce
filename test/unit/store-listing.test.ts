/**
 * The listing helpers of lib/io/stores/object-store.ts return Results: a page that fails (or a
 * keys-only walk that fails) ends the listing with that failure instead of throwing.
 */
import { describe, expect, it } from 'vitest';
import type { Result } from '../../lib/errors.js';
import { err } from '../../lib/errors.js';
import { MemoryStore } from '../../lib/io/stores/memory-store.js';
import type { ListOptions, ListPage } from '../../lib/io/stores/object-store.js';
import {
  forEachKey,
  forEachKeySized,
  forEachListed,
  listAll,
  StoreError,
} from '../../lib/io/stores/object-store.js';
import { objectKey as k } from '../../lib/model.js';

const broken = { reason: 'transient', message: 'list memory://x: the network went away' } as const;

/** A memory store whose second page of any listing fails. */
class FlakyStore extends MemoryStore {
  override async list(prefix: string, opts: ListOptions = {}): Promise<Result<ListPage>> {
    if (opts.pageToken !== undefined) return err(broken);
    return super.list(prefix, { ...opts, pageSize: 2 });
  }
}

/** A store with a keys-only walk that breaks after the first key. */
class BrokenWalkStore extends MemoryStore {
  async *listKeys(prefix: string): AsyncGenerator<string, void, undefined> {
    yield `${prefix}first`;
    await Promise.resolve();
    throw new StoreError(broken);
  }
}

async function filled<T extends MemoryStore>(store: T): Promise<T> {
  for (const name of ['a', 'b', 'c', 'd', 'e']) await store.put(k(`p/${name}`), name);
  return store;
}

describe('listing helpers', () => {
  it('list every page when nothing fails', async () => {
    const store = await filled(new MemoryStore('memory://listing-ok'));
    const all = await listAll(store, 'p/', { pageSize: 2 });
    expect(all.ok && all.value.map((o) => o.key)).toEqual(['p/a', 'p/b', 'p/c', 'p/d', 'p/e']);
    const keys: string[] = [];
    expect((await forEachKey(store, 'p/', (key) => keys.push(key))).ok).toBe(true);
    expect(keys).toHaveLength(5);
  });

  it('return the failure of a page as a Result, after visiting the pages before it', async () => {
    const store = await filled(new FlakyStore('memory://listing-flaky'));
    expect(await listAll(store, 'p/')).toEqual(err(broken));
    const seen: string[] = [];
    expect(await forEachListed(store, 'p/', (o) => seen.push(o.key))).toEqual(err(broken));
    expect(seen).toEqual(['p/a', 'p/b']);
    expect(await forEachKey(store, 'p/', () => undefined)).toEqual(err(broken));
    expect(
      await forEachKeySized(
        store,
        'p/',
        () => true,
        () => undefined,
      ),
    ).toEqual(err(broken));
  });

  it("turn a keys-only walk's StoreError into a Result", async () => {
    const store = new BrokenWalkStore('memory://listing-walk');
    const seen: string[] = [];
    expect(await forEachKey(store, 'p/', (key) => seen.push(key))).toEqual(err(broken));
    expect(seen).toEqual(['p/first']);
  });
});
