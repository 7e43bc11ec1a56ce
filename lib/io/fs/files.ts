/**
 * Local-file helpers shared by tasks: hashing, publishing a scratch file into a store, and getting
 * a local path for an object (in place for local stores, a scratch copy otherwise).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Result } from '../../errors.js';
import { err, ok } from '../../errors.js';
import type { ObjectKey } from '../../model.js';
import { objectKey } from '../../model.js';
import type { OutputRecord, StoreName } from '../state/markers.js';
import type { ObjectStore } from '../stores/object-store.js';

export async function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

/** Streams `src` into `path` while hashing; returns size and sha256. */
export async function writeHashed(
  src: Readable,
  path: string,
  signal?: AbortSignal,
): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  src.on('data', (c: Buffer) => {
    h.update(c);
    size += c.length;
  });
  await pipeline(src, createWriteStream(path), signal ? { signal } : {});
  return { sha256: h.digest('hex'), size };
}

/** Publishes a finished local file under `key` (atomic in the store) and describes it. */
export async function publishFile(
  store: ObjectStore,
  storeName: StoreName,
  key: string,
  path: string,
): Promise<Result<OutputRecord>> {
  const r = await store.put(objectKey(key), { file: path });
  if (!r.ok) return r;
  const sha256 = r.value.sha256 ?? (await sha256File(path)).sha256;
  return ok({ store: storeName, key, size: r.value.size, sha256 });
}

/** A local path holding the object: the store's own file when it has one, else a scratch copy. */
export async function localCopy(
  store: ObjectStore,
  key: ObjectKey,
  scratch: string,
  signal?: AbortSignal,
): Promise<Result<string>> {
  const local = store.localPath?.(key);
  if (local !== undefined) {
    const h = await store.head(key);
    return h.ok ? ok(local) : h;
  }
  const s = await store.getStream(key);
  if (!s.ok) return s;
  const path = join(scratch, key.replace(/[^A-Za-z0-9._-]+/g, '_'));
  await writeHashed(s.value, path, signal);
  return ok(path);
}

/** True when the store already holds exactly these bytes (size, then sha256). */
export async function holdsSame(
  store: ObjectStore,
  key: string,
  size: number,
  sha256: string,
): Promise<Result<boolean>> {
  const h = await store.head(objectKey(key));
  if (!h.ok) return h.error.reason === 'not-found' ? ok(false) : h;
  if (h.value.size !== size) return ok(false);
  if (h.value.sha256 !== undefined) return ok(h.value.sha256 === sha256);
  const d = await digestObject(store, key);
  return d.ok ? ok(d.value.sha256 === sha256) : d;
}

/** sha256 and size of an object, read through the store. */
export async function digestObject(
  store: ObjectStore,
  key: string,
): Promise<Result<{ sha256: string; size: number }>> {
  const local = store.localPath?.(objectKey(key));
  if (local !== undefined) {
    try {
      return ok(await sha256File(local));
    } catch {
      return err({ reason: 'not-found', key, message: `${store.url}/${key} is missing` });
    }
  }
  const s = await store.getStream(objectKey(key));
  if (!s.ok) return s;
  const h = createHash('sha256');
  let size = 0;
  for await (const c of s.value) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return ok({ sha256: h.digest('hex'), size });
}
