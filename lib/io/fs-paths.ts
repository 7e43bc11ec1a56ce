/**
 * How FsStore (fs-store.ts) and its key locks (fs-lock.ts) map keys onto a directory: the reserved
 * names under the root (`.tmp/`, `.locks/`, a directory's `\object`), which keys can name a file,
 * the short hash that names a key's lock and aside files, and the few small filesystem helpers both
 * files need.
 */
import { createHash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
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
