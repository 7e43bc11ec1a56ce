/**
 * What a benchmark result was measured on: cores, memory, Node, the OS, and the versions of the
 * reference tools it was compared with, so a figure in bench/results/ can be judged later.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  node: string;
  os: string;
  /** Tool name → first line of its version output, or `absent`. */
  tools: Record<string, string>;
}

/** First line of `cmd args` (stdout, else stderr), or `absent` when it cannot run. */
export function toolVersion(cmd: string, args: readonly string[] = ['--version']): string {
  const r = spawnSync(cmd, [...args], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) return 'absent';
  const text = r.stdout.trim() || r.stderr.trim();
  return text.split('\n')[0]?.trim() ?? 'absent';
}

function osName(): string {
  try {
    const m = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'));
    return `${m?.[1] ?? process.platform} (kernel ${release()})`;
  } catch {
    return `${process.platform} ${release()}`;
  }
}

/** Machine info plus the versions of `tools` (name → command and its version arguments). */
export function machineInfo(
  tools: Readonly<Record<string, readonly [string, ...string[]]>> = {},
): MachineInfo {
  return {
    cores: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    os: osName(),
    tools: Object.fromEntries(
      Object.entries(tools).map(([name, [cmd, ...args]]) => [
        name,
        toolVersion(cmd, args.length > 0 ? args : ['--version']),
      ]),
    ),
  };
}
