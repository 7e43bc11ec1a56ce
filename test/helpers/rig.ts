/**
 * Integration rig: a temp dir holding a copy of the bundled sample, and a way to run the real CLI
 * (compiled, as a user would) against it and collect its JSON events.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '../..');
export const SAMPLE = join(REPO, 'examples/sample');
const BIN = join(REPO, 'bin/stackflow.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  events: Record<string, unknown>[];
}

export class Rig {
  readonly dir: string;
  /** Extra environment for every CLI process this rig starts (endpoints, credentials). */
  env: Record<string, string> = {};
  constructor(opts: { pipeline?: string } = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'stackflow-rig-'));
    cpSync(join(SAMPLE, 'hf'), join(this.dir, 'hf'), { recursive: true });
    cpSync(join(SAMPLE, 'swh'), join(this.dir, 'swh'), { recursive: true });
    this.writePipeline(opts.pipeline ?? readFileSync(join(SAMPLE, 'pipeline.yaml'), 'utf8'));
  }

  writePipeline(text: string): void {
    writeFileSync(join(this.dir, 'pipeline.yaml'), text);
  }

  get cache(): string {
    return join(this.dir, 'cache');
  }

  /** Starts the CLI in the rig dir (stdout is a pipe, so events are JSON lines). */
  start(args: string[]): ChildProcess {
    return spawn(process.execPath, [BIN, ...args], {
      cwd: this.dir,
      env: { ...process.env, FORCE_COLOR: '0', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  run(args: string[]): Promise<CliResult> {
    return collect(this.start(args));
  }

  /** sha256 of every file under the given cache subdirs, by relative path. */
  outputs(subdirs = ['bucket', 'work']): Map<string, string> {
    const out = new Map<string, string>();
    for (const sub of subdirs) {
      const root = join(this.cache, sub);
      for (const f of walk(root)) {
        out.set(
          `${sub}/${relative(root, f)}`,
          createHash('sha256').update(readFileSync(f)).digest('hex'),
        );
      }
    }
    return out;
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function collect(child: ChildProcess): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolvePromise) => {
    child.on('close', (code, signal) => {
      resolvePromise({ code, signal, stdout, stderr, events: parseEvents(stdout) });
    });
  });
}

export function parseEvents(stdout: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const l of stdout.split('\n')) {
    if (!l.startsWith('{"')) continue;
    try {
      out.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // not an event line (e.g. pretty-printed JSON output)
    }
  }
  return out;
}

export const started = (r: CliResult): string[] =>
  r.events.filter((e) => e.type === 'task-started').map((e) => String(e.task));

export function walk(root: string): string[] {
  let st;
  try {
    st = statSync(root);
  } catch {
    return [];
  }
  if (!st.isDirectory()) return [root];
  return readdirSync(root)
    .filter((n) => n !== '.tmp' && n !== '.locks' && n !== 'tmp')
    .flatMap((n) => walk(join(root, n)))
    .sort();
}

export { BIN };
