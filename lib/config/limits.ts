/**
 * A stage's time limits: `timeout` (the longest one attempt may run) and `stall_timeout` (the
 * longest it may go without progress), their defaults per kind, and the rule that checks them.
 * The executor enforces them (lib/util/watchdog.ts). Neither is in a fingerprint: they change
 * when a task is given up on, never what it writes.
 *
 * Pure: no I/O.
 */
import type { TaskKind } from '../model.js';
import { kindOf } from '../kinds.js';
import { formatDuration, parseDuration } from '../util/duration.js';
import { pathLabel, quote } from './diagnostics.js';
import type { Rule } from './rules.js';

/** A stage's resolved limits in ms; absent: no limit. */
export interface TimeLimits {
  timeoutMs?: number;
  stallTimeoutMs?: number;
}

/**
 * A kind's default limits, as its folder declares them (`limits`): hours for the kinds that move
 * one parquet, none where a task may legitimately take long or stay silent (tasks/<kind>/index.ts
 * says why for each).
 */
export const defaultLimits = (kind: TaskKind): { timeout?: string; stall?: string } =>
  kindOf(kind).limits ?? {};

const FIELDS = [
  ['timeout', 'timeout'],
  ['stall_timeout', 'stall'],
] as const;

/** `none`/`off` switch a limit off, also a kind's default. */
const isOff = (v: string): boolean => ['none', 'off'].includes(v.trim().toLowerCase());

/** The stage's limits: as declared, else the kind's default (declarations were checked). */
export function stageLimits(
  kind: TaskKind,
  declared: Readonly<Record<string, unknown>>,
): TimeLimits {
  const out: TimeLimits = {};
  for (const [field, which] of FIELDS) {
    const given = declared[field];
    const text = typeof given === 'string' ? given : defaultLimits(kind)[which];
    if (text === undefined || isOff(text)) continue;
    const ms = parseDuration(text);
    if (!ms.ok) continue;
    if (which === 'timeout') out.timeoutMs = ms.value;
    else out.stallTimeoutMs = ms.value;
  }
  return out;
}

/** `timeout` and `stall_timeout` are durations (or `none`). */
export const timeLimits: Rule = (ctx) => {
  for (const s of ctx.stages) {
    for (const [field] of FIELDS) {
      const value = s.declared[field];
      if (typeof value !== 'string' || isOff(value)) continue; // other types: schema error
      const ms = parseDuration(value);
      if (ms.ok) continue;
      const path = ['tasks', s.name, field];
      ctx.report({
        message: `${pathLabel(path)} ${quote(value)} ${ms.error}, or none`,
        location: ctx.at.value(path),
      });
    }
    const t = typeof s.declared['timeout'] === 'string' ? s.declared['timeout'] : undefined;
    const st = s.declared['stall_timeout'];
    if (t === undefined || typeof st !== 'string') continue;
    const a = parseDuration(t);
    const b = parseDuration(st);
    if (a.ok && b.ok && b.value >= a.value) {
      const path = ['tasks', s.name, 'stall_timeout'];
      ctx.report({
        message: `${pathLabel(path)} ${quote(st)} is not shorter than timeout ${formatDuration(a.value)}, so it never fires`,
        location: ctx.at.value(path),
      });
    }
  }
};
