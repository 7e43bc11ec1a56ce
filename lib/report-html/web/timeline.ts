/**
 * The timeline: one lane per worker (grouped by host), one bar per task from start to finish,
 * coloured by stage; running tasks reach to the report's time, hatched. Like Nextflow's timeline.
 */
import type { ReportModel, TaskView } from '../types.js';
import { bytes, color, duration, h, hideTip, int, s, section, showTip, time } from './dom.js';

const LANE = 16;
const LABEL_W = 220;
const AXIS_H = 22;

export function timeline(m: ReportModel): HTMLElement {
  const placed = m.tasks
    .map((t, i) => ({ t, i }))
    .filter(({ t }) => t.lane !== undefined && t.start !== undefined);
  if (placed.length === 0) {
    return section('timeline', 'Timeline', h('p', { class: 'muted' }, 'No task has run yet.'));
  }
  const endOf = (t: TaskView): number => t.end ?? m.generatedAt;
  let t0 = Infinity;
  let t1 = -Infinity;
  for (const { t } of placed) {
    t0 = Math.min(t0, t.start ?? Infinity);
    t1 = Math.max(t1, endOf(t));
  }
  const span = Math.max(1, t1 - t0);
  // Lanes sorted by host, then worker.
  const order = m.lanes
    .map((l, i) => ({ l, i }))
    .sort((a, b) => a.l.host.localeCompare(b.l.host) || a.l.worker.localeCompare(b.l.worker));
  // Each lane's first row, its tasks stacked below (slots).
  const row = new Map<number, number>();
  let rows = 0;
  for (const { l, i } of order) {
    row.set(i, rows);
    rows += Math.max(1, l.slots);
  }
  const width = Math.max(
    700,
    Math.min(1600, (document.getElementById('app')?.clientWidth ?? 1100) - 10),
  );
  const plotW = width - LABEL_W - 10;
  const height = AXIS_H + rows * LANE + 4;
  const x = (t: number): number => LABEL_W + ((t - t0) / span) * plotW;
  const svg = s('svg', {
    class: 'timeline',
    width,
    height,
    viewBox: `0 0 ${String(width)} ${String(height)}`,
    role: 'img',
    'aria-label': 'task timeline',
  });
  const defs = s(
    'defs',
    {},
    s(
      'pattern',
      {
        id: 'hatch',
        width: 6,
        height: 6,
        patternUnits: 'userSpaceOnUse',
        patternTransform: 'rotate(45)',
      },
      s('rect', { width: 3, height: 6, fill: 'rgba(255,255,255,0.55)' }),
    ),
  );
  svg.append(defs);
  // Axis: about 8 ticks.
  const axis = s('g', { class: 'axis' });
  for (let k = 0; k <= 8; k++) {
    const t = t0 + (span * k) / 8;
    const xx = x(t);
    axis.append(
      s('line', { x1: xx, x2: xx, y1: AXIS_H - 4, y2: height, class: 'tick' }),
      s(
        'text',
        { x: xx, y: AXIS_H - 8, 'text-anchor': k === 0 ? 'start' : k === 8 ? 'end' : 'middle' },
        `+${duration(t - t0)}`,
      ),
    );
  }
  svg.append(axis);
  const labels = s('g', { class: 'lanes' });
  let prevHost = '';
  for (const [k, { l, i }] of order.entries()) {
    const r = row.get(i) ?? 0;
    const y = AXIS_H + r * LANE;
    if (k % 2 === 1)
      labels.append(
        s('rect', { x: 0, y, width, height: LANE * Math.max(1, l.slots), class: 'stripe' }),
      );
    labels.append(
      s(
        'text',
        { x: 4, y: y + LANE - 4, class: l.host === prevHost ? 'worker' : 'host' },
        `${l.host === prevHost ? '' : `${l.host} · `}${l.worker}`,
      ),
    );
    prevHost = l.host;
  }
  svg.append(labels);
  const bars = s('g', { class: 'bars' });
  for (const { t, i } of placed) {
    const r = (row.get(t.lane ?? 0) ?? 0) + (t.slot ?? 0);
    const x0 = x(t.start ?? t0);
    const w = Math.max(1.5, x(endOf(t)) - x0);
    const attrs = {
      x: x0.toFixed(1),
      y: AXIS_H + r * LANE + 2,
      width: w.toFixed(1),
      height: LANE - 4,
      fill: color(m.stages[t.stage]?.color ?? 0),
      class: `bar ${t.state}`,
      'data-task': t.id,
      'data-i': i,
    };
    bars.append(s('rect', attrs));
    if (t.state === 'running')
      bars.append(
        s('rect', { ...attrs, fill: 'url(#hatch)', class: 'hatch', 'data-task': undefined }),
      );
  }
  svg.append(bars);
  svg.addEventListener('mousemove', (ev) => {
    const target = ev.target as Element;
    const i = Number(target.getAttribute('data-i') ?? NaN);
    const t = Number.isNaN(i) ? undefined : m.tasks[i];
    if (t === undefined) hideTip();
    else showTip(ev, tipLines(m, t));
  });
  svg.addEventListener('mouseleave', hideTip);
  const legend = h(
    'div',
    { class: 'legend' },
    ...m.stages.map((st) =>
      h('span', {}, h('i', { class: 'swatch', style: `background:${color(st.color)}` }), st.name),
    ),
    h(
      'span',
      { class: 'muted' },
      `${int(placed.length)} tasks on ${int(m.lanes.length)} workers; hatched: running`,
    ),
  );
  return section('timeline', 'Timeline', legend, h('div', { class: 'scroll' }, svg));
}

export function tipLines(m: ReportModel, t: TaskView): string[] {
  const lane = t.lane === undefined ? undefined : m.lanes[t.lane];
  const end = t.end ?? m.generatedAt;
  const ms = t.start === undefined ? undefined : end - t.start;
  const lines = [t.id, `${m.stages[t.stage]?.name ?? '?'} · ${t.state}`];
  if (lane !== undefined) lines.push(`${lane.worker} on ${lane.host}`);
  if (t.start !== undefined)
    lines.push(`${time(t.start)} · ${ms === undefined ? '' : duration(ms)}`);
  if (t.rows !== undefined)
    lines.push(
      `${int(t.rows)} rows${ms !== undefined && ms > 0 ? ` · ${int(t.rows / (ms / 1000))} rows/s` : ''}`,
    );
  if (t.bytes !== undefined)
    lines.push(
      `${bytes(t.bytes)}${ms !== undefined && ms > 0 ? ` · ${(t.bytes / 1e6 / (ms / 1000)).toFixed(2)} MB/s` : ''}`,
    );
  if (t.parts !== undefined) lines.push(`parts ${int(t.parts[0])} of ${int(t.parts[1])} done`);
  if (t.attempts !== undefined) lines.push(`attempts: ${String(t.attempts)}`);
  if (t.epoch !== undefined && t.epoch > 0)
    lines.push(`taken over (lease epoch ${String(t.epoch)})`);
  return lines;
}
