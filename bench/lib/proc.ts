/**
 * What a running process costs, read from /proc (Linux): resident memory, and CPU time per
 * thread grouped by what the thread is (Node names its threads), for bench/scale.ts.
 *
 *   main     the JS main thread (tid = pid): stackflow, the SDK, DuckDB's calls, the zstd writer
 *   workers  worker_threads (pack's line workers: gunzip, decode, JSON lines)
 *   libuv    the libuv pool: zstd compression (@mongodb-js/zstd), fs, DNS
 *   v8       V8's platform threads: GC, compilation
 *   other    anything else (DuckDB's own threads, Node's inspector …)
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export type ThreadGroup = 'main' | 'workers' | 'libuv' | 'v8' | 'other';
export const THREAD_GROUPS: readonly ThreadGroup[] = ['main', 'workers', 'libuv', 'v8', 'other'];

const TICKS = 100; // USER_HZ on Linux

function groupOf(pid: number, tid: number, comm: string): ThreadGroup {
  if (tid === pid) return 'main';
  if (/^WorkerThread|^node:worker/i.test(comm)) return 'workers';
  if (/^libuv-worker/.test(comm)) return 'libuv';
  if (/^V8 |^V8_/.test(comm)) return 'v8';
  return 'other';
}

/** CPU seconds per thread group so far; undefined once the process is gone. */
export function threadCpu(pid: number): Record<ThreadGroup, number> | undefined {
  const out: Record<ThreadGroup, number> = { main: 0, workers: 0, libuv: 0, v8: 0, other: 0 };
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${String(pid)}/task`);
  } catch {
    return undefined;
  }
  for (const t of tids) {
    try {
      const stat = readFileSync(`/proc/${String(pid)}/task/${t}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const f = stat.slice(close + 2).split(' ');
      // Fields after the comm: state is [0]; utime [11], stime [12].
      const cpu = (Number(f[11]) + Number(f[12])) / TICKS;
      out[groupOf(pid, Number(t), comm)] += cpu;
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

/** Resident memory in MB, or undefined once the process is gone. */
export function rssMb(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${String(pid)}/status`, 'utf8'));
    return m?.[1] === undefined ? undefined : Number(m[1]) / 1024;
  } catch {
    return undefined;
  }
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

/** Sum of the groups. */
export const cpuTotal = (c: Record<ThreadGroup, number>): number =>
  THREAD_GROUPS.reduce((a, g) => a + c[g], 0);
