/**
 * The system tests (`npm run test:system`) need packages from the machine, not from npm: a real
 * Slurm (slurm-wlm, slurmctld, slurmd, slurm-client, munge) run as root. Without them they skip
 * and say so loudly; STACKFLOW_REQUIRE_SYSTEM=1 (set by .ci/run, which installs them) turns each
 * skip into a failure. STACKFLOW_REQUIRE_SLURM=1 is still honoured for Slurm.
 */
export function required(what: 'slurm' | 'browser'): boolean {
  if (process.env.STACKFLOW_REQUIRE_SYSTEM === '1') return true;
  return what === 'slurm' && process.env.STACKFLOW_REQUIRE_SLURM === '1';
}

/** Prints a banner when a system test skips; returns whether it runs. */
export function announce(what: 'slurm' | 'browser', reason: string | undefined): boolean {
  if (reason === undefined) return true;
  if (required(what)) return true;
  console.warn(
    `\n${'!'.repeat(78)}\n!! SKIPPING the ${what} tests: ${reason}\n!! ` +
      `(STACKFLOW_REQUIRE_SYSTEM=1 makes this a failure)\n${'!'.repeat(78)}\n`,
  );
  return false;
}
