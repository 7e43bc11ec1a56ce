/**
 * `mkdir -p` that always ends. Node's `mkdir(path, {recursive: true})` (and `mkdirSync`) loops
 * forever, at 100% CPU inside a libuv thread that no signal can stop, when a parent exists but
 * refuses new entries with ENOENT, as `/proc` does: `bucket: file:///proc/nope` hung a run and
 * made it deaf to SIGTERM. Every directory stackflow creates goes through `ensureDir`, which
 * creates one level at a time and gives up after a few attempts with the real error.
 */
import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** Attempts when a directory on the way vanishes meanwhile (a concurrent prune). */
const ATTEMPTS = 5;

const codeOf = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | undefined)?.code;

function notADirectory(path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${path}'`), {
    code: 'ENOTDIR',
    path,
    syscall: 'mkdir',
  });
}

/**
 * Creates `path` and its missing parents (like `mkdir -p`); resolves when it is a directory.
 * Throws the filesystem's error (ENOENT, EACCES, EROFS, ENOTDIR when a file is in the way) after
 * at most a few attempts; never loops.
 */
export async function ensureDir(path: string): Promise<void> {
  const target = resolve(path);
  let last: unknown;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    // The missing directories, deepest first, up to the nearest one that exists.
    const missing: string[] = [];
    for (let p = target; ;) {
      const st = await stat(p).catch((e: unknown) => {
        const code = codeOf(e);
        if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
        throw e;
      });
      if (st !== undefined) {
        if (!st.isDirectory()) throw notADirectory(p);
        break;
      }
      missing.push(p);
      const parent = dirname(p);
      if (parent === p) break;
      p = parent;
    }
    if (missing.length === 0) return;
    try {
      for (const dir of missing.reverse()) {
        await mkdir(dir).catch((e: unknown) => {
          if (codeOf(e) !== 'EEXIST') throw e;
        });
      }
      return;
    } catch (e) {
      // ENOENT: a parent vanished meanwhile (pruned), or the filesystem refuses the name (/proc):
      // look again, a bounded number of times. Anything else is final.
      if (codeOf(e) !== 'ENOENT') throw e;
      last = e;
    }
  }
  throw last;
}
