/**
 * Throughput over time (rows/s, MB/s, GETs/s, tasks finished): the fleet, and one host chosen in
 * a menu drawn beside it (forty hosts on one chart would be a tangle).
 */
import uPlot from 'uplot';
import type { ReportModel, Series } from '../types.js';
import { duration, h, section } from './dom.js';

const CHARTS: { key: keyof Series; title: string; unit: string }[] = [
  { key: 'rowsPerS', title: 'rows/s', unit: 'rows/s' },
  { key: 'mbPerS', title: 'MB/s', unit: 'MB/s' },
  { key: 'getsPerS', title: 'object GETs/s', unit: 'GETs/s' },
  { key: 'finished', title: 'tasks finished per interval', unit: 'tasks' },
];

export function throughput(m: ReportModel): { el: HTMLElement; draw: () => void } {
  const tp = m.throughput;
  if (tp.t.length === 0) {
    return {
      el: section(
        'throughput',
        'Throughput',
        h('p', { class: 'muted' }, 'No finished work to chart yet.'),
      ),
      draw: () => undefined,
    };
  }
  const hosts = Object.keys(tp.hosts).sort();
  const grid = h('div', { class: 'charts' });
  const pick = h(
    'select',
    { 'aria-label': 'host' },
    h('option', { value: '' }, 'fleet only'),
    ...hosts.map((x) => h('option', { value: x }, `fleet and ${x}`)),
  );
  const el = section(
    'throughput',
    'Throughput',
    h(
      'div',
      { class: 'tools' },
      h('label', {}, 'show ', pick),
      h(
        'span',
        { class: 'muted' },
        `${String(hosts.length)} host${hosts.length === 1 ? '' : 's'}; each task's rows, bytes and GETs spread over its run, in intervals of ${duration(tp.stepMs)}. GETs: one per content blob a pack fetched, one per parquet fetched.`,
      ),
    ),
    grid,
  );
  const plots: uPlot[] = [];
  const draw = (): void => {
    for (const p of plots.splice(0)) p.destroy();
    grid.replaceChildren();
    const host = pick.value;
    const width = Math.max(360, Math.floor(((grid.clientWidth || 1100) - 24) / 2));
    const xs = tp.t.map((t) => t / 1000);
    for (const c of CHARTS) {
      const box = h('div', { class: 'chart', 'data-chart': c.key }, h('h3', {}, c.title));
      grid.append(box);
      const own = host === '' ? undefined : tp.hosts[host]?.[c.key];
      const fmt = (_u: uPlot, v: number | null): string =>
        v == null ? '–' : `${v.toFixed(2)} ${c.unit}`;
      const data: uPlot.AlignedData =
        own === undefined ? [xs, tp.fleet[c.key]] : [xs, tp.fleet[c.key], own];
      const series: uPlot.Series[] = [
        {},
        { label: 'fleet', stroke: '#0072B2', width: 2, fill: 'rgba(0,114,178,0.08)', value: fmt },
        ...(own === undefined ? [] : [{ label: host, stroke: '#D55E00', width: 1.5, value: fmt }]),
      ];
      plots.push(
        new uPlot(
          {
            width,
            height: 220,
            series,
            scales: { x: { time: true } },
            axes: [{}, { size: 64 }],
            cursor: { drag: { x: true, y: false } },
          },
          data,
          box,
        ),
      );
    }
  };
  pick.addEventListener('change', draw);
  return { el, draw };
}
