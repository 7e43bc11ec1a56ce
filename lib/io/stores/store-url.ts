/**
 * Turns a store URL from pipeline.yaml or the command line into an ObjectStore.
 *
 *   file:///abs/dir   FsStore rooted at /abs/dir (percent-escapes decoded)
 *   memory://name     a MemoryStore shared by every openStore('memory://name') of this process
 *   s3://bucket/pfx   S3Store: endpoint, region, path style and signing from the pipeline's `s3:`
 *                     block and the environment (s3-location.ts); credentials from the SDK chain
 */
import { fileURLToPath } from 'node:url';
import { err, ok } from '../../errors.js';
import type { Failure, Result } from '../../errors.js';
import { FsStore } from './fs-store.js';
import { MemoryStore } from './memory-store.js';
import type { ObjectStore } from './object-store.js';
import type { S3BucketSettings } from './s3-location.js';
import { resolveS3Location } from './s3-location.js';
import type { S3StoreOptions } from './s3-store.js';
import { S3Store } from './s3-store.js';

/** What an s3:// URL needs besides itself. */
export interface OpenStoreOptions {
  /** pipeline.yaml's `s3:` block. */
  s3?: Readonly<Record<string, S3BucketSettings>>;
  /** Environment for endpoint/region defaults (default: process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Client tuning: sockets, retries and the retry callback. */
  s3Store?: S3StoreOptions;
  /** A run's interrupt: a filesystem store stops waiting for a key's lock when it aborts. */
  signal?: AbortSignal;
}

/** Memory stores by URL, so that two parts of one process (or a test and the CLI) share one. */
const memoryStores = new Map<string, MemoryStore>();

const invalid = (message: string) => err<Failure>({ reason: 'invalid-input', message });

/** Opens the store a URL names; unknown schemes and malformed URLs are `invalid-input`. */
export function openStore(url: string, opts: OpenStoreOptions = {}): Result<ObjectStore> {
  if (url.startsWith('memory://')) {
    let store = memoryStores.get(url);
    if (!store) {
      store = new MemoryStore(url);
      memoryStores.set(url, store);
    }
    return ok(store);
  }
  if (url.startsWith('s3://')) {
    const loc = resolveS3Location(url, opts.s3 ?? {}, opts.env ?? process.env);
    if (!loc.ok) return loc;
    return ok(new S3Store(loc.value, opts.s3Store));
  }
  if (url.startsWith('file://')) {
    try {
      return ok(new FsStore(fileURLToPath(url), opts.signal ? { signal: opts.signal } : {}));
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      return invalid(`${url} is not a usable file:// URL (write file:///absolute/dir): ${why}`);
    }
  }
  return invalid(
    `unsupported store URL ${JSON.stringify(url)}: use file:///absolute/dir or s3://bucket/prefix`,
  );
}
