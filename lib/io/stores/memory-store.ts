/**
 * The Map-backed reference implementation of the ObjectStore port. The helpers it shares with
 * every other store (key order, pages, bodies, errno mapping) live in store-common.ts.
 *
 * The memory store is what other stores are checked against: test/contract/object-store.ts runs
 * the same suite on it and on every other implementation.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { err, ok } from '../../errors.js';
import type { Failure, Result } from '../../errors.js';
import { objectKey } from '../../model.js';
import type { ObjectKey } from '../../model.js';
import type {
  Body,
  DeleteOptions,
  GetOptions,
  ListOptions,
  ListPage,
  ObjectInfo,
  ObjectStore,
  PutOptions,
} from './object-store.js';
import {
  checkPutOptions,
  checkStart,
  collectPage,
  invalid,
  ioFailure,
  openBody,
  parseListOptions,
} from './store-common.js';

interface Entry {
  bytes: Buffer;
  etag: string;
  sha256: string;
  /** `Date.now()` at the write: in one process the store's clock is the local one. */
  modified: number;
}

/**
 * Objects in a Map. Every operation's decision and effect run in one synchronous step after the
 * body is read, so conditional puts are atomic (JavaScript runs one callback at a time).
 */
export class MemoryStore implements ObjectStore {
  readonly #objects = new Map<string, Entry>();
  /** Bumped on every write; part of the etag, so that rewriting the same bytes changes it. */
  #writes = 0;

  /** @param url Shown in messages; `memory://<name>` when opened through openStore. */
  constructor(readonly url = 'memory://') {}

  #missing(key: string, op: string): { ok: false; error: Failure } {
    return err({ reason: 'not-found', key, message: `${op} ${this.url}/${key}: not found` });
  }

  #info(key: string, e: Entry): ObjectInfo {
    return {
      key: objectKey(key),
      size: e.bytes.length,
      etag: e.etag,
      sha256: e.sha256,
      modified: e.modified,
    };
  }

  get(key: ObjectKey): Promise<Result<Buffer>> {
    const e = this.#objects.get(key);
    return Promise.resolve(e ? ok(Buffer.from(e.bytes)) : this.#missing(key, 'get'));
  }

  getStream(key: ObjectKey, opts?: GetOptions): Promise<Result<Readable>> {
    const start = checkStart(opts);
    if (!start.ok) return Promise.resolve(start);
    const e = this.#objects.get(key);
    if (!e) return Promise.resolve(this.#missing(key, 'getStream'));
    const bytes = Buffer.from(e.bytes.subarray(start.value));
    return Promise.resolve(ok(Readable.from([bytes], { objectMode: false })));
  }

  head(key: ObjectKey): Promise<Result<ObjectInfo>> {
    const e = this.#objects.get(key);
    return Promise.resolve(e ? ok(this.#info(key, e)) : this.#missing(key, 'head'));
  }

  async put(key: ObjectKey, body: Body, opts: PutOptions = {}): Promise<Result<ObjectInfo>> {
    const bad =
      key === '' ? invalid('put: the empty key is not allowed') : checkPutOptions(key, opts);
    if (bad) return err(bad);
    const opened = await openBody(body);
    if (!opened.ok) return opened;
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of opened.value) {
        hash.update(chunk);
        chunks.push(chunk);
      }
    } catch (e) {
      return err(ioFailure(e, key, `put ${this.url}/${key}`));
    }
    // From here to the end there is no await: check and write are one atomic step.
    const current = this.#objects.get(key);
    if (opts.ifNoneMatch === '*' && current) {
      return err({ reason: 'precondition-failed', key, message: `put ${key}: already exists` });
    }
    if (opts.ifMatch !== undefined) {
      if (!current) return this.#missing(key, 'put (ifMatch)');
      if (current.etag !== opts.ifMatch) {
        return err({ reason: 'precondition-failed', key, message: `put ${key}: etag changed` });
      }
    }
    const sha256 = hash.digest('hex');
    this.#writes += 1;
    const entry = {
      bytes: Buffer.concat(chunks),
      etag: `${this.#writes}-${sha256.slice(0, 16)}`,
      sha256,
      modified: Date.now(),
    };
    this.#objects.set(key, entry);
    return ok(this.#info(key, entry));
  }

  async list(prefix: string, opts?: ListOptions): Promise<Result<ListPage>> {
    const req = parseListOptions(opts);
    if (!req.ok) return req;
    const keys = [...this.#objects.keys()]
      .filter((k) => k.startsWith(prefix))
      .map((k) => ({ k, bytes: Buffer.from(k, 'utf8') }))
      .sort((a, b) => Buffer.compare(a.bytes, b.bytes));
    // Snapshot the infos now: the page describes the store at the moment of the call.
    const infos = keys.flatMap(({ k }) => {
      const e = this.#objects.get(k);
      return e ? [this.#info(k, e)] : [];
    });
    return ok(await collectPage(infos, prefix, req.value));
  }

  delete(key: ObjectKey, opts: DeleteOptions = {}): Promise<Result<void>> {
    // Check and delete are one synchronous step, so a conditional delete is atomic.
    if (opts.ifMatch !== undefined) {
      const current = this.#objects.get(key);
      if (!current) return Promise.resolve(this.#missing(key, 'delete (ifMatch)'));
      if (current.etag !== opts.ifMatch) {
        return Promise.resolve(
          err({ reason: 'precondition-failed', key, message: `delete ${key}: etag changed` }),
        );
      }
    }
    this.#objects.delete(key);
    return Promise.resolve(ok(undefined));
  }
}
