/**
 * Every malformed pipeline.yaml, through the real CLI: a located error, exit code 2, no stack
 * trace. The exact rendering is asserted in test/unit/config.test.ts.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { BIN, REPO } from '../helpers/rig.js';

const BAD = join(REPO, 'test/fixtures/pipelines/bad');
const files = readdirSync(BAD)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const run = promisify(execFile);

describe('malformed pipeline files through the CLI', () => {
  it('has at least 20 of them', () => {
    expect(files.length).toBeGreaterThanOrEqual(20);
  });
  for (const command of ['run', 'status']) {
    it.each(files)(`${command}: %s gives a located error and exit 2`, async (file) => {
      const r = await run(
        process.execPath,
        [BIN, command, '-f', join(BAD, file), '--cache-dir', '/nonexistent/never-written'],
        {
          cwd: REPO,
        },
      ).then(
        () => ({ code: 0, stdout: '', stderr: '' }),
        (e: unknown) => e as { code: number; stdout: string; stderr: string },
      );
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(
        new RegExp(`❌ test/fixtures/pipelines/bad/${file.replace(/[.()]/g, '\\$&')}:\\d+:\\d+ `),
      );
      expect(r.stderr).toMatch(/\n\s*~+\n/);
      expect(r.stderr).not.toMatch(/\n\s+at .*\(/);
      expect(r.stdout).toBe('');
    });
  }
  it('a missing file and an unknown flag are usage errors too', async () => {
    const missing = await run(process.execPath, [BIN, 'run', '-f', 'nope.yaml'], {
      cwd: REPO,
    }).catch((e: unknown) => e as { code: number; stderr: string });
    expect(missing).toMatchObject({ code: 2 });
    expect((missing as { stderr: string }).stderr).toContain('cannot read pipeline file nope.yaml');
    const flag = await run(process.execPath, [BIN, 'run', '--frobnicate'], { cwd: REPO }).catch(
      (e: unknown) => e as { code: number },
    );
    expect(flag).toMatchObject({ code: 2 });
  });
});
