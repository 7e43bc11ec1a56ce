/**
 * What every loopback test server run as a child process shares (test/servers/s3, test/servers/swh):
 * spawn it, wait for its one stdout line `{"port":N}` (failing with its stderr if it exits, errs
 * or stays silent), echo its stderr into the test log under a tag, and stop it (SIGTERM, then
 * SIGKILL after 5 s). The server side's contract: listen on `--port 0`, print the port line and
 * nothing else on stdout, exit when stdin closes (`--exit-on-stdin-close`) so that a test runner
 * killed hard leaves no server behind.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess, ChildProcessByStdio, SpawnOptions } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { createInterface } from 'node:readline';

export interface ServerChild {
  child: ChildProcess;
  port: number;
  /** `http://127.0.0.1:PORT` */
  endpoint: string;
  /** The child's pid (-1 if the OS gave none). */
  pid: number;
  /** The last 200 lines it wrote to stderr. */
  stderr: readonly string[];
  /** Stops it; resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
}

export interface ServerChildOptions {
  /** Tags its stderr lines in the test log and its errors, e.g. `s3-test-server`. */
  name: string;
  command: string;
  args: readonly string[];
  cwd?: string;
  env?: SpawnOptions['env'];
  /** How long to wait for the port line. Default 30 s. */
  startTimeoutMs?: number;
  /** Where its stderr lines go besides the kept tail (default: this process's stderr). */
  echo?: (line: string) => void;
}

const STDERR_LINES = 200;

/** Spawns the server and resolves once it printed its port; rejects (and kills it) otherwise. */
export async function startServerChild(o: ServerChildOptions): Promise<ServerChild> {
  const child = spawn(o.command, [...o.args], {
    cwd: o.cwd,
    env: o.env ?? process.env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stderr: string[] = [];
  const echo =
    o.echo ??
    ((line: string) => {
      process.stderr.write(`[${o.name}] ${line}\n`);
    });
  createInterface({ input: child.stderr }).on('line', (line) => {
    stderr.push(line);
    if (stderr.length > STDERR_LINES) stderr.shift();
    echo(line);
  });
  let port: number;
  try {
    port = await readPort(child, stderr, o.name, o.startTimeoutMs ?? 30_000);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  let stopped: Promise<void> | undefined;
  return {
    child,
    port,
    endpoint: `http://127.0.0.1:${String(port)}`,
    pid: child.pid ?? -1,
    stderr,
    stop() {
      stopped ??= stopChild(child);
      return stopped;
    },
  };
}

/** Waits for the server's one stdout line, `{"port":N}`; fails with its stderr if it exits. */
function readPort(
  child: ChildProcessByStdio<Writable, Readable, Readable>,
  stderr: string[],
  name: string,
  timeoutMs: number,
): Promise<number> {
  return new Promise((resolvePort, reject) => {
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Its last words may still be in the pipe when it exits: give them a moment.
      setTimeout(() => {
        reject(new Error(`${name} did not start: ${why}\n${stderr.join('\n')}`));
      }, 50);
    };
    const timer = setTimeout(() => {
      fail(`no port after ${String(timeoutMs)} ms`);
    }, timeoutMs);
    child.once('exit', (code, signal) => {
      fail(`exited (${String(code ?? signal)})`);
    });
    child.once('error', (err) => {
      fail(err.message);
    });
    createInterface({ input: child.stdout }).once('line', (line) => {
      let port: unknown;
      try {
        port = (JSON.parse(line) as { port?: unknown }).port;
      } catch {
        port = undefined;
      }
      if (typeof port !== 'number' || !Number.isInteger(port) || port <= 0) {
        fail(`unexpected first line ${line}`);
        return;
      }
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolvePort(port);
    });
  });
}

/** SIGTERM, then SIGKILL after 5 s; resolves once the process has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((res) => {
    child.once('exit', () => {
      res();
    });
  });
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
