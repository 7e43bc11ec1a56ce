/**
 * The shell port: a zx `$` configured per task (cwd, env, signal, quiet), never the global one.
 * The CLI imports this module only when it runs something (`loadShell`), so commands that run
 * nothing (a dry run, status) never pay zx's ~60 ms import.
 */
import { $ as zx$ } from 'zx';
import type { Shell } from 'zx';

export interface ShellOptions {
  cwd: string;
  env?: Record<string, string>;
  signal: AbortSignal;
}

export type { Shell };

export function makeShell(opts: ShellOptions): Shell {
  return zx$({
    cwd: opts.cwd,
    env: { ...process.env, ...(opts.env ?? {}) },
    signal: opts.signal,
    quiet: true,
    verbose: false,
    nothrow: false,
  });
}

export { quote } from 'zx';
