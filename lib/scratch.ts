/**
 * EFFECTS. Tasks' scratch dirs under `<cache>/tmp/`, and sweeping those that killed runs left.
 *
 *   <cache>/tmp/<task>-<random>/         a task's private scratch dir (removed when it ends)
 *   <cache>/tmp/<task>-<random>.owner    who made it: {pid, host, started, at}
 *
 * The owner record is written (create-only) before its dir exists, so every dir this code makes
 * has one. A sweep removes a dir only when its owner is gone: same host, and the pid is dead or
 * now belongs to another process (its start time differs). Dirs of other hosts are never
 * touched (a cache dir shared between hosts); a dir without a record (made by an older version)
 * goes once it is a day old.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ensureDir } from './io/fs/mkdirs.js';

/** Who made a scratch dir. */
export interface ScratchOwner {
  pid: number;
  host: string;
  /** The process's start time as the kernel has it (`/proc/<pid>/stat`), '' where unknown. */
  started: string;
  /** When the dir was made (ISO). */
  at: string;
}

/** A dir without an owner record is swept when it is older than this. */
const ORPHAN_AGE_MS = 86_400_000;
const OWNER = '.owner';

/** A process's start time in clock ticks since boot (Linux); '' elsewhere or when gone. */
export function processStart(pid: number | 'self'): string {
  try {
    const text = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    // Field 22; the command name (field 2) may hold spaces and parentheses: count after ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? '';
  } catch {
    return '';
  }
}

const me = (): ScratchOwner => ({
  pid: process.pid,
  host: hostname(),
  started: processStart('self'),
  at: new Date().toISOString(),
});

/** Whether the process that wrote `o` is still running (on this host; other hosts: assumed). */
export function ownerAlive(o: ScratchOwner): boolean {
  if (o.host !== hostname()) return true;
  try {
    process.kill(o.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  // The pid lives; it is our owner only if it started when the owner did (pids are reused).
  const now = processStart(o.pid);
  return o.started === '' || now === '' || now === o.started;
}

/** A fresh, empty scratch dir for `taskId`, with its owner record. */
export async function makeScratch(cacheDir: string, taskId: string): Promise<string> {
  const tmp = join(cacheDir, 'tmp');
  await ensureDir(tmp);
  const name = `${taskId.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 100)}-${randomBytes(6).toString('hex')}`;
  const dir = join(tmp, name);
  await writeFile(dir + OWNER, JSON.stringify(me()) + '\n', { flag: 'wx' });
  await mkdir(dir);
  return dir;
}

/** Removes a scratch dir and its owner record. */
export async function dropScratch(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await rm(dir + OWNER, { force: true });
}

function parseOwner(text: string): ScratchOwner | undefined {
  try {
    const o = JSON.parse(text) as Partial<ScratchOwner>;
    if (typeof o.pid !== 'number' || typeof o.host !== 'string') return undefined;
    return {
      pid: o.pid,
      host: o.host,
      started: typeof o.started === 'string' ? o.started : '',
      at: typeof o.at === 'string' ? o.at : '',
    };
  } catch {
    return undefined;
  }
}

/** What a sweep did. */
export interface SweepResult {
  /** Dirs removed (owner gone). */
  removed: string[];
  /** Dirs kept because their owner still runs (or runs on another host). */
  kept: number;
}

/** Removes the scratch dirs under `<cacheDir>/tmp` whose owner is gone; see the file comment. */
export async function sweepScratch(cacheDir: string): Promise<SweepResult> {
  const tmp = join(cacheDir, 'tmp');
  const out: SweepResult = { removed: [], kept: 0 };
  const names = await readdir(tmp).catch(() => [] as string[]);
  const present = new Set(names);
  for (const name of names) {
    const path = join(tmp, name);
    try {
      if (name.endsWith(OWNER)) {
        // A record whose dir is gone (removed, or never made): drop it once its owner is gone.
        if (present.has(name.slice(0, -OWNER.length))) continue;
        const o = parseOwner(await readFile(path, 'utf8'));
        if (o === undefined || !ownerAlive(o)) await rm(path, { force: true });
        continue;
      }
      const st = await stat(path);
      if (!st.isDirectory()) continue;
      const record = present.has(name + OWNER)
        ? parseOwner(await readFile(path + OWNER, 'utf8'))
        : undefined;
      const gone =
        record === undefined ? Date.now() - st.mtimeMs > ORPHAN_AGE_MS : !ownerAlive(record);
      if (!gone) {
        out.kept++;
        continue;
      }
      await dropScratch(path);
      out.removed.push(name);
    } catch {
      // Best effort: something that vanished or resists removal must not stop a run.
    }
  }
  return out;
}
