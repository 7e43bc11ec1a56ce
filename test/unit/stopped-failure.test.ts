/**
 * What a task stopped with its run reports: "interrupted" for an interrupt, the run's own
 * reason otherwise (lib/errors.ts `stoppedFailure`); a lost state lock says why it was lost and
 * what to do (lib/commands/run.ts `lockLostFailure`). The taken-over case runs through the CLI
 * in test/integration/lock-lost.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { lockLostFailure } from '../../lib/commands/run.js';
import { SILENT } from '../../lib/epoch-holder.js';
import { convertExceptionToFailure, RunStopped, stoppedFailure } from '../../lib/errors.js';

describe('the failure of a task stopped with its run', () => {
  it('an interrupt (an abort without a reason of ours) is "interrupted"', () => {
    const ac = new AbortController();
    ac.abort();
    expect(stoppedFailure(ac.signal)).toEqual({ reason: 'aborted', message: 'interrupted' });
    expect(convertExceptionToFailure(new Error('x'), ac.signal)).toEqual({
      reason: 'aborted',
      message: 'interrupted',
    });
  });

  it('a run stopped for a reason carries it to every task it stops', () => {
    const ac = new AbortController();
    const failure = lockLostFailure(new Error('state lock lost: another run took it over'));
    ac.abort(new RunStopped(failure));
    expect(stoppedFailure(ac.signal)).toBe(failure);
    expect(convertExceptionToFailure(new Error('socket hang up'), ac.signal)).toBe(failure);
  });

  it('a lock whose heartbeats stopped landing points at the state store', () => {
    const f = lockLostFailure(new Error(`state lock lost: ${SILENT}`));
    expect(f.reason).toBe('lock-lost');
    expect(f.message).toContain(`lost the state lock (${SILENT}: the state store was unreachable`);
    expect(f.message).toContain('`stackflow doctor`');
    expect(f.message).toContain('rerun `stackflow run`');
    expect(f.message).not.toContain('interrupted');
  });
});
