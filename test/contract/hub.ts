/**
 * The HubSource contract: one suite every parquet source must pass (the local mirror, the Hub
 * through a loopback server), so that a source is "only another implementation". Each test gets a
 * fresh source serving the bundled sample (`examples/sample/hf`).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Failure, Result } from '../../lib/errors.js';
import { cmp } from '../../lib/fingerprint.js';
import type { HubSource } from '../../lib/io/hub/hub.js';
import type { ManifestEntry } from '../../lib/model.js';

export interface HubFixture {
  hub: HubSource;
  /** The revision a pipeline would pin for this source. */
  revision: string;
  /** The directory whose `data/<Language>/*.parquet` the source serves. */
  root: string;
  /** An empty directory for download destinations. */
  scratch: string;
  cleanup: () => Promise<void>;
}

export type MakeHub = () => Promise<HubFixture>;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export function must<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(`expected ok, got ${r.error.reason}: ${r.error.message}`);
  return r.value;
}

export function failure(r: Result<unknown>): Failure {
  if (r.ok) throw new Error('expected a failure, got ok');
  return r.error;
}

export function testHubSource(name: string, make: MakeHub): void {
  describe(`HubSource contract: ${name}`, () => {
    let fx: HubFixture;
    beforeEach(async () => {
      fx = await make();
    });
    afterEach(async () => {
      await fx.cleanup();
    });
    const signal = () => new AbortController().signal;
    const entryOf = async (lang: string, i = 0): Promise<ManifestEntry> => {
      const e = must(await fx.hub.listFiles(lang, fx.revision))[i];
      if (e === undefined) throw new Error(`no file ${i} in ${lang}`);
      return e;
    };

    it('resolves its revision to a stable pin', async () => {
      const pinned = must(await fx.hub.resolveRevision(fx.revision));
      expect(pinned).not.toBe('');
      expect(must(await fx.hub.resolveRevision(pinned))).toBe(pinned);
      expect(fx.hub.url).not.toMatch(/token|hf_/i);
    });

    it('lists language folders sorted, special characters included', async () => {
      const expected = (await readdir(join(fx.root, 'data'))).sort(cmp);
      const langs = must(await fx.hub.listLanguages(fx.revision));
      expect(langs).toEqual(expected);
      expect(langs).toContain('C++');
      expect(langs).toContain('Graphviz_(DOT)');
    });

    it('lists parquet files sorted by path, with their size and sha256', async () => {
      for (const lang of ['C++', 'Graphviz_(DOT)']) {
        const names = (await readdir(join(fx.root, 'data', lang))).sort(cmp);
        const expected = await Promise.all(
          names.map(async (n) => {
            const bytes = await readFile(join(fx.root, 'data', lang, n));
            return {
              path: `data/${lang}/${n}`,
              stem: n.replace(/\.parquet$/, ''),
              size: bytes.length,
              sha256: sha256(bytes),
            };
          }),
        );
        expect(must(await fx.hub.listFiles(lang, fx.revision))).toEqual(expected);
      }
    });

    it('reports a missing language as not-found and an unsafe one as invalid-input', async () => {
      expect(failure(await fx.hub.listFiles('NoSuchLanguage', fx.revision)).reason).toBe(
        'not-found',
      );
      for (const bad of ['..', '.', 'a/b', 'a\\b', ' C', 'nul\0']) {
        expect(failure(await fx.hub.listFiles(bad, fx.revision)).reason, bad).toBe('invalid-input');
      }
    });

    it('downloads a file to dest, verified, reporting progress', async () => {
      const e = await entryOf('C++', 1);
      const dest = join(fx.scratch, 'out.parquet');
      let bytes = 0;
      const got = must(
        await fx.hub.download(e, fx.revision, dest, {
          signal: signal(),
          onBytes: (n) => (bytes += n),
        }),
      );
      expect(got).toEqual({ size: e.size, sha256: e.sha256 });
      const written = await readFile(dest);
      expect(sha256(written)).toBe(e.sha256);
      expect(written.equals(await readFile(join(fx.root, e.path)))).toBe(true);
      expect(bytes).toBe(e.size);
      expect(await readdir(fx.scratch)).toEqual(['out.parquet']);
    });

    it('a file missing at the revision is not-found, and nothing reaches dest', async () => {
      const e = await entryOf('C');
      const dest = join(fx.scratch, 'out.parquet');
      const r = await fx.hub.download(
        { ...e, path: 'data/C/train-00009-of-00010.parquet', stem: 'train-00009-of-00010' },
        fx.revision,
        dest,
        { signal: signal() },
      );
      expect(failure(r).reason).toBe('not-found');
      expect(await readdir(fx.scratch)).toEqual([]);
    });

    it('a wrong sha256 or size is checksum-mismatch naming file, expected and actual; dest stays empty', async () => {
      const e = await entryOf('Shell');
      const dest = join(fx.scratch, 'out.parquet');
      const wrongSha = { ...e, sha256: 'a'.repeat(64) };
      const f = failure(await fx.hub.download(wrongSha, fx.revision, dest, { signal: signal() }));
      expect(f).toMatchObject({ reason: 'checksum-mismatch', key: e.path });
      expect(f.message).toContain(e.path);
      expect(f.message).toContain('a'.repeat(64));
      expect(f.message).toContain(e.sha256);
      expect(existsSync(dest)).toBe(false);
      const wrongSize = { ...e, size: e.size + 1 };
      const g = failure(await fx.hub.download(wrongSize, fx.revision, dest, { signal: signal() }));
      expect(g).toMatchObject({ reason: 'checksum-mismatch', key: e.path });
      expect(g.message).toContain(String(e.size + 1));
      expect(g.message).toContain(String(e.size));
      expect(await readdir(fx.scratch)).toEqual([]);
    });

    it('refuses a manifest path that would escape the source', async () => {
      const e = await entryOf('Shell');
      for (const path of ['data/../../etc/passwd', '/etc/passwd', 'data/a\\b/x.parquet']) {
        const f = failure(
          await fx.hub.download({ ...e, path }, fx.revision, join(fx.scratch, 'x'), {
            signal: signal(),
          }),
        );
        expect(f.reason, path).toBe('invalid-input');
        expect(f.message).toContain(JSON.stringify(path));
      }
      expect(await readdir(fx.scratch)).toEqual([]);
    });

    it('an aborted download fails as aborted and leaves nothing at dest', async () => {
      const e = await entryOf('Python');
      const ac = new AbortController();
      ac.abort();
      const dest = join(fx.scratch, 'out.parquet');
      const f = failure(await fx.hub.download(e, fx.revision, dest, { signal: ac.signal }));
      expect(f.reason).toBe('aborted');
      expect(existsSync(dest)).toBe(false);
    });
  });
}
