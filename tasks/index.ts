/**
 * The static registry of task kinds. A mapped type over TaskKind: adding a kind to lib/model.ts
 * is a compile error here until it has an implementation.
 */
import type { TaskKind } from '../lib/model.js';
import type { TaskDefinition } from '../lib/task-api.js';
import cmds from './cmds.js';
import discover from './discover.js';
import fetch from './fetch.js';
import pack from './pack/index.js';
import shell from './shell.js';
import stats from './stats.js';
import statsMerge from './stats-merge.js';
import sync from './sync.js';

export const registry: { [K in TaskKind]: TaskDefinition & { kind: K } } = {
  discover: discover as TaskDefinition & { kind: 'discover' },
  fetch: fetch as TaskDefinition & { kind: 'fetch' },
  cmds: cmds as TaskDefinition & { kind: 'cmds' },
  sync: sync as TaskDefinition & { kind: 'sync' },
  pack: pack as TaskDefinition & { kind: 'pack' },
  stats: stats as TaskDefinition & { kind: 'stats' },
  'stats-merge': statsMerge as TaskDefinition & { kind: 'stats-merge' },
  shell: shell as TaskDefinition & { kind: 'shell' },
};

export { shellInputFiles } from './shell.js';
