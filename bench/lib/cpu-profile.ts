/**
 * Summarizes a V8 `.cpuprofile` (what `node --cpu-prof` writes): time per function by self time
 * (where the CPU was) and by total time (self + callees, each sample counted once per function
 * on its stack), with the idle and GC pseudo-frames reported apart.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** One function's share of a profile. */
export interface FunctionTime {
  /** `name (file:line)`, file relative to the repo (or `node:…` for Node internals). */
  fn: string;
  selfMs: number;
  /** Self + callees, each sample counted once per function on its stack. */
  totalMs: number;
  /** Share of the busy (non-idle) time. */
  selfPct: number;
}

export interface ProfileSummary {
  /** Wall time the profile covers. */
  profiledMs: number;
  /** Samples on a JavaScript or native frame (not idle). */
  busyMs: number;
  /** `(garbage collector)`. */
  gcMs: number;
  /** `(idle)`: waiting on I/O or timers. */
  idleMs: number;
  /** Top functions by self time. */
  topSelf: FunctionTime[];
  /** Self time per source file (module), biggest first. */
  byFile: { file: string; selfMs: number; selfPct: number }[];
  /**
   * Self time with Node internals and native calls (stat, readdir, sha256…) charged to the
   * nearest of our own frames on the stack (`ownCode` decides which files are ours): where our
   * code spends, syscalls included. Samples with no own frame are grouped as
   * `(no stackflow frame: startup, module loading)`.
   */
  byOwnCode: { fn: string; ms: number; pct: number }[];
}

function label(n: ProfileNode, repo: string): { fn: string; file: string } {
  const { functionName, url, lineNumber } = n.callFrame;
  let file = url;
  if (url.startsWith('file://')) file = relative(repo, new URL(url).pathname);
  else if (url === '') file = '(native)';
  const name = functionName === '' ? '(anonymous)' : functionName;
  return { fn: url === '' ? name : `${name} (${file}:${String(lineNumber + 1)})`, file };
}

const NO_OWN_FRAME = '(no stackflow frame: startup, module loading)';

/** Reads and summarizes a profile. */
export function summarizeProfile(
  path: string,
  repo: string,
  opts: { top?: number; ownCode?: (file: string) => boolean } = {},
): ProfileSummary {
  const own = opts.ownCode ?? ((f: string) => /^(dist\/)?(lib|tasks)\//.test(f));
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const fileSelf = new Map<string, number>();
  const owned = new Map<string, number>();
  let gc = 0;
  let idle = 0;
  let all = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const ms = (p.timeDeltas[i] ?? 0) / 1000;
    all += ms;
    const leaf = byId.get(p.samples[i] ?? -1);
    if (leaf === undefined) continue;
    const name = leaf.callFrame.functionName;
    if (name === '(idle)') {
      idle += ms;
      continue;
    }
    if (name === '(garbage collector)') gc += ms;
    const l = label(leaf, repo);
    let charged = name.startsWith('(') ? name : NO_OWN_FRAME;
    self.set(l.fn, (self.get(l.fn) ?? 0) + ms);
    fileSelf.set(l.file, (fileSelf.get(l.file) ?? 0) + ms);
    const seen = new Set<string>();
    let found = false;
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id);
      if (n === undefined) break;
      const f = label(n, repo);
      if (!seen.has(f.fn)) total.set(f.fn, (total.get(f.fn) ?? 0) + ms);
      seen.add(f.fn);
      if (!found && own(f.file)) {
        charged = f.fn;
        found = true;
      }
    }
    owned.set(charged, (owned.get(charged) ?? 0) + ms);
  }
  const busy = all - idle;
  const pct = (ms: number): number => Math.round((1000 * ms) / Math.max(busy, 1e-9)) / 10;
  const r = (ms: number): number => Math.round(ms);
  const topSelf = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, opts.top ?? 15)
    .map(([fn, ms]) => ({ fn, selfMs: r(ms), totalMs: r(total.get(fn) ?? ms), selfPct: pct(ms) }));
  const byFile = [...fileSelf.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, opts.top ?? 15)
    .map(([file, ms]) => ({ file, selfMs: r(ms), selfPct: pct(ms) }));
  const byOwnCode = [...owned.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, opts.top ?? 15)
    .map(([fn, ms]) => ({ fn, ms: r(ms), pct: pct(ms) }));
  return {
    profiledMs: r((p.endTime - p.startTime) / 1000),
    busyMs: r(busy),
    gcMs: r(gc),
    idleMs: r(idle),
    topSelf,
    byFile,
    byOwnCode,
  };
}
