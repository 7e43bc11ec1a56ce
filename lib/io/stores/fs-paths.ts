/**
 * How FsStore (fs-store.ts) and its key locks (fs-lock.ts) map keys onto a directory: the reserved
 * names under the root (`.tmp/`, `.locks/`, a directory's `\object`), which keys can name a file,
 * the short hash that names a key's lock and aside files, the guard that keeps reads inside the
 * root, and the few small filesystem helpers both files need.
 */
import { createHash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { constants, realpathSync, statSync } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { StoreError } from './object-store.js';
import { errnoCode } from './store-common.js';

/** Directory under the root for bytes being written and objects being moved. */
export const TMP = '.tmp';
/** Directory under the root for the per-key lock files. */
export const LOCKS = '.locks';
/** File name of the object whose key is its directory's path. */
export const SELF = '\\object';

/** The name (40 hex digits) a key's lock and aside files are stored under. */
export const hashKey = (key: string): string =>
  createHash('sha256').update(key).digest('hex').slice(0, 40);

/** Whether an errno code means the path, or a directory on it, is absent or not what we expected. */
export const isDirError = (code: string | undefined): boolean =>
  code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';

/** Whether a filesystem call succeeded, for calls whose failure only means "someone was first". */
export const succeeds = (p: Promise<unknown>): Promise<boolean> =>
  p.then(
    () => true,
    () => false,
  );

/** `stat`, with undefined when the path (or a parent directory) does not exist. */
export async function statIfAny(path: string): Promise<BigIntStats | undefined> {
  try {
    return await stat(path, { bigint: true });
  } catch (e) {
    if (isDirError(errnoCode(e))) return undefined;
    throw e;
  }
}

/**
 * `statIfAny`, synchronously: for listings, where one `stat` per object is the whole cost and the
 * asynchronous call's round trip through the thread pool costs ~5× the call itself.
 */
export function statIfAnySync(path: string): BigIntStats | undefined {
  try {
    return statSync(path, { bigint: true, throwIfNoEntry: false });
  } catch (e) {
    if (isDirError(errnoCode(e))) return undefined;
    throw e;
  }
}

/** Why a key cannot name a file under the root, or undefined when it can. */
export function keyProblem(key: string): string | undefined {
  if (key === '') return 'the empty key is not allowed';
  if (key.startsWith('/') || key.includes('\0') || key.includes('\\')) {
    return 'keys must be relative and contain no NUL or backslash';
  }
  const segments = key.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) {
    return 'keys must not contain empty, `.` or `..` segments';
  }
  if (segments[0] === TMP || segments[0] === LOCKS)
    return `${segments[0]}/ is reserved by the store`;
  return undefined;
}

/**
 * Keeps a store's reads inside its root: the one place that knows how (see fs-store.ts,
 * "Symlinks"). Links in the root's own path are the user's choice; links below it are followed
 * only to targets inside it.
 */
export class RootGuard {
  #realRoot: string | undefined;

  constructor(
    private readonly root: string,
    private readonly url: string,
  ) {}

  /** The root's real path, once it exists. */
  #rootReal(): string {
    if (this.#realRoot !== undefined) return this.#realRoot;
    try {
      this.#realRoot = realpathSync(this.root);
      return this.#realRoot;
    } catch {
      return this.root;
    }
  }

  /** Whether a resolved path is the root or below it. */
  #inside(real: string): boolean {
    const root = this.#rootReal();
    return real === root || real.startsWith(root === sep ? root : root + sep);
  }

  #unsafe(key: string, path: string, why: string): StoreError {
    return new StoreError({
      reason: 'unsafe-path',
      key,
      message: `${this.url}/${key}: refusing to read ${path}: ${why}`,
    });
  }

  #out(key: string, path: string, real: string): StoreError {
    return this.#unsafe(key, path, `a symbolic link leads out of the store (to ${real})`);
  }

  /** Whether an existing `path` under the root resolves outside it (false when absent). */
  leadsOut(path: string): boolean {
    try {
      return !this.#inside(realpathSync(path));
    } catch {
      return false;
    }
  }

  /**
   * Opens `candidate` (a path under the root where `key`'s bytes may be) for reading without
   * leaving the root: O_NOFOLLOW, a link (ELOOP) opened only when it resolves inside, and the
   * candidate's directory checked when it is not the root itself. Throws StoreError
   * (`unsafe-path`) for a way out; missing-type errors are thrown as they are.
   */
  async open(key: string, candidate: string): Promise<FileHandle> {
    const parent = dirname(candidate);
    if (parent !== this.root && parent !== join(this.root, TMP)) {
      let dir: string | undefined;
      try {
        dir = await realpath(parent);
      } catch {
        dir = undefined; // absent: the open below says so
      }
      if (dir !== undefined && !this.#inside(dir)) throw this.#out(key, candidate, dir);
    }
    try {
      return await open(candidate, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (e) {
      if (errnoCode(e) !== 'ELOOP') throw e;
    }
    let real: string;
    try {
      real = await realpath(candidate);
    } catch (e) {
      // A link to itself, or a cycle of links: nothing to read, and not this store's bug.
      if (errnoCode(e) === 'ELOOP') throw this.#unsafe(key, candidate, 'a loop of symbolic links');
      throw e;
    }
    if (!this.#inside(real)) throw this.#out(key, candidate, real);
    return open(real, constants.O_RDONLY | constants.O_NOFOLLOW);
  }
}
