/**
 * The local-disk side of large downloads: free-space checks (a 2.5 GB parquet that fills the disk
 * at 99% wastes the transfer and may break other writers, so downloads ask first and fail early
 * with numbers), resumable partial files, and moving a finished file into place.
 */
import type { Hash } from 'node:crypto';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { copyFile, open, rename, rm, stat, statfs } from 'node:fs/promises';
import type { Result } from '../../errors.js';
import { err, ok } from '../../errors.js';

/** The part of `statfs` the check reads; injectable so tests can fake a full disk. */
export type StatFs = (dir: string) => Promise<{ bavail: number; bsize: number }>;

const realStatFs: StatFs = (dir) => statfs(dir);

/** Bytes as decimal gigabytes, the unit the dataset card uses for shard sizes. */
export const formatGB = (bytes: number): string => `${(bytes / 1e9).toFixed(2)} GB`;

/**
 * Ok when the filesystem holding `dir` has at least `bytesNeeded` bytes available to this user
 * (`bavail`, not `bfree`: root-reserved blocks are not ours). `what` names the consumer in the
 * message, e.g. `downloading data/C++/train-00000-of-00002.parquet`.
 */
export async function checkFreeSpace(
  dir: string,
  bytesNeeded: number,
  what: string,
  opts: {
    /** Replaces `fs.statfs` (tests). */
    statfs?: StatFs;
    /** Bytes other writers have been promised on top of `bytesNeeded`. */
    alsoReserved?: number;
  } = {},
): Promise<Result<{ free: number }>> {
  const others = opts.alsoReserved ?? 0;
  const total = bytesNeeded + others;
  let free: number;
  try {
    const st = await (opts.statfs ?? realStatFs)(dir);
    free = st.bavail * st.bsize;
  } catch (e) {
    return err({
      reason: 'invalid-input',
      message: `cannot check free space in ${dir} for ${what}: ${(e as Error).message}`,
    });
  }
  if (free >= total) return ok({ free });
  const plus = others > 0 ? ` plus ${formatGB(others)} reserved by downloads in flight` : '';
  return err({
    reason: 'invalid-input',
    message: `not enough disk space in ${dir} for ${what}: needs ${formatGB(bytesNeeded)}${plus}, only ${formatGB(free)} free (${total} bytes needed, ${free} available)`,
  });
}

/**
 * Bytes promised to downloads in flight in one directory. statfs only sees bytes already written,
 * so two downloads checking at once would both see room for one; each check therefore adds what
 * the others have reserved. A reservation is its remaining bytes at start, released at the end
 * (over-counting what it has written meanwhile: conservative, never optimistic).
 */
export class SpaceReservations {
  private reserved = 0;

  /** Checks room for `bytes` plus every live reservation, and on success reserves `bytes`. */
  async reserve(
    dir: string,
    bytes: number,
    what: string,
    statfs?: StatFs,
  ): Promise<Result<{ release: () => void }>> {
    // Reserve before the (async) statfs so that concurrent callers see each other's bytes.
    const others = this.reserved;
    this.reserved += bytes;
    const c = await checkFreeSpace(dir, bytes, what, {
      alsoReserved: others,
      ...(statfs ? { statfs } : {}),
    });
    if (!c.ok) {
      this.reserved -= bytes;
      return c;
    }
    let released = false;
    return ok({
      release: () => {
        if (released) return;
        released = true;
        this.reserved -= bytes;
      },
    });
  }

  /** Bytes currently reserved (for tests and messages). */
  get total(): number {
    return this.reserved;
  }
}

/**
 * A download's partial file (`.part`): its path, how many bytes it holds and their running
 * sha256. Every byte is written before it is hashed and counted, so after any error `offset`
 * and the hash describe exactly the bytes on disk and the download can resume from there.
 */
export class PartFile {
  #offset: number;
  #hash: Hash;

  private constructor(
    readonly path: string,
    offset: number,
    hash: Hash,
  ) {
    this.#offset = offset;
    this.#hash = hash;
  }

  /**
   * Picks up a `.part` left by an earlier attempt or process: hashes its bytes so the download
   * can continue from its end. A file longer than `size` cannot be a prefix and is deleted.
   */
  static async resume(path: string, size: number): Promise<PartFile> {
    const hash = createHash('sha256');
    try {
      if ((await stat(path)).size > size) {
        await rm(path, { force: true });
        return new PartFile(path, 0, hash);
      }
    } catch {
      return new PartFile(path, 0, hash);
    }
    let offset = 0;
    for await (const c of createReadStream(path)) {
      hash.update(c as Buffer);
      offset += (c as Buffer).length;
    }
    return new PartFile(path, offset, hash);
  }

  /** Bytes held. */
  get offset(): number {
    return this.#offset;
  }

  /** Forgets the bytes held: the next `append` starts the file over. */
  restart(): void {
    this.#offset = 0;
    this.#hash = createHash('sha256');
  }

  /** The sha256 of the bytes held (once: it ends the running hash). */
  digest(): string {
    return this.#hash.digest('hex');
  }

  /**
   * Appends `chunks` (truncating the file first when it holds nothing). Stops reading once past
   * `limit` bytes (the caller's size check reports it). Returns the stream's error, if any,
   * instead of throwing it.
   */
  async append(
    chunks: AsyncIterable<Uint8Array>,
    o: { limit: number; onBytes?: ((n: number) => void) | undefined },
  ): Promise<{ error?: unknown }> {
    let fh: FileHandle | undefined;
    try {
      fh = await open(this.path, this.#offset === 0 ? 'w' : 'a');
      for await (const chunk of chunks) {
        await fh.write(chunk);
        this.#hash.update(chunk);
        this.#offset += chunk.length;
        o.onBytes?.(chunk.length);
        if (this.#offset > o.limit) return {};
      }
      return {};
    } catch (e) {
      return { error: e };
    } finally {
      await fh?.close();
    }
  }
}

/** rename, or copy + delete when `to` is on another filesystem. */
export async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    await copyFile(from, to);
    await rm(from, { force: true });
  }
}
