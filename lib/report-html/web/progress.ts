/** Progress per stage × language: a sortable, filterable table with bars. */
import type { Counters, ReportModel } from '../types.js';
import { bytes, color, duration, h, int, section } from './dom.js';

type Row = ReportModel['progress'][number];
interface Col {
  key: string;
  label: string;
  value: (r: Row) => number | string;
  cell: (r: Row) => Node | string;
  num: boolean;
}

const PAGE = 100;

const notPacked = (c: Counters): number => Object.values(c.notPacked).reduce((a, b) => a + b, 0);

export function progress(m: ReportModel): HTMLElement {
  const stageName = (r: Row): string => m.stages[r.stage]?.name ?? '?';
  const bar = (r: Row): HTMLElement => {
    const total = Math.max(1, r.tasks);
    const seg = (n: number, cls: string): HTMLElement =>
      h('span', { class: cls, style: `width:${((n / total) * 100).toFixed(2)}%` });
    return h(
      'div',
      { class: 'bar', title: `${String(r.done)} of ${String(r.tasks)} done` },
      seg(r.done, 'b-done'),
      seg(r.running, 'b-running'),
      seg(r.failed, 'b-failed'),
    );
  };
  const cols: Col[] = [
    {
      key: 'stage',
      label: 'stage',
      value: stageName,
      num: false,
      cell: (r) =>
        h(
          'span',
          {},
          h('i', { class: 'swatch', style: `background:${color(m.stages[r.stage]?.color ?? 0)}` }),
          stageName(r),
        ),
    },
    {
      key: 'language',
      label: 'language',
      value: (r) => r.language,
      num: false,
      cell: (r) => r.language || '—',
    },
    {
      key: 'pct',
      label: 'progress',
      value: (r) => (r.tasks === 0 ? 0 : r.done / r.tasks),
      num: true,
      cell: bar,
    },
    { key: 'tasks', label: 'tasks', value: (r) => r.tasks, num: true, cell: (r) => int(r.tasks) },
    { key: 'done', label: 'done', value: (r) => r.done, num: true, cell: (r) => int(r.done) },
    {
      key: 'running',
      label: 'running',
      value: (r) => r.running,
      num: true,
      cell: (r) => int(r.running),
    },
    {
      key: 'failed',
      label: 'failed',
      value: (r) => r.failed,
      num: true,
      cell: (r) => int(r.failed),
    },
    {
      key: 'pending',
      label: 'pending',
      value: (r) => r.pending,
      num: true,
      cell: (r) => int(r.pending),
    },
    {
      key: 'blocked',
      label: 'blocked',
      value: (r) => r.blocked,
      num: true,
      cell: (r) => int(r.blocked),
    },
    {
      key: 'rowsIn',
      label: 'rows in',
      value: (r) => r.rowsIn,
      num: true,
      cell: (r) => int(r.rowsIn),
    },
    {
      key: 'rowsOut',
      label: 'rows out',
      value: (r) => r.rowsOut,
      num: true,
      cell: (r) => int(r.rowsOut),
    },
    {
      key: 'notPacked',
      label: 'not packed',
      value: notPacked,
      num: true,
      cell: (r) => int(notPacked(r)),
    },
    {
      key: 'bytesIn',
      label: 'bytes in',
      value: (r) => r.bytesIn,
      num: true,
      cell: (r) => bytes(r.bytesIn),
    },
    {
      key: 'bytesOut',
      label: 'bytes out',
      value: (r) => r.bytesOut,
      num: true,
      cell: (r) => bytes(r.bytesOut),
    },
    {
      key: 'busy',
      label: 'task time',
      value: (r) => r.busyMs,
      num: true,
      cell: (r) => duration(r.busyMs),
    },
  ];
  let sortKey = '';
  let desc = false;
  let filter = '';
  let onlyOpen = false;
  /** Rows are drawn a page at a time: a real run has thousands of stage × language rows. */
  let page = 0;
  const tbody = h('tbody');
  const count = h('span', { class: 'muted' });
  const prev = h('button', { type: 'button', 'data-page': 'prev' }, '‹ previous');
  const next = h('button', { type: 'button', 'data-page': 'next' }, 'next ›');
  prev.addEventListener('click', () => {
    page--;
    draw();
  });
  next.addEventListener('click', () => {
    page++;
    draw();
  });
  const heads = cols.map((c) => {
    const th = h(
      'th',
      { class: c.num ? 'num sortable' : 'sortable', 'data-key': c.key, tabindex: 0 },
      c.label,
    );
    const act = (): void => {
      desc = sortKey === c.key ? !desc : c.num;
      sortKey = c.key;
      page = 0;
      for (const x of heads) x.removeAttribute('aria-sort');
      th.setAttribute('aria-sort', desc ? 'descending' : 'ascending');
      draw();
    };
    th.addEventListener('click', act);
    th.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') act();
    });
    return th;
  });
  const draw = (): void => {
    const f = filter.toLowerCase();
    let rows = m.progress.filter(
      (r) =>
        (f === '' || `${stageName(r)} ${r.language}`.toLowerCase().includes(f)) &&
        (!onlyOpen || r.done < r.tasks || r.blocked > 0),
    );
    const col = cols.find((c) => c.key === sortKey);
    if (col !== undefined) {
      rows = [...rows].sort((a, b) => {
        const x = col.value(a);
        const y = col.value(b);
        const c =
          typeof x === 'number' && typeof y === 'number'
            ? x - y
            : String(x).localeCompare(String(y));
        return desc ? -c : c;
      });
    }
    const pages = Math.max(1, Math.ceil(rows.length / PAGE));
    page = Math.min(Math.max(0, page), pages - 1);
    const shown = rows.slice(page * PAGE, (page + 1) * PAGE);
    tbody.replaceChildren(
      ...shown.map((r) =>
        h('tr', {}, ...cols.map((c) => h('td', { class: c.num ? 'num' : '' }, c.cell(r)))),
      ),
    );
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    count.textContent =
      rows.length === m.progress.length
        ? `${int(rows.length)} rows`
        : `${int(rows.length)} of ${int(m.progress.length)} rows match`;
    count.textContent += pages > 1 ? ` · page ${int(page + 1)} of ${int(pages)}` : '';
  };
  const search = h('input', {
    type: 'search',
    placeholder: 'filter stage or language…',
    'aria-label': 'filter',
  });
  search.addEventListener('input', () => {
    filter = search.value;
    page = 0;
    draw();
  });
  const open = h('input', { type: 'checkbox', id: 'only-open' });
  open.addEventListener('change', () => {
    onlyOpen = open.checked;
    page = 0;
    draw();
  });
  draw();
  return section(
    'progress',
    'Progress per stage × language',
    h(
      'div',
      { class: 'tools' },
      search,
      h('label', {}, open, ' unfinished only'),
      count,
      prev,
      next,
    ),
    h(
      'div',
      { class: 'scroll' },
      h('table', { class: 'grid' }, h('thead', {}, h('tr', {}, ...heads)), tbody),
    ),
  );
}
