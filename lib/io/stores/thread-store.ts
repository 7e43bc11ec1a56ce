/**
 * A store opened again inside a worker thread. A thread cannot be handed an object with sockets
 * and callbacks, so a store that a thread may use says how to open it (`ObjectStore.threadSpec`:
 * plain data, no secret) and the thread opens its own, with its own connections. Pack's line
 * workers fetch the content store's blobs this way, off the main thread.
 *
 * Credentials are not part of a spec: the thread's SDK finds them through its default chain, in
 * the same environment (the line pool's workers share the process's env).
 */
import type { ObjectStore } from './object-store.js';
import type { S3Location } from './s3-location.js';
import { S3Store } from './s3-store.js';

export interface ThreadStoreSpec {
  kind: 's3';
  location: S3Location;
  /** S3StoreOptions without its callback. */
  options: {
    maxSockets?: number;
    retries?: number;
    baseMs?: number;
    multipartThreshold?: number;
    partSize?: number;
    idleTimeoutMs?: number;
  };
}

/** The store a spec describes, opened in this thread. */
export function openThreadStore(spec: ThreadStoreSpec): ObjectStore {
  return new S3Store(spec.location, spec.options);
}
