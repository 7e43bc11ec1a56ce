/**
 * What a running process costs, read from /proc (Linux), for bench/scale.ts: resident memory,
 * the machine's busy CPU, and CPU time per thread grouped by what the thread does.
 *
 * Node 20 names every thread `node`, so a thread's group is read from its behaviour and kept once
 * known (ThreadSampler, sampled every 250 ms while pack runs):
 *
 *   main     the JS main thread (tid = pid): stackflow, the SDK, DuckDB's calls, part writing
 *   workers  worker_threads started after the sampler's first look (pack's line workers: gunzip,
 *            decode, JSON lines): a thread with its own event loop, i.e. seen waiting in
 *            epoll_wait / epoll_pwait (/proc/<pid>/task/<tid>/syscall)
 *   native   every other thread: V8's platform (GC, compilation), the libuv pool (pack's zstd
 *            compression, fs: Node 20 does not name them either; scale-zstd.ts prices zstd), DuckDB's
 *   exited   CPU of threads gone between two samples (/proc/<pid>/stat counts them, the task
 *            list no longer does); at most 250 ms per thread is missed by the per-thread groups
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export type ThreadGroup = 'main' | 'workers' | 'native' | 'exited';
export const THREAD_GROUPS: readonly ThreadGroup[] = ['main', 'workers', 'native', 'exited'];

const TICKS = 100; // USER_HZ on Linux
/** x86_64 and arm64 numbers of epoll_wait, epoll_pwait, epoll_pwait2. */
const EPOLL_SYSCALLS = new Set(['232', '281', '441', '22']);

/** CPU seconds (user + system) from a /proc stat line. */
function statCpu(stat: string): { comm: string; cpu: number } {
  const close = stat.lastIndexOf(')');
  const comm = stat.slice(stat.indexOf('(') + 1, close);
  const f = stat.slice(close + 2).split(' ');
  // Fields after the comm: state is [0]; utime [11], stime [12].
  return { comm, cpu: (Number(f[11]) + Number(f[12])) / TICKS };
}

const read = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

/** The CPU seconds of the whole process (live and exited threads); undefined once it is gone. */
export function processCpu(pid: number): number | undefined {
  const s = read(`/proc/${String(pid)}/stat`);
  return s === undefined ? undefined : statCpu(s).cpu;
}

/**
 * Follows one process's threads: `sample()` as often as convenient, `since(start)` for the CPU by
 * group between two snapshots.
 */
export class ThreadSampler {
  private readonly known = new Map<string, ThreadGroup>();
  private readonly before = new Set<string>();
  private readonly eventLoops = new Set<string>();
  private readonly last = new Map<string, number>();
  private first = true;

  constructor(private readonly pid: number) {}

  /** Looks at every thread once; returns the CPU by group so far (undefined once gone). */
  sample(): Record<ThreadGroup, number> | undefined {
    const pid = String(this.pid);
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      return undefined;
    }
    for (const t of tids) {
      const stat = read(`/proc/${pid}/task/${t}/stat`);
      if (stat === undefined) continue; // ended between the listing and the read
      const { cpu } = statCpu(stat);
      this.last.set(t, cpu);
      if (this.first) this.before.add(t);
      if (this.known.has(t)) continue;
      if (t === pid) this.known.set(t, 'main');
      else {
        const sc = read(`/proc/${pid}/task/${t}/syscall`)?.split(' ')[0];
        if (sc !== undefined && EPOLL_SYSCALLS.has(sc)) this.eventLoops.add(t);
      }
    }
    this.first = false;
    const total = processCpu(this.pid);
    if (total === undefined) return undefined;
    return this.snapshot(total);
  }

  private groupOf(t: string): ThreadGroup {
    const k = this.known.get(t);
    if (k !== undefined) return k;
    // An event loop that was there at the first look is Node's own (its delayed-task thread).
    return this.eventLoops.has(t) && !this.before.has(t) ? 'workers' : 'native';
  }

  private snapshot(total: number): Record<ThreadGroup, number> {
    const out: Record<ThreadGroup, number> = { main: 0, workers: 0, native: 0, exited: 0 };
    let seen = 0;
    for (const [t, cpu] of this.last) {
      out[this.groupOf(t)] += cpu;
      seen += cpu;
    }
    out.exited = Math.max(0, total - seen);
    return out;
  }
}

/** a − b per group. */
export function cpuSince(
  a: Record<ThreadGroup, number>,
  b: Record<ThreadGroup, number>,
): Record<ThreadGroup, number> {
  return Object.fromEntries(THREAD_GROUPS.map((g) => [g, a[g] - b[g]])) as Record<
    ThreadGroup,
    number
  >;
}

/** Sum of the groups. */
export const cpuTotal = (c: Record<ThreadGroup, number>): number =>
  THREAD_GROUPS.reduce((a, g) => a + c[g], 0);

/** Resident memory in MB, or undefined once the process is gone. */
export function rssMb(pid: number): number | undefined {
  const m = /VmRSS:\s+(\d+) kB/.exec(read(`/proc/${String(pid)}/status`) ?? '');
  return m?.[1] === undefined ? undefined : Number(m[1]) / 1024;
}

/** The machine's busy and total CPU seconds since boot, all cores (/proc/stat). */
export function machineCpu(): { busy: number; total: number } {
  const line = (read('/proc/stat') ?? '').split('\n')[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0) / TICKS;
  // idle and iowait are fields 3 and 4.
  const idle = ((f[3] ?? 0) + (f[4] ?? 0)) / TICKS;
  return { busy: total - idle, total };
}

/** Bytes of regular files under dir (0 if it does not exist). */
export function dirBytes(dir: string): number {
  let total = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true, recursive: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    if (!e.isFile()) continue;
    try {
      total += statSync(join(e.parentPath, e.name)).size;
    } catch {
      // Renamed or removed while listing.
    }
  }
  return total;
}
