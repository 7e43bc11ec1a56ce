/**
 * `stackflow submit slurm` where no cluster is needed: --dry-run prints the script, a missing
 * sbatch is explained, bad options exit 2. The real-Slurm tests are system tests
 * (test/system/slurm.test.ts, `npm run test:system`).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Rig } from '../helpers/rig.js';

/** A directory holding bash (zx needs it) and, optionally, a stand-in sbatch; nothing else. */
function binDir(rig: Rig, sbatch?: string): string {
  const dir = mkdtempSync(join(rig.dir, 'bin-'));
  symlinkSync(execFileSync('bash', ['-c', 'command -v bash']).toString().trim(), join(dir, 'bash'));
  if (sbatch !== undefined) {
    writeFileSync(join(dir, 'sbatch'), `#!/bin/bash\n${sbatch}\n`);
    chmodSync(join(dir, 'sbatch'), 0o755);
  }
  return dir;
}

describe('stackflow submit slurm, without a cluster', () => {
  const rig = new Rig();
  afterAll(() => {
    rig.cleanup();
  });

  it('--dry-run prints the script and submits nothing', async () => {
    const calls = join(rig.dir, 'sbatch-calls');
    rig.env = { PATH: binDir(rig, `echo "$@" >> '${calls}'; echo 1`) };
    const r = await rig.run(['submit', 'slurm', 'pack', '--workers', '2', '--dry-run']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^#!\/bin\/bash\n#SBATCH --job-name=stackflow\n#SBATCH --array=0-1\n/);
    expect(r.stdout).toContain(`#SBATCH --output=${rig.cache}/slurm-logs/%A_%a.out\n`);
    expect(r.stdout).toContain(
      ` run pack --worker --worker-id "slurm-\${SLURM_ARRAY_JOB_ID}-\${SLURM_ARRAY_TASK_ID}" -f ${rig.dir}/pipeline.yaml --cache-dir ${rig.cache} --json\n`,
    );
    expect(existsSync(calls)).toBe(false);
    expect(existsSync(join(rig.cache, 'slurm-logs'))).toBe(false);
  });

  it('says what to do when sbatch is not installed', async () => {
    rig.env = { PATH: binDir(rig) };
    const r = await rig.run(['submit', 'slurm', '--workers', '2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^❌ cannot run sbatch: the Slurm client is not installed here or not on PATH \(.*sbatch.*\)\. Submit the script from a Slurm login node: sbatch \/.*\/cache\/slurm-logs\/submit-.*\.sbatch\n$/,
    );
  });

  it('exits 2 on a bad --workers', async () => {
    rig.env = {};
    const r = await rig.run(['submit', 'slurm', '--workers', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--workers must be a positive integer/);
  });
});
