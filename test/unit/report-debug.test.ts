/** Events never carry stack traces unless `--debug` (lib/report.ts). */
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
