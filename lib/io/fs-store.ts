/**
 * An ObjectStore rooted at a local directory: the object `a/b.txt` is the file `<root>/a/b.txt`.
 *
 *   <root>/a/b.txt         the object `a/b.txt`
 *   <root>/p/\object       the object `p` while keys `p/...` exist too: S3 lets a key be both an
 *                          object and a "directory", a filesystem does not, so such an object lives
 *                          inside its directory under a name no key can spell (keys have no `\`)
 *   <root>/.tmp/           bytes being written (same filesystem, so publishing is one rename), and
 *                          `<hash>.aside` while an object `p` moves from `<root>/p` to `p/\object`
 *   <root>/.locks/         one O_EXCL lock file per key being written
 *
 * Atomicity. A put writes and fsyncs a temp file, then takes the key's lock and publishes it with
 * rename(2) (or link(2) for create-only, which fails with EEXIST), so a reader, or a `kill -9` at
 * any moment, sees the old object or the new one, never a torn one. Every write and delete holds
 * the key's lock while it commits (milliseconds), so conditional puts are atomic against all other
 * writers, across processes, on ONE LOCAL filesystem; not on network filesystems.
 *
 * Etags come from `stat` (inode, size, mtime in ns), so every process computes the same one; each
 * write is a new inode and stamps a unique microsecond mtime, so the etag changes on every write.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { statSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { err, ok } from '../errors.js';
import type { Failure, Result } from '../errors.js';
import { objectKey } from '../model.js';
import type { ObjectKey } from '../model.js';
import type { Body, GetOptions, ListOptions, ListPage, ObjectInfo, ObjectStore, PutOptions } from './object-store.js';
import type { ListCursor } from './memory-store.js';
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
} from './memory-store.js';

const TMP = '.tmp';
const LOCKS = '.locks';
/** File name of the object whose key is its directory's path. */
const SELF = '\\object';
/** A lock older than this is from a crashed writer (locks are held for one rename). */
const LOCK_STALE_MS = 30_000;
/** Give up waiting for a lock after this long (a `transient` failure). */
const LOCK_TIMEOUT_MS = 60_000;
/** Temp files older than this are junk from a crashed writer; removed on the first write. */
const TMP_STALE_MS = 3_600_000;
/** Retries when a directory changes under a commit (pruned, or turned into an object). */
const MAX_ATTEMPTS = 20;

const etagOf = (st: BigIntStats): string =>
  `${st.ino.toString(36)}.${st.size.toString(36)}.${st.mtimeNs.toString(36)}`;
const hashKey = (key: string): string => createHash('sha256').update(key).digest('hex').slice(0, 40);
const isDirError = (code: string | undefined): boolean =>
  code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
const HOST = hostname();

/** `stat`, with undefined when the path (or a parent directory) does not exist. */
async function statIfAny(path: string): Promise<BigIntStats | undefined> {
  try {
    return await stat(path, { bigint: true });
  } catch (e) {
    if (isDirError(errnoCode(e))) return undefined;
    throw e;
  }
}

let lastMicros = 0;
/** A wall-clock mtime unique in this process at microsecond precision (see etags above). */
function uniqueMtime(): number {
  lastMicros = Math.max(Date.now() * 1000 + randomInt(1000), lastMicros + 1);
  return lastMicros / 1e6;
}

async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  for (let off = 0; off < buf.length; ) off += (await fh.write(buf, off)).bytesWritten;
}

function pidIsDead(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return errnoCode(e) === 'ESRCH';
  }
}

/** Why a key cannot name a file under the root, or undefined when it can. */
function keyProblem(key: string): string | undefined {
  if (key === '') return 'the empty key is not allowed';
  if (key.startsWith('/') || key.includes('\0') || key.includes('\\')) {
    return 'keys must be relative and contain no NUL or backslash';
  }
  const segments = key.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) {
    return 'keys must not contain empty, `.` or `..` segments';
  }
  if (segments[0] === TMP || segments[0] === LOCKS) return `${segments[0]}/ is reserved by the store`;
  return undefined;
}

/** A directory-backed store; see the file comment for the layout and guarantees. */
export class FsStore implements ObjectStore {
  /** `file://<root>`. */
  readonly url: string;
  /** Absolute path of the root directory (created on the first write). */
  readonly root: string;
  #ready: Promise<void> | undefined;

  constructor(rootDir: string) {
    this.root = resolve(rootDir);
    this.url = `file://${this.root}`;
  }

  /** The file holding `key`'s bytes (the parquet DuckDB reads in place); undefined for bad keys. */
  localPath(key: ObjectKey): string | undefined {
    if (keyProblem(key) !== undefined) return undefined;
    const path = join(this.root, key);
    try {
      return statSync(path).isDirectory() ? join(path, SELF) : path;
    } catch {
      return path;
    }
  }

  #check(key: string, op: string): Failure | undefined {
    const problem = keyProblem(key);
    if (problem === undefined) return undefined;
    return { reason: 'invalid-input', message: `${op} ${JSON.stringify(key)} in ${this.url}: ${problem}` };
  }

  #notFound(key: string, op: string): { ok: false; error: Failure } {
    return err({ reason: 'not-found', key, message: `${op} ${this.url}/${key}: not found` });
  }

  #aside(key: string): string {
    return join(this.root, TMP, `${hashKey(key)}.aside`);
  }

  /** Creates the root and `.tmp/`, and sweeps temp files left by crashed writers (best effort). */
  async #prepare(): Promise<void> {
    this.#ready ??= (async () => {
      const tmp = join(this.root, TMP);
      await mkdir(tmp, { recursive: true });
      for (const name of await readdir(tmp)) {
        if (name.endsWith('.aside')) continue; // an object being moved: never junk
        const path = join(tmp, name);
        const st = await stat(path).catch(() => undefined);
        const stale = st !== undefined && Date.now() - st.mtimeMs > TMP_STALE_MS;
        if (stale) await rm(path, { force: true, recursive: true }).catch(() => undefined);
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
        fh = await open(candidate, 'r');
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
      return err(ioFailure(e, key, `${op} ${this.url}/${key}`));
    }
  }

  get(key: ObjectKey): Promise<Result<Buffer, Failure>> {
    return this.#read(key, 'get', async (fh) => {
      try {
        return await fh.readFile();
      } finally {
        await fh.close();
      }
    });
  }

  async getStream(key: ObjectKey, opts?: GetOptions): Promise<Result<Readable, Failure>> {
    const start = checkStart(opts);
    if (!start.ok) return start;
    // The stream reads the open inode, so a later overwrite or delete does not tear it.
    return this.#read(key, 'getStream', (fh) => Promise.resolve(fh.createReadStream({ start: start.value })));
  }

  head(key: ObjectKey): Promise<Result<ObjectInfo, Failure>> {
    return this.#read(key, 'head', async (fh, st) => {
      await fh.close();
      return { key, size: Number(st.size), etag: etagOf(st) };
    });
  }

  async put(key: ObjectKey, body: Body, opts: PutOptions = {}): Promise<Result<ObjectInfo, Failure>> {
    const bad = this.#check(key, 'put') ?? checkPutOptions(key, opts);
    if (bad) return err(bad);
    const what = `put ${this.url}/${key}`;
    const opened = await openBody(body);
    if (!opened.ok) return opened;
    let temp: string | undefined;
    try {
      await this.#prepare();
      temp = join(this.root, TMP, `${process.pid}-${randomBytes(8).toString('hex')}`);
      const info = await this.#writeTemp(key, temp, opened.value);
      return await this.#locked(key, () => this.#commit(key, temp ?? '', info, opts));
    } catch (e) {
      return err(ioFailure(e, key, what));
    } finally {
      if (temp !== undefined) await rm(temp, { force: true }); // gone after rename; left by link
    }
  }

  /** Writes, hashes and fsyncs the bytes; the etag is final because rename keeps inode and mtime. */
  async #writeTemp(key: ObjectKey, temp: string, chunks: AsyncIterable<Buffer>): Promise<ObjectInfo> {
    const hash = createHash('sha256');
    const fh = await open(temp, 'wx', 0o644);
    try {
      for await (const chunk of chunks) {
        hash.update(chunk);
        await writeAll(fh, chunk);
      }
      const mtime = uniqueMtime();
      await fh.utimes(mtime, mtime);
      await fh.sync();
      const st = await fh.stat({ bigint: true });
      return { key, size: Number(st.size), etag: etagOf(st), sha256: hash.digest('hex') };
    } finally {
      await fh.close();
    }
  }

  /** Publishes the temp file under the key's lock; retried when a directory changes underneath. */
  async #commit(key: ObjectKey, temp: string, info: ObjectInfo, opts: PutOptions): Promise<Result<ObjectInfo, Failure>> {
    const lost = (message: string) => err<Failure>({ reason: 'precondition-failed', key, message });
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      let target: string;
      if (opts.ifMatch !== undefined) {
        const found = await this.#open(key);
        if (!found) return err(ioFailure({ code: 'ENOENT' }, key, `put (ifMatch) ${this.url}/${key}`));
        await found.fh.close();
        if (etagOf(found.st) !== opts.ifMatch) return lost(`put ${this.url}/${key}: etag changed`);
        target = await this.#writeTarget(key);
      } else {
        target = await this.#writeTarget(key);
      }
      try {
        if (opts.ifNoneMatch === '*') await link(temp, target);
        else await rename(temp, target);
        return ok(info);
      } catch (e) {
        const code = errnoCode(e);
        if (code === 'EEXIST') {
          if ((await stat(target)).isDirectory()) continue; // became a directory: write its self
          return lost(`put ${this.url}/${key}: already exists`);
        }
        if (!isDirError(code)) throw e;
      }
    }
    return err({ reason: 'transient', message: `put ${this.url}/${key}: directories kept changing` });
  }

  /**
   * Makes the key's parent directories exist (turning an object in the way into its directory's
   * self) and returns where the key's bytes go. Called with the key's lock held.
   */
  async #writeTarget(key: string): Promise<string> {
    await this.#finishMove(key);
    const path = join(this.root, key);
    const segments = key.split('/');
    for (let attempt = 0; ; attempt++) {
      try {
        await mkdir(dirname(path), { recursive: true });
        break;
      } catch (e) {
        const code = errnoCode(e);
        if ((code !== 'EEXIST' && code !== 'ENOTDIR') || attempt >= MAX_ATTEMPTS) throw e;
      }
      for (let i = 1; i < segments.length; i++) {
        const dirKey = segments.slice(0, i).join('/');
        const st = await stat(join(this.root, dirKey)).catch(() => undefined);
        if (st === undefined) break;
        if (!st.isDirectory()) {
          await this.#locked(dirKey, () => this.#moveIntoDirectory(dirKey));
          break;
        }
      }
    }
    const st = await stat(path).catch(() => undefined);
    return st?.isDirectory() === true ? join(path, SELF) : path;
  }

  /** Object `p` → `.tmp/<hash>.aside` → `p/\object`, so that keys `p/...` can exist. */
  async #moveIntoDirectory(key: string): Promise<Result<void, Failure>> {
    const path = join(this.root, key);
    const st = await stat(path).catch(() => undefined);
    if (st?.isFile() === true) await rename(path, this.#aside(key));
    await this.#finishMove(key);
    return ok(undefined);
  }

  /** Completes a move to `p/\object` (also one a crash interrupted). Needs the key's lock. */
  async #finishMove(key: string): Promise<void> {
    const aside = this.#aside(key);
    const path = join(this.root, key);
    for (let attempt = 0; ; attempt++) {
      await mkdir(path, { recursive: true }).catch(() => undefined);
      try {
        await rename(aside, join(path, SELF));
        return;
      } catch (e) {
        const code = errnoCode(e);
        if (code === 'ENOENT' && !(await stat(aside).then(() => true, () => false))) return;
        if (!isDirError(code) || attempt >= MAX_ATTEMPTS) throw e; // else: pruned meanwhile
      }
    }
  }

  /** Runs `fn` holding the key's lock file (O_EXCL create; stale ones are broken). */
  async #locked<T>(key: string, fn: () => Promise<Result<T, Failure>>): Promise<Result<T, Failure>> {
    const path = join(this.root, LOCKS, `${hashKey(key)}.lock`);
    const deadline = Date.now() + LOCK_TIMEOUT_MS;
    let ino: number | undefined;
    for (let attempt = 0; ino === undefined; attempt++) {
      try {
        const fh = await open(path, 'wx');
        try {
          await fh.writeFile(`${process.pid} ${HOST}\n`);
          ino = (await fh.stat()).ino;
        } finally {
          await fh.close();
        }
      } catch (e) {
        const code = errnoCode(e);
        if (code === 'ENOENT') await mkdir(dirname(path), { recursive: true });
        else if (code !== 'EEXIST') throw e;
        else if (Date.now() > deadline) {
          return err({ reason: 'transient', message: `${this.url}/${key}: timed out waiting for its lock` });
        } else if (!(await this.#breakIfStale(path))) {
          await sleep(1 + randomInt(Math.min(2 + attempt, 25)));
        }
      }
    }
    try {
      return await fn();
    } finally {
      // Remove the lock only if it is still ours (a stale-lock breaker may have replaced it).
      const st = await stat(path).catch(() => undefined);
      if (st?.ino === ino) await unlink(path).catch(() => undefined);
    }
  }

  /** Removes a lock whose owner died (same host) or that is older than LOCK_STALE_MS. */
  async #breakIfStale(path: string): Promise<boolean> {
    const st = await stat(path).catch(() => undefined);
    if (!st) return true;
    if (Date.now() - st.mtimeMs < LOCK_STALE_MS) {
      const [pid, host] = (await readFile(path, 'utf8').catch(() => '')).trim().split(' ');
      if (host !== HOST || pid === undefined || !pidIsDead(Number(pid))) return false;
    }
    // Rename, then check it is the lock we judged: two breakers must not both remove a fresh one.
    const grave = `${path}.${randomBytes(6).toString('hex')}.stale`;
    if (!(await rename(path, grave).then(() => true, () => false))) return true;
    if ((await stat(grave)).ino !== st.ino) await link(grave, path).catch(() => undefined);
    await unlink(grave);
    return true;
  }

  async list(prefix: string, opts?: ListOptions): Promise<Result<ListPage, Failure>> {
    const req = parseListOptions(opts);
    if (!req.ok) return req;
    const dirKey = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    // No key lives under a prefix whose directory part is not a valid key path (e.g. `../`).
    if (dirKey !== '' && keyProblem(dirKey.slice(0, -1)) !== undefined) {
      return ok({ objects: [], prefixes: [] });
    }
    try {
      const walk = this.#walk(join(this.root, dirKey), dirKey, prefix, req.value.cursor);
      return ok(await collectPage(walk, prefix, req.value));
    } catch (e) {
      return err(ioFailure(e, prefix, `list ${this.url}/${prefix}`));
    }
  }

  /**
   * Yields the objects under `dir` in UTF-8 byte order of their keys, lazily, skipping subtrees
   * the cursor excludes. In byte order `p` < `p-1` < `p.a` < `p/x` < `p0`, so a directory `p` is
   * sorted as `p/` among its siblings, and its self object as `p`.
   */
  async *#walk(dir: string, dirKey: string, prefix: string, c: ListCursor): AsyncGenerator<ObjectInfo> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      if (isDirError(errnoCode(e))) return;
      throw e;
    }
    const items: { name: string; sort: Buffer; kind: 'file' | 'self' | 'dir' }[] = [];
    for (const d of entries) {
      if (d.name.includes('\\') || (dirKey === '' && (d.name === TMP || d.name === LOCKS))) continue;
      if (d.isFile()) items.push({ name: d.name, sort: Buffer.from(d.name), kind: 'file' });
      if (d.isDirectory()) {
        items.push({ name: d.name, sort: Buffer.from(d.name), kind: 'self' });
        items.push({ name: d.name, sort: Buffer.from(`${d.name}/`), kind: 'dir' });
      }
    }
    items.sort((a, b) => Buffer.compare(a.sort, b.sort));
    for (const item of items) {
      if (c.skip !== undefined && dirKey.startsWith(c.skip)) return; // this whole dir is grouped
      const key = dirKey + item.name;
      const path = join(dir, item.name);
      if (item.kind === 'dir') {
        if (subtreeWanted(`${key}/`, prefix, c)) yield* this.#walk(path, `${key}/`, prefix, c);
        continue;
      }
      if (!keyWanted(key, prefix, c)) continue;
      const st = await stat(item.kind === 'self' ? join(path, SELF) : path, { bigint: true }).catch(
        (e: unknown) => (isDirError(errnoCode(e)) ? undefined : Promise.reject(e)),
      );
      if (st?.isFile() === true) yield { key: objectKey(key), size: Number(st.size), etag: etagOf(st) };
    }
  }

  async delete(key: ObjectKey): Promise<Result<void, Failure>> {
    const bad = this.#check(key, 'delete');
    if (bad) return err(bad);
    try {
      const found = await this.#open(key);
      if (!found) return ok(undefined); // absent now: nothing to lock for
      await found.fh.close();
      return await this.#locked(key, async () => {
        await this.#finishMove(key);
        const path = join(this.root, key);
        const isDir = (await stat(path).catch(() => undefined))?.isDirectory() === true;
        await unlink(isDir ? join(path, SELF) : path).catch((e: unknown) =>
          errnoCode(e) === 'ENOENT' ? undefined : Promise.reject(e),
        );
        await this.#prune(isDir ? path : dirname(path));
        return ok(undefined);
      });
    } catch (e) {
      return err(ioFailure(e, key, `delete ${this.url}/${key}`));
    }
  }

  /** Removes now-empty directories from `dir` up to (never including) the root. */
  async #prune(dir: string): Promise<void> {
    for (let d = dir; d.startsWith(`${this.root}/`); d = dirname(d)) {
      if (!(await rmdir(d).then(() => true, () => false))) return;
    }
  }
}
