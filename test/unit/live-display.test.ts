/**
 * The live display as a person sees it: the printer's bytes go into a real terminal emulator
 * (xterm.js, headless) of a given width, and the test reads the screen back. Redrawing at 60
 * columns must leave one line per stage (no wrapped leftovers), blocked tasks show as blocked
 * (also after an interrupt), and the last line says where the outputs are.
 */
import { Writable } from 'node:stream';
import xterm from '@xterm/headless';
import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../lib/events.js';
import type { StageName, TaskId } from '../../lib/model.js';
import { makePrinter } from '../../lib/report.js';

const { Terminal } = xterm;

/** A TTY stream into a headless terminal; `screen()` reads the visible lines. */
function tty(cols: number, rows = 30) {
  const term = new Terminal({ cols, rows, allowProposedApi: true, convertEol: true });
  let pending = Promise.resolve();
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const s = chunk.toString();
      pending = pending.then(
        () =>
          new Promise<void>((r) => {
            term.write(s, r);
          }),
      );
      cb();
    },
  }) as Writable & { isTTY: boolean; columns: number };
  out.isTTY = true;
  out.columns = cols;
  const screen = async (): Promise<string[]> => {
    await pending;
    const buf = term.buffer.active;
    const lines: string[] = [];
    for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i)?.translateToString(true) ?? '');
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    return lines;
  };
  return { out, screen, term };
}

const id = (s: string) => s as TaskId;
const stage = (s: string) => s as StageName;

function finished(over: Partial<Extract<RunEvent, { type: 'run-finished' }>> = {}): RunEvent {
  return {
    type: 'run-finished',
    ok: false,
    interrupted: false,
    succeeded: 1,
    failed: 1,
    skipped: 0,
    blocked: 2,
    retries: 0,
    requestRetries: 0,
    ms: 1234,
    peakRssMb: 99,
    outputs: 'cache/bucket',
    failures: [],
    notStarted: 0,
    ...over,
  };
}

describe('the live display on a terminal', () => {
  it('redraws in place at 60 columns: one row per stage, however long its line', async () => {
    const { out, screen } = tty(60);
    const p = makePrinter(out, out);
    const stages = ['discover', 'fetch', 'cmds', 'sync', 'pack-with-a-long-name'];
    p.start(stages.map((s) => ({ stage: stage(s), total: 1000, skipped: 0 })));
    for (let i = 0; i < 40; i++) {
      const s = stages[i % stages.length] ?? 'pack';
      const t = id(`${s}:Lang/${String(i)}`);
      p.emit({ type: 'task-started', task: t, stage: stage(s), reason: 'missing', attempt: 1 });
      // Rates make the lines long: wider than 60 columns.
      p.emit({ type: 'progress', task: t, stage: stage(s), rows: 123456, bytes: 98765432 });
      if (i % 7 === 0) p.emit({ type: 'note', task: t, message: `note ${String(i)}` });
    }
    // Let the display's own timer redraw too.
    await new Promise((r) => setTimeout(r, 600));
    p.emit(finished());
    p.close();
    const lines = await screen();
    for (const s of stages) {
      const rows = lines.filter((l) => l.startsWith(s.padEnd(10).slice(0, 10)));
      expect(rows, `${s}:\n${lines.join('\n')}`).toHaveLength(1);
    }
    for (const l of lines) expect(Array.from(l).length).toBeLessThanOrEqual(60);
    expect(lines.filter((l) => l.startsWith('• note'))).toHaveLength(6);
  });

  it('re-wraps correctly when the terminal narrows between draws', async () => {
    const { out, screen, term } = tty(100);
    const p = makePrinter(out, out);
    p.start([{ stage: stage('pack'), total: 10, skipped: 0 }]);
    p.emit({
      type: 'task-started',
      task: id('pack:A/1'),
      stage: stage('pack'),
      reason: 'missing',
      attempt: 1,
    });
    p.emit({ type: 'progress', task: id('pack:A/1'), stage: stage('pack'), rows: 5e6, bytes: 5e9 });
    await new Promise((r) => setTimeout(r, 300));
    await screen();
    term.resize(40, 30);
    out.columns = 40;
    p.emit({ type: 'note', task: id('pack:A/1'), message: 'after resize' });
    p.emit(finished({ blocked: 0 }));
    p.close();
    const lines = await screen();
    expect(lines.filter((l) => l.startsWith('pack '))).toHaveLength(1);
  });

  it('shows blocked tasks as blocked, interrupted ones as stopped, and where the outputs are', async () => {
    const { out, screen } = tty(80);
    const p = makePrinter(out, out);
    p.start([
      { stage: stage('fetch'), total: 2, skipped: 0 },
      { stage: stage('pack'), total: 2, skipped: 0 },
    ]);
    const f1 = id('fetch:A/1');
    const f2 = id('fetch:A/2');
    p.emit({
      type: 'task-started',
      task: f1,
      stage: stage('fetch'),
      reason: 'missing',
      attempt: 1,
    });
    p.emit({
      type: 'task-started',
      task: f2,
      stage: stage('fetch'),
      reason: 'missing',
      attempt: 1,
    });
    p.emit({
      type: 'task-failed',
      task: f1,
      stage: stage('fetch'),
      failure: { reason: 'invalid-input', message: 'boom' },
    });
    p.emit({ type: 'task-blocked', task: id('pack:A/1'), stage: stage('pack'), because: f1 });
    // Ctrl-C: the running fetch is stopped, what needs it is blocked.
    p.emit({
      type: 'task-failed',
      task: f2,
      stage: stage('fetch'),
      failure: { reason: 'aborted', message: 'interrupted' },
    });
    p.emit({ type: 'task-blocked', task: id('pack:A/2'), stage: stage('pack'), because: f2 });
    p.emit(finished({ interrupted: true, succeeded: 0, failed: 1 }));
    p.close();
    const lines = await screen();
    const text = lines.join('\n');
    expect(lines.find((l) => l.startsWith('fetch '))).toMatch(/0\/2 failed 1 stopped 1$/);
    expect(lines.find((l) => l.startsWith('pack '))).toMatch(/0\/2 blocked 2$/);
    expect(text).toContain('✗ fetch:A/1 failed (invalid-input): boom');
    expect(text).not.toContain('fetch:A/2 failed');
    expect(lines[lines.length - 1]).toBe('outputs: cache/bucket');
  });
});
