import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { StatFs } from '../../lib/io/fs/disk.js';
import { PartFile, SpaceReservations, checkFreeSpace, formatGB } from '../../lib/io/fs/disk.js';

const disk =
  (free: number): StatFs =>
  () =>
    Promise.resolve({ bavail: free / 4096, bsize: 4096 });

describe('checkFreeSpace', () => {
  it('passes when there is room (the real statfs of the temp dir has a byte)', async () => {
    const r = await checkFreeSpace(tmpdir(), 1, 'a test');
    expect(r.ok).toBe(true);
  });

  it('fails early with both numbers in GB (and in bytes)', async () => {
    const r = await checkFreeSpace('/data', 2_500_000_000, 'downloading data/C/x.parquet', {
      statfs: disk(1_200_000_000 - (1_200_000_000 % 4096)),
    });
    expect(r).toEqual({
      ok: false,
      error: {
        reason: 'invalid-input',
        message:
          'not enough disk space in /data for downloading data/C/x.parquet: needs 2.50 GB, only 1.20 GB free (2500000000 bytes needed, 1199996928 available)',
      },
    });
  });

  it('names a statfs failure', async () => {
    const r = await checkFreeSpace('/nope', 1, 'x', {
      statfs: () => Promise.reject(new Error('ENOENT: no such file or directory')),
    });
    expect(r.ok ? '' : r.error.message).toBe(
      'cannot check free space in /nope for x: ENOENT: no such file or directory',
    );
  });

  it('formats decimal gigabytes', () => {
    expect(formatGB(2_871_234_567)).toBe('2.87 GB');
  });
});

describe('SpaceReservations', () => {
  it('counts bytes promised to downloads in flight, and frees them on release', async () => {
    const space = new SpaceReservations();
    const a = await space.reserve('/d', 600, 'a', disk(4096));
    if (!a.ok) throw new Error(a.error.message);
    const [b, c] = await Promise.all([
      space.reserve('/d', 3000, 'b', disk(4096)),
      space.reserve('/d', 3000, 'c', disk(4096)),
    ]);
    // Concurrent checks see each other: only one of b and c fits next to a.
    expect([b.ok, c.ok].sort()).toEqual([false, true]);
    const lost = b.ok ? c : b;
    expect(lost.ok ? '' : lost.error.message).toContain(
      'plus 0.00 GB reserved by downloads in flight',
    );
    expect(space.total).toBe(3600);
    a.value.release();
    a.value.release(); // idempotent
    expect(space.total).toBe(3000);
  });
});

describe('PartFile', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const temp = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'stackflow-part-'));
    dirs.push(d);
    return join(d, 'x.part');
  };
  const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
  async function* chunks(parts: string[], fail?: Error): AsyncGenerator<Uint8Array> {
    for (const p of parts) {
      await Promise.resolve();
      yield Buffer.from(p);
    }
    if (fail) throw fail;
  }

  it('resumes a prefix left on disk, hashing it, and appends the rest', async () => {
    const path = temp();
    writeFileSync(path, 'hello ');
    const f = await PartFile.resume(path, 11);
    expect(f.offset).toBe(6);
    expect(await f.append(chunks(['wor', 'ld']), { limit: 11 })).toEqual({});
    expect(f.offset).toBe(11);
    expect(f.digest()).toBe(sha('hello world'));
    expect(readFileSync(path, 'utf8')).toBe('hello world');
  });

  it('deletes a file longer than the download: it cannot be a prefix', async () => {
    const path = temp();
    writeFileSync(path, 'far too long');
    const f = await PartFile.resume(path, 4);
    expect(f.offset).toBe(0);
    expect(existsSync(path)).toBe(false);
  });

  it('after a broken stream, counts exactly the bytes on disk and returns the error', async () => {
    const path = temp();
    const f = await PartFile.resume(path, 100);
    const seen: number[] = [];
    const boom = new Error('reset');
    const r = await f.append(chunks(['abc', 'de'], boom), {
      limit: 100,
      onBytes: (n) => seen.push(n),
    });
    expect(r).toEqual({ error: boom });
    expect(f.offset).toBe(5);
    expect(seen).toEqual([3, 2]);
    expect(readFileSync(path, 'utf8')).toBe('abcde');
    await f.append(chunks(['f']), { limit: 100 });
    expect(f.digest()).toBe(sha('abcdef'));
  });

  it('restart truncates on the next append; reading stops past the limit', async () => {
    const path = temp();
    writeFileSync(path, 'stale');
    const f = await PartFile.resume(path, 10);
    f.restart();
    expect(f.offset).toBe(0);
    await f.append(chunks(['0123', '4567', '89ab', 'never']), { limit: 6 });
    expect(readFileSync(path, 'utf8')).toBe('01234567');
    expect(f.offset).toBe(8);
  });
});
