/** JSON events (lib/report.ts): never a stack trace unless `--debug`; progress throttled, never lost. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../lib/events.js';
import type { StageName, TaskId } from '../../lib/model.js';
import { makePrinter } from '../../lib/report.js';

function sink(): { stream: Writable & { isTTY?: boolean }; text: () => string } {
  let out = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      out += chunk.toString();
      done();
    },
  });
  return { stream, text: () => out };
}

const failed: RunEvent = {
  type: 'task-failed',
  task: 'pack:C/train-00000-of-00001' as TaskId,
  stage: 'pack' as StageName,
  failure: {
    reason: 'internal-error',
    message: 'boom',
    stack: 'Error: boom\n    at somewhere (lib/x.ts:1:1)',
  },
};

describe('stack traces in events', () => {
  it('are left out of JSON events by default', () => {
    const out = sink();
    const printer = makePrinter(out.stream, sink().stream, { json: true });
    printer.emit(failed);
    printer.close();
    const e = JSON.parse(out.text().trim()) as { failure: Record<string, unknown> };
    expect(e.failure).toEqual({ reason: 'internal-error', message: 'boom' });
  });

  it('are kept with --debug', () => {
    const out = sink();
    const printer = makePrinter(out.stream, sink().stream, { json: true, debug: true });
    printer.emit(failed);
    printer.close();
    const e = JSON.parse(out.text().trim()) as { failure: Record<string, unknown> };
    expect(e.failure.stack).toBe('Error: boom\n    at somewhere (lib/x.ts:1:1)');
  });
});

describe('JSON progress', () => {
  const task = 'pack:C/train-00000-of-00001' as TaskId;
  const stage = 'pack' as StageName;
  const progress = (rows: number): RunEvent => ({
    type: 'progress',
    task,
    stage,
    rows,
    bytes: rows * 10,
  });
  const lines = (text: string) =>
    text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; rows?: number; bytes?: number });

  it('is one line per task per second, and its last totals go out before the task ends', () => {
    const out = sink();
    const printer = makePrinter(out.stream, sink().stream, { json: true });
    // Within one second: the first delta is written, the next two only counted.
    for (const n of [5, 7, 11]) printer.emit(progress(n));
    printer.emit({ type: 'task-succeeded', task, stage, ms: 10, counts: { rows: 23 } });
    printer.close();
    expect(lines(out.text()).map((e) => [e.type, e.rows, e.bytes])).toEqual([
      ['progress', 5, 50],
      ['progress', 23, 230],
      ['task-succeeded', undefined, undefined],
    ]);
  });

  it('writes no extra line when the totals were all shown, nor for a task without progress', () => {
    const out = sink();
    const printer = makePrinter(out.stream, sink().stream, { json: true });
    printer.emit(progress(5));
    printer.emit({ type: 'task-succeeded', task, stage, ms: 10, counts: { rows: 5 } });
    printer.emit(failed);
    printer.close();
    expect(lines(out.text()).map((e) => e.type)).toEqual([
      'progress',
      'task-succeeded',
      'task-failed',
    ]);
  });
});
