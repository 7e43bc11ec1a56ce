/**
 * FsStore's per-key locks: `<root>/.locks/<hash>.lock`, one O_EXCL-style lock file per key being
 * written, held for one commit (milliseconds). Owns taking and releasing a lock, the owner record
 * (`pid host`) and breaking stale locks (owner dead on this host, or older than LOCK_STALE_MS).
 * Good across processes on ONE LOCAL filesystem; not on network filesystems.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { link, readFile, rename, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { err } from '../../errors.js';
import type { Failure, Result } from '../../errors.js';
import { LOCKS, TMP, hashKey, succeeds } from './fs-paths.js';
import { errnoCode } from './store-common.js';
import { ensureDir } from '../fs/mkdirs.js';

/** A lock older than this is from a crashed writer (locks are held for one rename). */
export const LOCK_STALE_MS = 30_000;
/** Give up waiting for a lock after this long (a `transient` failure). */
const LOCK_TIMEOUT_MS = 60_000;
const HOST = hostname();

function pidIsDead(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return errnoCode(e) === 'ESRCH';
  }
}

/**
 * Runs `fn` holding `key`'s lock file in the store at `root` (`url` is for messages). The lock is
 * a file written with its owner (`pid host`) and then published with link(2), which fails with
 * EEXIST while another owner holds it; so a lock is never ownerless, and one whose owner died (or
 * older than 30 s) can be broken at once. Waiting ends after 60 s (`transient`) or when `signal`
 * aborts (`aborted`), whichever comes first.
 */
export async function withKeyLock<T>(
  store: { root: string; url: string; signal?: AbortSignal | undefined },
  key: string,
  fn: () => Promise<Result<T>>,
): Promise<Result<T>> {
  const { root, url, signal } = store;
  const path = join(root, LOCKS, `${hashKey(key)}.lock`);
  const mine = join(root, TMP, `${process.pid}-${randomBytes(8).toString('hex')}.lock`);
  await ensureDir(dirname(mine));
  await writeFile(mine, `${process.pid} ${HOST}\n`);
  const ino = (await stat(mine)).ino;
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  let written = Date.now();
  try {
    for (let attempt = 0; ; attempt++) {
      if (Date.now() - written > 1000) {
        written = Date.now(); // the lock's age (mtime) must count from when it is taken
        await utimes(mine, written / 1000, written / 1000);
      }
      try {
        await link(mine, path);
        break;
      } catch (e) {
        const code = errnoCode(e);
        if (code === 'ENOENT') await ensureDir(dirname(path));
        else if (code !== 'EEXIST') throw e;
      }
      if (Date.now() > deadline) {
        const message = `${url}/${key}: timed out waiting for its lock`;
        return err({ reason: 'transient', message });
      }
      if (signal?.aborted === true) return err(stopped(url, key));
      if (!(await breakIfStale(path))) {
        try {
          await sleep(1 + randomInt(Math.min(2 + attempt, 25)), undefined, { signal });
        } catch {
          return err(stopped(url, key));
        }
      }
    }
  } finally {
    await unlink(mine);
  }
  try {
    return await fn();
  } finally {
    // Remove the lock only if it is still ours (a stale-lock breaker may have replaced it).
    const st = await stat(path).catch(() => undefined);
    if (st?.ino === ino) await unlink(path).catch(() => undefined);
  }
}

const stopped = (url: string, key: string): Failure => ({
  reason: 'aborted',
  message: `${url}/${key}: stopped waiting for its lock (interrupted)`,
});

/** Removes a lock whose owner died (same host) or that is older than LOCK_STALE_MS. */
async function breakIfStale(path: string): Promise<boolean> {
  const st = await stat(path).catch(() => undefined);
  if (!st) return true; // released meanwhile
  if (Date.now() - st.mtimeMs < LOCK_STALE_MS) {
    const [pid, host] = (await readFile(path, 'utf8').catch(() => '')).trim().split(' ');
    if (host !== HOST || pid === undefined || !pidIsDead(Number(pid))) return false;
  }
  // Rename, then check it is the lock we judged: two breakers must not both remove a fresh one.
  const grave = `${path}.${randomBytes(6).toString('hex')}.stale`;
  if (!(await succeeds(rename(path, grave)))) return true;
  if ((await stat(grave)).ino !== st.ino) await link(grave, path).catch(() => undefined);
  await unlink(grave);
  return true;
}
