/** The page header: what run this is, and its totals. */
import type { ReportModel } from '../types.js';
import { bytes, h, int, time } from './dom.js';

const REASONS: Record<string, string> = {
  missing: 'blob missing',
  corrupt_gzip: 'corrupt gzip',
  undecodable: 'undecodable',
};

export function header(m: ReportModel): HTMLElement {
  const t = m.totals;
  const card = (key: string, label: string, value: string, cls = ''): HTMLElement =>
    h(
      'div',
      { class: `card ${cls}`, 'data-total': key },
      h('div', { class: 'v' }, value),
      h('div', { class: 'l' }, label),
    );
  const notPacked = Object.values(t.notPacked).reduce((a, b) => a + b, 0);
  const pct = t.tasks === 0 ? 0 : (t.done / t.tasks) * 100;
  return h(
    'header',
    {},
    h('h1', {}, 'stackflow report'),
    h(
      'dl',
      { class: 'meta' },
      h('dt', {}, 'pipeline'),
      h('dd', {}, m.pipeline.file),
      h('dt', {}, 'dataset'),
      h(
        'dd',
        {},
        `${m.pipeline.repo} @ `,
        h('code', { 'data-field': 'revision' }, m.pipeline.revision),
      ),
      h('dt', {}, 'source'),
      h('dd', {}, m.pipeline.source),
      h('dt', {}, 'state'),
      h('dd', {}, m.pipeline.state),
      h('dt', {}, 'bucket'),
      h('dd', {}, m.pipeline.bucket),
      h('dt', {}, 'generated'),
      h('dd', {}, time(m.generatedAt)),
    ),
    h(
      'div',
      { class: 'overall', title: `${pct.toFixed(1)}% of known tasks done` },
      h('div', { class: 'fill', style: `width:${pct.toFixed(2)}%` }),
    ),
    h(
      'div',
      { class: 'cards' },
      card('tasks', 'tasks', int(t.tasks)),
      card('done', 'done', int(t.done), 'done'),
      card('running', 'running', int(t.running), 'running'),
      card('pending', 'pending', int(t.pending)),
      card('failed', 'failed', int(t.failed), t.failed > 0 ? 'failed' : ''),
      card('blocked', 'blocked (awaiting a listing)', int(t.blocked)),
      card('stale', 'stale', int(t.stale)),
    ),
    h(
      'div',
      { class: 'cards' },
      card('rowsIn', 'rows in (pack)', int(t.rowsIn)),
      card('rowsOut', 'rows out (packed)', int(t.rowsOut)),
      card('bytesIn', 'parquet bytes in', bytes(t.bytesIn)),
      card('bytesOut', 'packed bytes out', bytes(t.bytesOut)),
      card('notPacked', 'rows not packed', int(notPacked), notPacked > 0 ? 'warn' : ''),
      ...Object.entries(t.notPacked).map(([k, v]) =>
        card(`notPacked.${k}`, REASONS[k] ?? k, int(v), 'small'),
      ),
    ),
  );
}
