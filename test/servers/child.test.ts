/**
 * The child-process start shared by the loopback servers (child.ts): the port handshake, and every
 * way a server can fail to start, each reported with what it wrote to stderr and leaving no
 * process behind.
 */
import { describe, expect, it } from 'vitest';
import { startServerChild } from './child.js';

/** A node child running `code` (CommonJS), its stderr kept out of the test log. */
const start = (code: string, startTimeoutMs?: number) =>
  startServerChild({
    name: 'fake-server',
    command: process.execPath,
    args: ['-e', code],
    echo: () => undefined,
    ...(startTimeoutMs === undefined ? {} : { startTimeoutMs }),
  });

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('startServerChild', () => {
  it('resolves with the port a server prints and stops it', async () => {
    const server = await start(
      `const s = require('node:http').createServer((q, r) => r.end('hi'));
       s.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: s.address().port })));
       process.on('SIGTERM', () => process.exit(0));`,
    );
    expect(server.endpoint).toBe(`http://127.0.0.1:${String(server.port)}`);
    expect(await (await fetch(server.endpoint)).text()).toBe('hi');
    await server.stop();
    expect(server.child.exitCode ?? server.child.signalCode).not.toBeNull();
    await server.stop(); // idempotent
  });

  it('fails with the stderr of a server that exits before listening', async () => {
    await expect(start(`console.error('bad --config: no'); process.exit(2);`)).rejects.toThrow(
      /fake-server did not start: exited \(2\)\nbad --config: no/,
    );
  });

  it('fails on a first line that is not the port, and kills the server', async () => {
    let pid = -1;
    const got = start(
      `console.log('hello'); console.error('pid ' + process.pid); setInterval(() => {}, 1000);`,
    ).catch((e: unknown) => {
      pid = Number(/pid (\d+)/.exec(String(e))?.[1] ?? -1);
      throw e;
    });
    await expect(got).rejects.toThrow(/unexpected first line hello/);
    await new Promise((r) => setTimeout(r, 200));
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid)).toBe(false);
  });

  it('fails after the timeout when a server stays silent', async () => {
    await expect(start(`setInterval(() => {}, 1000);`, 300)).rejects.toThrow(
      /no port after 300 ms/,
    );
  });

  it('fails when the command cannot be run', async () => {
    await expect(
      startServerChild({
        name: 'fake-server',
        command: '/nonexistent/server',
        args: [],
        echo: () => undefined,
      }),
    ).rejects.toThrow(/fake-server did not start: .*ENOENT/);
  });
});
