/**
 * A local HF-shaped mirror (`file://<root>` holding `data/<Language>/train-*.parquet`), the
 * embedded default source. A mirror has no revisions: the pinned revision from pipeline.yaml is
 * taken as is. sha256 is computed by reading each file (cached by path, size and mtime).
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import type { Failure, Result } from '../errors.js';
import { err, ok } from '../errors.js';
import { cmp } from '../fingerprint.js';
import type { ManifestEntry } from '../model.js';
import type { HubSource } from './hub.js';
import { checkRemoteName } from './hub.js';

export class MirrorHub implements HubSource {
  readonly url: string;
  private readonly digests = new Map<string, string>();

  constructor(private readonly root: string) {
    this.url = `file://${root}`;
  }

  resolveRevision(revision: string): Promise<Result<string>> {
    return Promise.resolve(ok(revision));
  }

  async listLanguages(): Promise<Result<string[]>> {
    try {
      const ents = await readdir(join(this.root, 'data'), { withFileTypes: true });
      const names = ents.filter((e) => e.isDirectory()).map((e) => e.name);
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
    try {
      const names = (await readdir(dir)).filter((n) => n.endsWith('.parquet')).sort(cmp);
      const out: ManifestEntry[] = [];
      for (const name of names) {
        const c = checkRemoteName(name, 'file');
        if (!c.ok) return c;
        const path = join(dir, name);
        const st = await stat(path);
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

  open(entry: ManifestEntry): Promise<Result<Readable>> {
    const path = join(this.root, entry.path);
    return new Promise((resolve) => {
      const s = createReadStream(path);
      s.once('open', () => {
        resolve(ok(s));
      });
      s.once('error', (e) => {
        resolve(err(notFound(path, e)));
      });
    });
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

function notFound(path: string, e: unknown): Failure {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return { reason: 'not-found', key: path, message: `${path} does not exist` };
  }
  return { reason: 'transient', message: `${path}: ${(e as Error).message}` };
}
