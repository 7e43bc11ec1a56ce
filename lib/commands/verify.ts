/**
 * `stackflow verify [targets]`: the command around lib/verify.ts: a live per-stage display on a
 * terminal (stderr), then the table (or `--json`), and the exit code: 1 when anything was found
 * damaged or missing (also with `--repair`, which says what it reset).
 */
import { makePrinter } from '../report.js';
import { renderVerify, verify } from '../verify.js';
import type { Common } from './common.js';
import { EXIT, failureLine, load, say } from './common.js';

/** `verify`'s own options (commander camel-cases the flags). */
export interface VerifyOpts {
  deep?: boolean;
  json?: boolean;
  repair?: boolean;
  jobs: number;
}

export async function cmdVerify(targets: string[], o: Common & VerifyOpts): Promise<number> {
  const loaded = await load(o);
  if (typeof loaded === 'number') return loaded;
  // Progress only where someone watches: stdout is for the report.
  const live = process.stderr.isTTY && o.json !== true;
  const printer = live ? makePrinter(process.stderr, process.stderr) : undefined;
  const r = await verify(
    loaded.session,
    {
      targets,
      deep: o.deep === true,
      jobs: o.jobs,
      repair: o.repair === true,
      emit: (e) => printer?.emit(e),
    },
    (plan) => printer?.start(plan.map((p) => ({ ...p, skipped: 0 }))),
  );
  printer?.close();
  if (!r.ok) {
    say(failureLine(r.error));
    return r.error.reason === 'invalid-input' ? EXIT.usage : EXIT.failed;
  }
  process.stdout.write(
    o.json === true ? JSON.stringify(r.value, null, 2) + '\n' : renderVerify(r.value),
  );
  return r.value.damaged.length > 0 ? EXIT.failed : EXIT.ok;
}
