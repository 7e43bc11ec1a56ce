/**
 * shell: a user's own step (a bash command over declared inputs and outputs). What the kind is;
 * run.ts runs it, inputs.ts finds its local input files.
 */
import { defineTask, fields } from '../../lib/task-api.js';
import type { ParamsOf, ParamsSchema } from '../../lib/task-api.js';

/** The schema of its `params:` (defaults and key order enter fingerprints: keep them). */
const params = {
  type: 'object',
  additionalProperties: false,
  required: ['command'],
  properties: {
    command: {
      description:
        'bash command, at most 64 KiB; may use {inputs}, {outputs}, {language}, {stem}, {shard}, {stage}, which reach it as variables, never as code.',
      type: 'string',
      minLength: 1,
      maxLength: 65536,
    },
    inputs: {
      description: 'Local globs, relative to the pipeline directory.',
      type: 'array',
      uniqueItems: true,
      items: {
        type: 'string',
        minLength: 1,
        maxLength: 4096,
      },
      default: [],
      maxItems: 1000,
    },
    outputs: {
      description: 'Keys in the work store (templates).',
      type: 'array',
      uniqueItems: true,
      items: {
        type: 'string',
        minLength: 1,
        maxLength: 1024,
      },
      default: [],
      maxItems: 1000,
    },
    env: {
      description: 'Extra environment variables.',
      type: 'object',
      propertyNames: {
        pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
        maxLength: 256,
      },
      additionalProperties: {
        type: 'string',
        maxLength: 32768,
      },
      default: {},
      maxProperties: 1000,
    },
  },
} as const satisfies ParamsSchema;

/** The params a task of this kind gets: validated and defaulted. */
export type ShellParams = ParamsOf<typeof params>;

export default defineTask({
  kind: 'shell',
  // 2: values reach the command as variable references (STACKFLOW_LANGUAGE, …), not quoted text.
  version: '2',
  tools: {},
  params,
  foreach: 'once',
  chooseForeach: true,
  templates: (p) => [
    ...fields(p, 'command', ['inputs', 'outputs']),
    ...['inputs', 'outputs', 'env'].flatMap((key) => fields(p, key)),
  ],
  writes: (p) => fields(p, 'outputs'),
  checks: { command: (v) => (v !== '' && v.trim() === '' ? 'must not be blank' : undefined) },
  // The command is left as written (the task fills it with references, never with values,
  // lib/shell-command.ts); inputs are globs, so values go in as literals.
  templateFields: { command: 'task', inputs: 'glob' },
  // No limits: how long a command runs and what it prints is up to its author.
  outputs: { work: (_task, p) => [...p.outputs] },
  localInputFiles: async (params, dir) => {
    const { shellInputFiles } = await import('./inputs.js');
    return shellInputFiles(dir, params.inputs);
  },
  run: async (ctx) => (await import('./run.js')).run(ctx),
});
