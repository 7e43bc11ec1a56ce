/**
 * The process groups of shell commands still running (lib/io/process/shell.ts starts each command as a
 * group leader), so that a process about to exit can take them along. Kept apart from shell.ts
 * so that the signal handlers need not load zx.
 */

/** Leaders' pids of the groups still running. */
const groups = new Set<number>();

/** Sends `signal` to the whole group led by `pid`; a group that is gone is fine. */
export function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

export function addGroup(pid: number): void {
  groups.add(pid);
}

export function removeGroup(pid: number): void {
  groups.delete(pid);
}

/** Kills every command still running (SIGKILL): for a process that exits right now. */
export function killAllGroups(): void {
  for (const pid of groups) killGroup(pid, 'SIGKILL');
  groups.clear();
}
