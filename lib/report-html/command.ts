/**
 * EFFECTS. `stackflow report [-o report.html] [--watch N]`: gathers the state, renders the page,
 * writes it atomically (a temp file in the same directory, then a rename: a browser reloading
 * it sees the old page or the new one, never half of one). With `--watch`, again every N
 * seconds until interrupted; a round that cannot read the state says so and the next one tries
 * again.
 */
import { rename, rm, writeFile } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Result } from '../errors.js';
import { ok } from '../errors.js';
import type { Session } from '../session.js';
import type { MarkerCache } from './gather.js';
import { gatherReport } from './gather.js';
import { loadWebAssets, renderHtml } from './render.js';
import type { ReportModel } from './types.js';

export interface ReportOptions {
  /** Where the page goes. */
  output: string;
  /** Rewrite every this many seconds until interrupted. */
  watchS?: number;
  /** Stops a `--watch` loop (SIGINT/SIGTERM in the CLI). */
  signal: AbortSignal;
  /** One line for the user per page written, or per failed round. */
  say: (line: string) => void;
  now?: () => number;
}

/** Writes `text` to `path` through a temp file in the same directory and a rename. */
export async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${String(process.pid)}.tmp`);
  try {
    await writeFile(tmp, text);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

const summary = (m: ReportModel, path: string, size: number): string => {
  const t = m.totals;
  return `wrote ${path} (${(size / 1e6).toFixed(2)} MB): ${String(t.done)} of ${String(t.tasks)} tasks done, ${String(t.running)} running, ${String(t.failed)} failed, ${String(t.pending)} pending, ${String(t.blocked)} blocked`;
};

/** One page. */
export async function writeReport(
  s: Session,
  o: Pick<ReportOptions, 'output' | 'now'>,
  cache: MarkerCache = new Map(),
): Promise<Result<{ model: ReportModel; bytes: number }>> {
  const model = await gatherReport(s, cache, o.now);
  if (!model.ok) return model;
  const html = renderHtml(model.value, await loadWebAssets());
  await writeAtomically(o.output, html);
  return ok({ model: model.value, bytes: Buffer.byteLength(html) });
}

/** The command: one page, or a page every `watchS` seconds until `signal` aborts. */
export async function runReport(
  s: Session,
  o: ReportOptions,
): Promise<Result<{ interrupted: boolean }>> {
  const cache: MarkerCache = new Map();
  for (;;) {
    const r = await writeReport(s, o, cache);
    if (!r.ok) {
      if (o.watchS === undefined) return r;
      o.say(`❌ ${r.error.message} (trying again in ${String(o.watchS)} s)`);
    } else o.say(summary(r.value.model, o.output, r.value.bytes));
    if (o.watchS === undefined) return ok({ interrupted: false });
    try {
      await sleep(o.watchS * 1000, undefined, { signal: o.signal });
    } catch {
      return ok({ interrupted: true });
    }
  }
}
