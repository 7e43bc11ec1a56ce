/**
 * shell: a user's own step (a bash command over declared inputs and outputs). What the kind is;
 * run.ts runs it, inputs.ts finds its local input files.
 */
import { defineTask } from '../../lib/task-api.js';

export default defineTask({
  kind: 'shell',
  // 2: values reach the command as variable references (STACKFLOW_LANGUAGE, …), not quoted text.
  version: '2',
  tools: {},
  localInputFiles: async (params, dir) => {
    const { shellInputFiles, strings } = await import('./inputs.js');
    return shellInputFiles(dir, strings(params.inputs));
  },
  run: async (ctx) => (await import('./run.js')).run(ctx),
});
