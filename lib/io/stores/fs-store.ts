/**
 * An ObjectStore rooted at a local directory: the object `a/b.txt` is the file `<root>/a/b.txt`.
 *
 *   <root>/a/b.txt         the object `a/b.txt`
 *   <root>/p/\object       the object `p` while keys `p/...` exist too: S3 lets a key be both an
 *                          object and a "directory", a filesystem does not, so such an object lives
 *                          inside its directory under a name no key can spell (keys have no `\`)
 *   <root>/.tmp/           bytes being written (same filesystem, so publishing is one rename), and
 *                          `<hash>.aside` while an object `p` moves from `<root>/p` to `p/\object`
 *   <root>/.locks/         one O_EXCL lock file per key being written (see fs-lock.ts)
 *
 * Atomicity. A put writes and fsyncs a temp file, then takes the key's lock and publishes it with
 * rename(2) (or link(2) for create-only, which fails with EEXIST), so a reader, or a `kill -9` at
 * any moment, sees the old object or the new one, never a torn one. Every write and delete holds
 * the key's lock while it commits (milliseconds), so conditional puts are atomic against all other
 * writers, across processes, on ONE LOCAL filesystem; not on network filesystems.
 *
 * Etags come from `stat` (inode, size, mtime in ns), so every process computes the same one; each
 * write is a new inode and stamps a unique microsecond mtime, so the etag changes on every write.
 * That mtime is also the object's `modified` time: the store lives on one local filesystem, so
 * the writers' clock is the store's clock.
 *
 * Symlinks. The store never reads through a symlink that leads out of its root: a `file://`
 * content source or mirror is data from outside, and a link in it to `/etc/shadow` or `~/.ssh`
 * must not become a packed row. Files are opened with O_NOFOLLOW; a link is resolved and read only
 * when its target is inside the root, else the read is an `unsafe-path` failure. Directories on a
 * key's path are checked the same way (realpath of the parent). Links in the root's own path are
 * the user's choice and are followed. Listings skip links altogether.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import type { BigIntStats, Dirent } from 'node:fs';
import {
  link,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  unlink,
  writeFile,
} from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { setImmediate } from 'node:timers/promises';
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
import { StoreError } from './object-store.js';
import { LOCK_STALE_MS, withKeyLock } from './fs-lock.js';
import {
  LOCKS,
  RootGuard,
  SELF,
  TMP,
  hashKey,
  isDirError,
  keyProblem,
  statIfAny,
  statIfAnySync,
  succeeds,
} from './fs-paths.js';
import type { ListCursor } from './store-common.js';
import {
  checkPutOptions,
  checkStart,
  collectPage,
  errnoCode,
  ioFailure,
  keyWanted,
  openBody,
  parseListOptions,
  subtreeWanted,
} from './store-common.js';
import { ensureDir } from '../fs/mkdirs.js';

/** Temp files older than this are junk from a crashed writer; removed on the first write. */
const TMP_STALE_MS = 3_600_000;

/**
 * What a walk lists: keys under `prefix`, from `cursor` on. The cursor is the page collector's
 * (lib/io/stores/store-common.ts): it moves `skip` past each group it reports, and the walk reads
 * it to prune that group's subtree.
 */
interface WalkQuery {
  prefix: string;
  cursor: ListCursor;
}

/** A file found by a listing's walk: its key and where it is. */
interface WalkedFile {
  key: string;
  path: string;
}

/** The directory part of a list prefix, or undefined when no key can live under it. */
function listDir(prefix: string): string | undefined {
  const dirKey = prefix.slice(0, prefix.lastIndexOf('/') + 1);
  // No key lives under a prefix whose directory part is not a valid key path (e.g. `../`).
  return dirKey !== '' && keyProblem(dirKey.slice(0, -1)) !== undefined ? undefined : dirKey;
}

/** A directory's entries, or undefined when it is absent (or not a directory). */
function readDirIfAny(dir: string): Dirent[] | undefined {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (isDirError(errnoCode(e))) return undefined;
    throw e;
  }
}

/**
 * A UTF-16 code unit at or above U+D800. Without one, comparing names as JS strings (UTF-16 code
 * units) gives UTF-8 byte order, the order listings promise; with one (an astral character, or
 * U+E000–U+FFFF), the walk compares bytes.
 */
const WIDE_CHAR = /[\uD800-\uFFFF]/;
const EMPTY = Buffer.alloc(0);

/** A long listing gives the event loop a turn after this many objects (see #walk). */
const YIELD_EVERY = 256;
/** Retries when a directory changes under a commit (pruned, or turned into an object). */
const MAX_ATTEMPTS = 20;

const etagOf = (st: BigIntStats): string =>
  `${st.ino.toString(36)}.${st.size.toString(36)}.${st.mtimeNs.toString(36)}`;

/** What `head`, `list` and `put` report about the file `st` describes. */
const infoOf = (key: string, st: BigIntStats): ObjectInfo => ({
  key: objectKey(key),
  size: Number(st.size),
  etag: etagOf(st),
  modified: Number(st.mtimeMs),
});

let lastMicros = 0;
/** A wall-clock mtime unique in this process at microsecond precision (see etags above). */
function uniqueMtime(): number {
  lastMicros = Math.max(Date.now() * 1000 + randomInt(1000), lastMicros + 1);
  return lastMicros / 1e6;
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  for (let off = 0; off < buf.length;) off += (await fh.write(buf, off)).bytesWritten;
}

/**
 * The file's bytes, read in one call when the file has the size fstat gave: a published object
 * never changes (a write replaces the file), and `FileHandle.readFile` would fstat again and read
 * in more round trips, each a trip through the thread pool and back.
 */
async function readWhole(fh: FileHandle, size: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafeSlow(size);
  let at = 0;
  while (at < size) {
    const { bytesRead } = await fh.read(buf, at, size - at, at);
    if (bytesRead === 0) return buf.subarray(0, at);
    at += bytesRead;
  }
  return buf;
}

/** A directory-backed store; see the file comment for the layout and guarantees. */
export class FsStore implements ObjectStore {
  /** Objects stat'ed by listings so far (paces their event-loop turns). */
  #listed = 0;
  /** `file://<root>`. */
  readonly url: string;
  /** Absolute path of the root directory (created on the first write). */
  readonly root: string;
  #ready: Promise<void> | undefined;
  /** Keeps reads inside the root (see Symlinks above). */
  readonly #guard: RootGuard;

  /** Ends waits for a key's lock (a run's interrupt): such a write fails as `aborted`. */
  readonly #signal: AbortSignal | undefined;

  constructor(rootDir: string, opts: { signal?: AbortSignal } = {}) {
    this.#signal = opts.signal;
    this.root = resolve(rootDir);
    this.url = `file://${this.root}`;
    this.#guard = new RootGuard(this.root, this.url);
  }

  /**
   * The file holding `key`'s bytes (the parquet DuckDB reads in place); undefined for bad keys and
   * for a path that leads out of the root (the caller then reads through `get`, which refuses it).
   */
  localPath(key: ObjectKey): string | undefined {
    if (keyProblem(key) !== undefined) return undefined;
    const path = join(this.root, key);
    let target = path;
    try {
      target = statSync(path).isDirectory() ? join(path, SELF) : path;
    } catch {
      // absent: the caller's read reports it
    }
    return this.#guard.leadsOut(target) ? undefined : target;
  }

  /**
   * Where `key`'s bytes usually are, without touching the disk: `<root>/<key>` (undefined for a key
   * the store rejects). A fast-path hint for a reader that may block (a worker thread), not a
   * guarantee: the path may be missing, may be a directory (the object then lives in it as
   * `\object`) or the object may be moving there (see the file comment). What does hold: when the
   * path opens as a regular file, that file is the object's complete bytes (every write publishes
   * a whole file by rename). On anything else, ask `get`, which looks everywhere an object can be.
   */
  filePathHint(key: ObjectKey): string | undefined {
    // Only a key straight under the root: a reader opening the hint with O_NOFOLLOW then cannot
    // leave the root through a linked directory (deeper keys go through `get`).
    return keyProblem(key) === undefined && !key.includes('/') ? join(this.root, key) : undefined;
  }

  #check(key: string, op: string): Failure | undefined {
    const problem = keyProblem(key);
    if (problem === undefined) return undefined;
    return {
      reason: 'invalid-input',
      message: `${op} ${JSON.stringify(key)} in ${this.url}: ${problem}`,
    };
  }

  #notFound(key: string, op: string): { ok: false; error: Failure } {
    return err({ reason: 'not-found', key, message: `${op} ${this.url}/${key}: not found` });
  }

  /** Where object `key` waits while it moves into its directory; `.key` records the key. */
  #aside(key: string, ext: 'aside' | 'key' = 'aside'): string {
    return join(this.root, TMP, `${hashKey(key)}.${ext}`);
  }

  /**
   * Creates the root and `.tmp/`, then (best effort) finishes moves a crash interrupted and
   * removes temp files older than an hour. Runs once per store, on its first write.
   */
  async #prepare(): Promise<void> {
    this.#ready ??= (async () => {
      const tmp = join(this.root, TMP);
      await ensureDir(tmp);
      for (const name of await readdir(tmp)) {
        const path = join(tmp, name);
        try {
          const age = Date.now() - (await stat(path)).mtimeMs;
          if (name.endsWith('.key') && age > LOCK_STALE_MS) {
            const key = await readFile(path, 'utf8');
            if (keyProblem(key) === undefined) {
              await this.#locked(key, () => this.#finishMove(key).then(() => ok(undefined)));
            }
            await rm(path, { force: true });
          } else if (!/\.(aside|key)$/.test(name) && age > TMP_STALE_MS) {
            await rm(path, { force: true, recursive: true });
          }
        } catch {
          // Best effort: junk that vanished or resists removal must not fail a put.
        }
      }
    })();
    try {
      await this.#ready;
    } catch (e) {
      this.#ready = undefined;
      throw e;
    }
  }

  /**
   * Opens the file holding `key`, looking where the object can be, in the order an object moves
   * between them while it becomes a directory's self (`p` → aside → `p/\object`): a reader can
   * therefore never miss an object that is being moved.
   */
  async #open(key: string): Promise<{ fh: FileHandle; st: BigIntStats } | undefined> {
    const path = join(this.root, key);
    for (const candidate of [path, this.#aside(key), join(path, SELF)]) {
      let fh: FileHandle;
      try {
        fh = await this.#guard.open(key, candidate);
      } catch (e) {
        if (isDirError(errnoCode(e))) continue;
        throw e;
      }
      const st = await fh.stat({ bigint: true });
      if (st.isFile()) return { fh, st };
      await fh.close();
    }
    return undefined;
  }

  async #read<T>(key: ObjectKey, op: string, use: (fh: FileHandle, st: BigIntStats) => Promise<T>) {
    const bad = this.#check(key, op);
    if (bad) return err(bad);
    try {
      const found = await this.#open(key);
      if (!found) return this.#notFound(key, op);
      return ok(await use(found.fh, found.st));
    } catch (e) {
      if (e instanceof StoreError) return err(e.failure);
      return err(ioFailure(e, key, `${op} ${this.url}/${key}`));
    }
  }

  get(key: ObjectKey): Promise<Result<Buffer>> {
    return this.#read(key, 'get', async (fh, st) => {
      try {
        return await readWhole(fh, Number(st.size));
      } finally {
        await fh.close();
      }
    });
  }

  async getStream(key: ObjectKey, opts?: GetOptions): Promise<Result<Readable>> {
    const start = checkStart(opts);
    if (!start.ok) return start;
    // The stream reads the open inode, so a later overwrite or delete does not tear it.
    return this.#read(key, 'getStream', (fh) =>
      Promise.resolve(fh.createReadStream({ start: start.value })),
    );
  }

  head(key: ObjectKey): Promise<Result<ObjectInfo>> {
    return this.#read(key, 'head', async (fh, st) => {
      await fh.close();
      return infoOf(key, st);
    });
  }

  async put(key: ObjectKey, body: Body, opts: PutOptions = {}): Promise<Result<ObjectInfo>> {
    const bad = this.#check(key, 'put') ?? checkPutOptions(key, opts);
    if (bad) return err(bad);
    const temp = join(this.root, TMP, `${process.pid}-${randomBytes(8).toString('hex')}`);
    try {
      await this.#prepare();
      const written = await this.#writeTemp(key, temp, body);
      if (!written.ok) return written;
      return await this.#locked(key, () => this.#commit(key, temp, written.value, opts));
    } catch (e) {
      if (e instanceof StoreError) return err(e.failure);
      return err(ioFailure(e, key, `put ${this.url}/${key}`));
    } finally {
      await rm(temp, { force: true }); // already gone after a rename; still there after a link
    }
  }

  /** Writes, hashes and fsyncs the bytes; the etag is final because rename keeps inode and mtime. */
  async #writeTemp(key: ObjectKey, temp: string, body: Body): Promise<Result<ObjectInfo>> {
    const hash = createHash('sha256');
    const fh = await open(temp, 'wx', 0o644);
    try {
      const chunks = await openBody(body);
      if (!chunks.ok) return chunks;
      for await (const chunk of chunks.value) {
        hash.update(chunk);
        await writeAll(fh, chunk);
      }
      const mtime = uniqueMtime();
      await fh.utimes(mtime, mtime);
      await fh.sync();
      const st = await fh.stat({ bigint: true });
      return ok({ ...infoOf(key, st), sha256: hash.digest('hex') });
    } finally {
      await fh.close();
    }
  }

  /** Publishes the temp file, holding the key's lock; retried when a directory changes under it. */
  async #commit(
    key: ObjectKey,
    temp: string,
    info: ObjectInfo,
    opts: PutOptions,
  ): Promise<Result<ObjectInfo>> {
    const message = (why: string) => `put ${this.url}/${key}: ${why}`;
    const lost = (why: string) =>
      err<Failure>({ reason: 'precondition-failed', key, message: message(why) });
    await this.#finishMove(key);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      if (opts.ifMatch !== undefined) {
        const found = await this.#open(key);
        if (!found) return this.#notFound(key, 'put (ifMatch)');
        await found.fh.close();
        if (etagOf(found.st) !== opts.ifMatch) return lost('etag changed');
      }
      const target = await this.#writeTarget(key);
      if (!target.ok) return target;
      try {
        if (opts.ifNoneMatch === '*') await link(temp, target.value);
        else await rename(temp, target.value);
        return ok(info);
      } catch (e) {
        const code = errnoCode(e);
        if (code === 'EEXIST') {
          const st = await statIfAny(target.value);
          if (st === undefined || st.isDirectory()) continue; // became a directory: write its self
          return lost('already exists');
        }
        if (!isDirError(code)) throw e;
      }
    }
    return err({ reason: 'transient', message: message('directories kept changing') });
  }

  /**
   * Makes the key's parent directories exist (an object in the way becomes its directory's self)
   * and returns the file the key's bytes go to. Called holding the key's lock.
   */
  async #writeTarget(key: string): Promise<Result<string>> {
    const path = join(this.root, key);
    const segments = key.split('/');
    for (let attempt = 0; ; attempt++) {
      try {
        await ensureDir(dirname(path));
        break;
      } catch (e) {
        const code = errnoCode(e);
        if ((code !== 'EEXIST' && code !== 'ENOTDIR') || attempt >= MAX_ATTEMPTS) throw e;
      }
      for (let i = 1; i < segments.length; i++) {
        const dirKey = segments.slice(0, i).join('/');
        const st = await statIfAny(join(this.root, dirKey));
        if (st === undefined) break;
        if (!st.isDirectory()) {
          const moved = await this.#locked(dirKey, () => this.#moveIntoDirectory(dirKey));
          if (!moved.ok) return moved;
          break;
        }
      }
    }
    const st = await statIfAny(path);
    return ok(st?.isDirectory() === true ? join(path, SELF) : path);
  }

  /** Object `p` → `.tmp/<hash>.aside` → `p/\object`, so that keys `p/...` can exist. */
  async #moveIntoDirectory(key: string): Promise<Result<void>> {
    await this.#finishMove(key);
    const path = join(this.root, key);
    if ((await statIfAny(path))?.isFile() === true) {
      await writeFile(this.#aside(key, 'key'), key); // lets a later process finish after a crash
      await rename(path, this.#aside(key));
      await this.#finishMove(key);
    }
    return ok(undefined);
  }

  /** Completes a move to `p/\object`, including one a crash interrupted. Needs the key's lock. */
  async #finishMove(key: string): Promise<void> {
    const aside = this.#aside(key);
    const path = join(this.root, key);
    for (let attempt = 0; (await statIfAny(aside)) !== undefined; attempt++) {
      try {
        await mkdir(path);
      } catch (e) {
        if (errnoCode(e) !== 'EEXIST') throw e;
      }
      try {
        await rename(aside, join(path, SELF));
        await rm(this.#aside(key, 'key'), { force: true });
        return;
      } catch (e) {
        if (!isDirError(errnoCode(e)) || attempt >= MAX_ATTEMPTS) throw e; // else: pruned meanwhile
      }
    }
  }

  /** Runs `fn` holding the key's lock (fs-lock.ts). */
  #locked<T>(key: string, fn: () => Promise<Result<T>>): Promise<Result<T>> {
    return withKeyLock({ root: this.root, url: this.url, signal: this.#signal }, key, fn);
  }

  async list(prefix: string, opts?: ListOptions): Promise<Result<ListPage>> {
    const req = parseListOptions(opts);
    if (!req.ok) return req;
    const dirKey = listDir(prefix);
    if (dirKey === undefined) return ok({ objects: [], prefixes: [] });
    try {
      const walk = this.#walk(join(this.root, dirKey), dirKey, {
        prefix,
        cursor: req.value.cursor,
      });
      return ok(await collectPage(this.#infos(walk), prefix, req.value));
    } catch (e) {
      return err(ioFailure(e, prefix, `list ${this.url}/${prefix}`));
    }
  }

  /** One walk, no stat per object (see ObjectStore.listKeys). */
  async *listKeys(prefix: string): AsyncGenerator<string, void, undefined> {
    const dirKey = listDir(prefix);
    if (dirKey === undefined) return;
    const c: ListCursor = {};
    try {
      for await (const f of this.#walk(join(this.root, dirKey), dirKey, { prefix, cursor: c })) {
        if (keyWanted(f.key, prefix, c)) yield f.key;
      }
    } catch (e) {
      throw new StoreError(ioFailure(e, prefix, `list ${this.url}/${prefix}`));
    }
  }

  /** The walk's files with their stat (what `list` reports); files gone meanwhile are skipped. */
  async *#infos(walk: AsyncIterable<WalkedFile>): AsyncGenerator<ObjectInfo> {
    for await (const f of walk) {
      const st = statIfAnySync(f.path);
      if (st?.isFile() === true) yield infoOf(f.key, st);
    }
  }

  /**
   * Yields the files under `dir` in UTF-8 byte order of their keys, lazily, skipping subtrees
   * the cursor excludes. In byte order `p` < `p-1` < `p.a` < `p/x` < `p0`, so a directory `p` is
   * sorted as `p/` among its siblings, and its self object (`p/\object`) as `p`.
   *
   * Synchronous reads: a listing is one readdir per directory (and, in `list`, one stat per
   * object), and the promise versions cost ~5× as much per call (planning 100,000 tasks listed
   * their markers in 15 s instead of ~2). The event loop gets a turn every YIELD_EVERY files.
   */
  async *#walk(
    dir: string,
    dirKey: string,
    q: WalkQuery,
    known?: Dirent[],
  ): AsyncGenerator<WalkedFile> {
    const { prefix, cursor: c } = q;
    const entries = known ?? readDirIfAny(dir);
    if (entries === undefined) return;
    const base = dir.endsWith('/') ? dir.slice(0, -1) : dir;
    const items: { name: string; sort: string; kind: 'file' | 'self' | 'dir' }[] = [];
    let wide = false;
    for (const d of entries) {
      const reserved = dirKey === '' && (d.name === TMP || d.name === LOCKS);
      if (reserved || d.name.includes('\\')) continue; // and symlinks: neither file nor dir below
      if (!d.isFile() && !d.isDirectory()) continue;
      wide ||= WIDE_CHAR.test(d.name);
      if (d.isFile()) items.push({ name: d.name, sort: d.name, kind: 'file' });
      else {
        items.push({ name: d.name, sort: d.name, kind: 'self' });
        items.push({ name: d.name, sort: `${d.name}/`, kind: 'dir' });
      }
    }
    if (wide) {
      const bytes = new Map(items.map((it) => [it, Buffer.from(it.sort)] as const));
      items.sort((a, b) => Buffer.compare(bytes.get(a) ?? EMPTY, bytes.get(b) ?? EMPTY));
    } else items.sort((a, b) => (a.sort < b.sort ? -1 : a.sort > b.sort ? 1 : 0));
    // A subdirectory's entries, read at its self object's place and reused at its own.
    const read = new Map<string, Dirent[] | undefined>();
    for (const item of items) {
      if (c.skip !== undefined && dirKey.startsWith(c.skip)) return; // this whole dir is grouped
      const key = dirKey + item.name;
      const path = `${base}/${item.name}`;
      if (item.kind === 'dir') {
        const sub = read.get(item.name);
        read.delete(item.name);
        if (subtreeWanted(`${key}/`, prefix, c)) {
          yield* this.#walk(path, `${key}/`, q, sub);
        }
        continue;
      }
      if (!keyWanted(key, prefix, c)) continue;
      if (item.kind === 'self') {
        const sub = readDirIfAny(path);
        read.set(item.name, sub);
        if (sub?.some((d) => d.name === SELF && d.isFile()) !== true) continue;
      }
      if (++this.#listed % YIELD_EVERY === 0) await setImmediate();
      yield { key, path: item.kind === 'self' ? `${path}/${SELF}` : path };
    }
  }

  async delete(key: ObjectKey, opts: DeleteOptions = {}): Promise<Result<void>> {
    const bad = this.#check(key, 'delete');
    if (bad) return err(bad);
    const { ifMatch } = opts;
    try {
      const found = await this.#open(key);
      if (!found) {
        // Absent now: nothing to lock for.
        return ifMatch === undefined ? ok(undefined) : this.#notFound(key, 'delete (ifMatch)');
      }
      await found.fh.close();
      return await this.#locked(key, async () => {
        await this.#finishMove(key);
        if (ifMatch !== undefined) {
          // Checked again under the lock: a writer may have replaced or removed it meanwhile.
          const current = await this.#open(key);
          if (!current) return this.#notFound(key, 'delete (ifMatch)');
          await current.fh.close();
          if (etagOf(current.st) !== ifMatch) {
            const message = `delete ${this.url}/${key}: etag changed`;
            return err<Failure>({ reason: 'precondition-failed', key, message });
          }
        }
        const path = join(this.root, key);
        const isDir = (await statIfAny(path))?.isDirectory() === true;
        try {
          await unlink(isDir ? join(path, SELF) : path);
        } catch (e) {
          if (!isDirError(errnoCode(e))) throw e;
        }
        await this.#prune(isDir ? path : dirname(path));
        return ok(undefined);
      });
    } catch (e) {
      if (e instanceof StoreError) return err(e.failure);
      return err(ioFailure(e, key, `delete ${this.url}/${key}`));
    }
  }

  /** Removes now-empty directories from `dir` up to (never including) the root. */
  async #prune(dir: string): Promise<void> {
    for (let d = dir; d.startsWith(`${this.root}/`); d = dirname(d)) {
      if (!(await succeeds(rmdir(d)))) return;
    }
  }
}
