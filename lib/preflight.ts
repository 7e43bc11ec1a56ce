/**
 * EFFECTS. Checks that run before any task starts, so that a run that cannot work says why in
 * one message (exit 2) instead of failing every task, or hanging:
 *
 *   - the cache dir can be created and written (scratch dirs, downloads, default stores);
 *   - `file://` sources exist: `dataset.source` (an HF-shaped mirror with `data/`) and
 *     `content.source` (a directory of blobs: missing, every blob would count as missing);
 *   - `file://` stores (`bucket`, `state`, `work`) can be created and written.
 *
 * Problems in pipeline.yaml values point at their line (`pipeline.yaml:LINE:COL` + underline).
 * A dry run (`writes: false`) creates nothing: it checks that the sources exist and that the
 * stores' nearest existing directory is writable.
 */
import { constants } from 'node:fs';
import { access, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, parseDocument } from 'yaml';
import { Locator, renderDiagnostics } from './config/diagnostics.js';
import type { PathSegment } from './config/diagnostics.js';
import type { Diagnostic } from './errors.js';
import { ensureDir } from './io/fs/mkdirs.js';
import type { Pipeline } from './model.js';

/** One problem: with a place in pipeline.yaml when a value written there caused it. */
export interface PreflightProblem {
  message: string;
  /** The pipeline.yaml value at fault (absent for a default or a command-line option). */
  path?: PathSegment[];
}

export interface PreflightOptions {
  /** Absolute cache dir (`--cache-dir`). */
  cacheDir: string;
  /** false for a dry run: create nothing, write nothing. */
  writes: boolean;
}

const why = (e: unknown): string => {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
      return 'the filesystem refuses to create it (no such file or directory)';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'read-only filesystem';
    case 'ENOTDIR':
      return 'a file is in the way (not a directory)';
    case 'ENOSPC':
      return 'no space left on the device';
    default:
      return e instanceof Error ? e.message : String(e);
  }
};

/** `file:///x` → `/x`; undefined for other schemes. */
const fileDir = (url: string): string | undefined =>
  url.startsWith('file://') ? fileURLToPath(url) : undefined;

const isDir = async (path: string): Promise<boolean> =>
  (await stat(path).catch(() => undefined))?.isDirectory() === true;

/** Creates `dir` and writes (then removes) a small file in it; the reason it cannot, if any. */
async function writable(dir: string, writes: boolean): Promise<string | undefined> {
  if (!writes) {
    // Dry run: the nearest directory that exists must be writable.
    let p = dir;
    while (!(await isDir(p))) {
      if ((await stat(p).catch(() => undefined)) !== undefined) return why({ code: 'ENOTDIR' });
      if (dirname(p) === p) return 'no such directory';
      p = dirname(p);
    }
    return access(p, constants.W_OK).then(
      () => undefined,
      (e: unknown) => why(e),
    );
  }
  try {
    await ensureDir(dir);
    const probe = join(
      dir,
      `.stackflow-probe-${String(process.pid)}-${randomBytes(4).toString('hex')}`,
    );
    await writeFile(probe, '');
    await unlink(probe);
    return undefined;
  } catch (e) {
    return why(e);
  }
}

/** Every problem the checks find (empty: go ahead). */
export async function preflight(p: Pipeline, o: PreflightOptions): Promise<PreflightProblem[]> {
  const problems: PreflightProblem[] = [];
  const cache = await writable(o.cacheDir, o.writes);
  if (cache !== undefined) {
    problems.push({
      message: `the cache dir ${o.cacheDir} (--cache-dir) is not writable: ${cache}`,
    });
  }
  const mirror = fileDir(p.dataset.source);
  if (mirror !== undefined) {
    const path = ['dataset', 'source'];
    if (!(await isDir(mirror))) {
      problems.push({ path, message: `dataset.source ${p.dataset.source}: directory not found` });
    } else if (!(await isDir(join(mirror, 'data')))) {
      problems.push({
        path,
        message: `dataset.source ${p.dataset.source} has no data/ directory (an HF-shaped mirror holds data/<Language>/*.parquet)`,
      });
    }
  }
  const content = fileDir(p.content.source);
  if (content !== undefined && !(await isDir(content))) {
    problems.push({
      path: ['content', 'source'],
      message: `content.source ${p.content.source}: directory not found (it holds one gzip file per blob id)`,
    });
  }
  for (const name of ['bucket', 'state', 'work'] as const) {
    const dir = fileDir(p[name]);
    if (dir === undefined) continue;
    const problem = await writable(dir, o.writes);
    if (problem === undefined) continue;
    const declared = !dir.startsWith(`${o.cacheDir}/`);
    problems.push({
      ...(declared ? { path: [name] } : {}),
      message: `${name} ${p[name]} cannot be created or written: ${problem}${declared ? '' : ' (the default under --cache-dir)'}`,
    });
  }
  return problems;
}

/**
 * The problems as the user sees them: those with a place in pipeline.yaml as diagnostics
 * (`pipeline.yaml:LINE:COL` + the line + an underline), the others as one `❌` line each.
 */
export async function renderPreflight(p: Pipeline, problems: PreflightProblem[]): Promise<string> {
  const display = relative(process.cwd(), p.file) || p.file;
  const text = await readFile(p.file, 'utf8').catch(() => undefined);
  const lines: string[] = [];
  const diags: Diagnostic[] = [];
  const at =
    text === undefined
      ? undefined
      : (() => {
          const lineCounter = new LineCounter();
          const doc = parseDocument(text, { lineCounter, logLevel: 'silent' });
          return new Locator(text, doc, lineCounter, display);
        })();
  for (const pr of problems) {
    if (pr.path !== undefined && at !== undefined) {
      diags.push({ severity: 'error', message: pr.message, location: at.value(pr.path) });
    } else lines.push(`❌ ${pr.message}`);
  }
  const rendered = renderDiagnostics(diags, new Map(text === undefined ? [] : [[display, text]]));
  return [...lines.map((l) => `${l}\n`), rendered].join('');
}
