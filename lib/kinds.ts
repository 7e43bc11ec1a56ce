/**
 * The registry of task kinds as lib/ reads it: the one place lib/ reaches into tasks/ (the
 * commands get the registry from here too). Read it inside functions only, never while modules
 * load: tasks/ imports lib/task-api.ts, so this module may be evaluated before the registry is.
 */
import { registry } from '../tasks/index.js';
import type { TaskKind } from './model.js';
import type { KindDefinition } from './task-api.js';

/** Every kind's definition, widened to the shape lib/ handles them in. */
export type Kinds = { readonly [K in TaskKind]: KindDefinition };

/** The registry (tasks/index.ts). */
export const kinds = (): Kinds => registry;

/** Kind names in registry order. */
export const kindNames = (): TaskKind[] => Object.keys(registry) as TaskKind[];

/** The kind named `name`, if stackflow knows one. */
export const kindNamed = (name: unknown): TaskKind | undefined =>
  typeof name === 'string' && Object.hasOwn(registry, name) ? (name as TaskKind) : undefined;

/** One kind's definition. */
export const kindOf = (kind: TaskKind): KindDefinition => kinds()[kind];
