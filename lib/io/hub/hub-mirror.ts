/**
 * A local HF-shaped mirror (`file://<root>` holding `data/<Language>/train-*.parquet`), the
 * embedded default source. A mirror has no revisions: the pinned revision from pipeline.yaml is
 * taken as is. sha256 is computed by reading each file (cached by path, size and mtime).
 *
 * Nothing is read through a symlink that leads out of the mirror's root (a language folder or a
 * parquet linked to `/etc` or `~`): listing such a folder or file is an `unsafe-path` failure. A
 * link that stays inside the root is followed.
 */
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import type { Failure, Result } from '../../errors.js';
import { convertExceptionToFailure, err, errnoFailure, ok } from '../../errors.js';
import { cmp } from '../../fingerprint.js';
import type { ManifestEntry } from '../../model.js';
import { RootGuard } from '../stores/fs-paths.js';
import type { DownloadOptions, HubSource } from './hub.js';
import { checkRemoteName, checkRepoPath, mismatch } from './hub.js';

export class MirrorHub implements HubSource {
  readonly url: string;
  private readonly digests = new Map<string, string>();
  private readonly guard: RootGuard;

  constructor(private readonly root: string) {
    this.url = `file://${root}`;
    this.guard = new RootGuard(root, this.url);
  }

  /** The `unsafe-path` failure for a path under the root that resolves outside it. */
  private leadsOut(rel: string, path: string): Failure | undefined {
    if (!this.guard.leadsOut(path)) return undefined;
    return {
      reason: 'unsafe-path',
      key: rel,
      message: `${this.url}/${rel} is a symbolic link out of the mirror; stackflow reads only files inside a file:// source (copy the files in)`,
    };
  }

  resolveRevision(revision: string): Promise<Result<string>> {
    return Promise.resolve(ok(revision));
  }

  async listLanguages(): Promise<Result<string[]>> {
    try {
      const ents = await readdir(join(this.root, 'data'), { withFileTypes: true });
      // Linked folders are listed too, so that one leading out is refused by name (listFiles)
      // rather than silently missing from `languages: all`.
      const names = ents
        .filter((e) => e.isDirectory() || e.isSymbolicLink())
        .map((e) => e.name)
        .filter((n) => isDirectoryOrLinkToOne(join(this.root, 'data', n)));
      for (const n of names) {
        const c = checkRemoteName(n, 'language folder');
        if (!c.ok) return c;
      }
      return ok(names.sort(cmp));
    } catch (e) {
      return err(notFound(join(this.root, 'data'), e));
    }
  }

  async listFiles(language: string): Promise<Result<ManifestEntry[]>> {
    const checked = checkRemoteName(language, 'language folder');
    if (!checked.ok) return checked;
    const dir = join(this.root, 'data', language);
    const outOfDir = this.leadsOut(`data/${language}`, dir);
    if (outOfDir !== undefined) return err(outOfDir);
    try {
      const names = (await readdir(dir)).filter((n) => n.endsWith('.parquet')).sort(cmp);
      const out: ManifestEntry[] = [];
      for (const name of names) {
        const c = checkRemoteName(name, 'file');
        if (!c.ok) return c;
        const path = join(dir, name);
        const outOfFile = this.leadsOut(`data/${language}/${name}`, path);
        if (outOfFile !== undefined) return err(outOfFile);
        let st;
        try {
          st = await stat(path);
        } catch (e) {
          // Listed but not there: a dangling link (an HF cache snapshot whose blob is gone).
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'ENOENT' && code !== 'ELOOP') throw e;
          return err({
            reason: 'invalid-input',
            message: `${path} is listed but cannot be opened (${code}: a broken link?)`,
          });
        }
        out.push({
          path: `data/${language}/${name}`,
          stem: name.slice(0, -'.parquet'.length),
          size: st.size,
          sha256: await this.digest(path, st.size, st.mtimeMs),
        });
      }
      return ok(out);
    } catch (e) {
      return err(notFound(dir, e));
    }
  }

  /**
   * Copies the file to a temporary name beside `dest`, hashing while it streams, and renames it
   * to `dest` only when it matches the entry (the mirror may have changed since discover).
   */
  async download(
    entry: ManifestEntry,
    _revision: string,
    dest: string,
    opts: DownloadOptions,
  ): Promise<Result<{ size: number; sha256: string }>> {
    const checked = checkRepoPath(entry.path, this.url);
    if (!checked.ok) return checked;
    const src = join(this.root, entry.path);
    try {
      if (!(await stat(src)).isFile()) return err(notFound(src, { code: 'ENOENT' }));
    } catch (e) {
      return err(notFound(src, e));
    }
    const outOfFile = this.leadsOut(entry.path, src);
    if (outOfFile !== undefined) return err(outOfFile);
    const tmp = `${dest}.partial`;
    const h = createHash('sha256');
    let size = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _enc, done) {
        h.update(chunk);
        size += chunk.length;
        opts.onBytes?.(chunk.length);
        done(null, chunk);
      },
    });
    try {
      await pipeline(createReadStream(src), tap, createWriteStream(tmp), { signal: opts.signal });
      const got = { size, sha256: h.digest('hex') };
      if (got.size !== entry.size || got.sha256 !== entry.sha256) {
        await rm(tmp, { force: true });
        return err(mismatch(entry, got, this.url));
      }
      await rename(tmp, dest);
      return ok(got);
    } catch (e) {
      await rm(tmp, { force: true });
      return err(convertExceptionToFailure(e, opts.signal));
    }
  }

  /** A local mirror needs no permission: a file that cannot be read fails its download. */
  checkAccess(): Promise<Result<void>> {
    return Promise.resolve(ok(undefined));
  }

  private async digest(path: string, size: number, mtime: number): Promise<string> {
    const k = `${path}\0${size}\0${mtime}`;
    const cached = this.digests.get(k);
    if (cached !== undefined) return cached;
    const h = createHash('sha256');
    for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
    const d = h.digest('hex');
    this.digests.set(k, d);
    return d;
  }
}

/** Whether `path` is (or links to) a directory. */
function isDirectoryOrLinkToOne(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function notFound(path: string, e: unknown): Failure {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return { reason: 'not-found', key: path, message: `${path} does not exist` };
  }
  const known = errnoFailure(e, path);
  if (known !== undefined && known.reason !== 'transient') return known; // EACCES, …
  return { reason: 'transient', message: `${path}: ${(e as Error).message}` };
}
