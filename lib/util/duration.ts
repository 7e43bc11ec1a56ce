/**
 * Durations as people write them in pipeline.yaml: `90s`, `30m`, `2h`, `1h30m`, `500ms`, `1d`.
 * PURE.
 */
import type { Result } from '../errors.js';
import { err, ok } from '../errors.js';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
type Unit = keyof typeof UNIT_MS;

const WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
/** A month: longer than any task should be allowed to run, and far below timer limits. */
const MAX_MS = 30 * UNIT_MS.d;

/**
 * Milliseconds of a duration such as `1h30m`; the error completes a sentence that starts with the
 * value ("… is not a duration (write …)").
 */
export function parseDuration(text: string): Result<number, string> {
  const t = text.trim();
  if (!WHOLE.test(t)) {
    return err(
      /^\d+(\.\d+)?$/.test(t)
        ? `has no unit (write ${t}s, ${t}m or ${t}h)`
        : 'is not a duration (write e.g. 90s, 30m, 2h or 1h30m)',
    );
  }
  let ms = 0;
  for (const [, n = '0', unit = 's'] of t.matchAll(PART)) ms += Number(n) * UNIT_MS[unit as Unit];
  ms = Math.round(ms);
  if (ms <= 0) return err('must be longer than zero');
  if (ms > MAX_MS) return err('is longer than 30 days');
  return ok(ms);
}

/** `5400000` → `1h30m`, `90000` → `1m30s`, `1500` → `1.5s`: for messages. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${String(Math.round(ms))}ms`;
  if (ms < 60_000) return `${String(Math.round(ms / 100) / 10)}s`;
  let rest = Math.round(ms / 1000);
  let out = '';
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) out += `${String(n)}${unit}`;
  }
  return out;
}
