/**
 * Turns a store URL from pipeline.yaml or the command line into an ObjectStore.
 *
 *   file:///abs/dir   FsStore rooted at /abs/dir (percent-escapes decoded)
 *   memory://name     a MemoryStore shared by every openStore('memory://name') of this process
 *   s3://bucket/...   not yet: the S3 store arrives with the real-endpoints work
 */
import { fileURLToPath } from 'node:url';
import { err, ok } from '../errors.js';
import type { Failure, Result } from '../errors.js';
import { FsStore } from './fs-store.js';
import { MemoryStore } from './memory-store.js';
import type { ObjectStore } from './object-store.js';

/** Memory stores by URL, so that two parts of one process (or a test and the CLI) share one. */
const memoryStores = new Map<string, MemoryStore>();

const invalid = (message: string) => err<Failure>({ reason: 'invalid-input', message });

/** Opens the store a URL names; unknown schemes and malformed URLs are `invalid-input`. */
export function openStore(url: string): Result<ObjectStore> {
  if (url.startsWith('memory://')) {
    let store = memoryStores.get(url);
    if (!store) {
      store = new MemoryStore(url);
      memoryStores.set(url, store);
    }
    return ok(store);
  }
  if (url.startsWith('s3://')) {
    return invalid(
      's3:// stores are not supported yet (the S3 store arrives with the real-endpoints work); use a file:// URL',
    );
  }
  if (url.startsWith('file://')) {
    try {
      return ok(new FsStore(fileURLToPath(url)));
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      return invalid(`${url} is not a usable file:// URL (write file:///absolute/dir): ${why}`);
    }
  }
  return invalid(`unsupported store URL ${JSON.stringify(url)}: use file:///absolute/dir`);
}
