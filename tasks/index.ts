/**
 * The registry of task kinds: one line per kind, each a folder `tasks/<kind>/` whose index.ts says
 * what the kind is (params schema, expansion, outputs, limits, version) and whose run.ts (loaded on
 * first use) runs it. Its keys are `TaskKind` (lib/model.ts) and their order is the order kinds
 * are listed in (the schema's `kind` enum, messages).
 */
import cmds from './cmds/index.js';
import discover from './discover/index.js';
import fetch from './fetch/index.js';
import pack from './pack/index.js';
import shell from './shell/index.js';
import stats from './stats/index.js';
import statsMerge from './stats-merge/index.js';
import sync from './sync/index.js';

// Getters, so that loading this module never reads a kind before it is loaded: a kind's module
// imports lib/task-api.ts, whose imports reach this registry (lib/kinds.ts) while it loads.
export const registry = {
  get discover() { return discover; },
  get fetch() { return fetch; },
  get cmds() { return cmds; },
  get sync() { return sync; },
  get pack() { return pack; },
  get stats() { return stats; },
  get 'stats-merge'() { return statsMerge; },
  get shell() { return shell; },
}; // prettier-ignore
