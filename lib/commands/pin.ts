/**
 * `stackflow pin`: the commit the fleet uses (lib/revision.ts, recorded by this command when
 * nothing is yet) written into the pipeline file in place of its branch or tag (lib/pin.ts).
 */
import { resolve } from 'node:path';
import { pinPipelineFile } from '../pin.js';
import type { Common } from './common.js';
import { EXIT, failureLine, load, say } from './common.js';

export async function cmdPin(o: Common): Promise<number> {
  const loaded = await load(o, { record: true });
  if (typeof loaded === 'number') return loaded;
  const r = await pinPipelineFile(resolve(o.file), loaded.revision, { display: o.file });
  if (!r.ok) {
    say(failureLine(r.error));
    return r.error.reason === 'invalid-input' ? EXIT.usage : EXIT.failed;
  }
  process.stdout.write(`${r.value}\n`);
  return EXIT.ok;
}
