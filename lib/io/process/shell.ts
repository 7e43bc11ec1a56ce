/**
 * The shell port: a zx `$` configured per task (cwd, env, signal, quiet), never the global one.
 * The CLI imports this module only when it runs something (`loadShell`), so commands that run
 * nothing (a dry run, status) never pay zx's ~60 ms import.
 *
 * Every command runs in its own process group, and an abort kills the whole group: zx alone
 * kills only `bash`, and the `sleep` or `s5cmd` that bash started would run on as an orphan.
 * `killAllGroups` (process-groups.ts) does that for every command still running, for a process
 * about to exit.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { $ as zx$ } from 'zx';
import type { Shell } from 'zx';
import { addGroup, killGroup, removeGroup } from './process-groups.js';

export interface ShellOptions {
  cwd: string;
  env?: Record<string, string>;
  signal: AbortSignal;
  /** Called for every chunk a command writes (stdout or stderr): its progress. */
  onOutput?: () => void;
}

export type { Shell };

export function makeShell(opts: ShellOptions): Shell {
  const spawnGroup = ((...args: Parameters<typeof spawn>): ChildProcess => {
    const [cmd, argv, options] = args as [string, readonly string[], object];
    const child = spawn(cmd, argv, { ...options, detached: true });
    const pid = child.pid;
    if (pid !== undefined) {
      addGroup(pid);
      const onAbort = (): void => {
        killGroup(pid, 'SIGTERM');
      };
      opts.signal.addEventListener('abort', onAbort, { once: true });
      child.once('exit', () => {
        removeGroup(pid);
        opts.signal.removeEventListener('abort', onAbort);
        // What bash left behind in its group (background jobs) goes with it.
        killGroup(pid, 'SIGTERM');
      });
    }
    const onOutput = opts.onOutput;
    if (onOutput !== undefined) {
      // null when zx asks for inherited or ignored stdio
      const streams: (Readable | null)[] = [child.stdout, child.stderr];
      for (const s of streams) s?.on('data', onOutput);
    }
    return child;
  }) as typeof spawn;
  return zx$({
    cwd: opts.cwd,
    env: { ...process.env, ...(opts.env ?? {}) },
    signal: opts.signal,
    quiet: true,
    verbose: false,
    nothrow: false,
    spawn: spawnGroup,
  });
}

export { quote } from 'zx';
