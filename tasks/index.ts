/**
 * The static registry of task kinds: one line per kind, each a folder `tasks/<kind>/` whose
 * index.ts says what the kind is and whose run.ts (loaded on first use) runs it. A mapped type
 * over TaskKind: adding a kind to lib/model.ts is a compile error here until it has a folder.
 */
import type { TaskKind } from '../lib/model.js';
import type { TaskDefinition } from '../lib/task-api.js';
import cmds from './cmds/index.js';
import discover from './discover/index.js';
import fetch from './fetch/index.js';
import pack from './pack/index.js';
import shell from './shell/index.js';
import stats from './stats/index.js';
import statsMerge from './stats-merge/index.js';
import sync from './sync/index.js';

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
