/**
 * The report page's client: reads the model inlined by render.ts and draws every section.
 * Bundled by scripts/build-web.ts (esbuild) with uPlot and dagre into dist/web/report.js.
 */
import type { ReportModel } from '../types.js';
import { dag } from './dag.js';
import { h } from './dom.js';
import { errors } from './errors.js';
import { header } from './header.js';
import { progress } from './progress.js';
import { stats } from './stats.js';
import { throughput } from './throughput.js';
import { timeline } from './timeline.js';

function start(): void {
  const app = document.getElementById('app');
  const data = document.getElementById('report-data')?.textContent;
  if (app === null || data === undefined) return;
  // Where the time goes, per section (ms): kept on the page for benchmarks and the curious.
  const timings: Record<string, number> = {};
  const timed = <T>(name: string, f: () => T): T => {
    const t0 = performance.now();
    const v = f();
    timings[name] = Math.round(performance.now() - t0);
    return v;
  };
  const m = timed('parse', () => JSON.parse(data) as ReportModel);
  const tp = timed('throughput', () => throughput(m));
  const st = timed('stats', () => stats(m));
  const nav = h(
    'nav',
    {},
    ...[
      ['progress', 'Progress'],
      ['timeline', 'Timeline'],
      ['throughput', 'Throughput'],
      [
        'errors',
        `Errors${m.errors.failed.length > 0 ? ` (${String(m.errors.failed.length)})` : ''}`,
      ],
      ['dag', 'Graph'],
      ...(st === undefined ? [] : [['stats', 'Statistics']]),
    ].map(([id, label]) => h('a', { href: `#${id ?? ''}` }, label ?? '')),
  );
  // The charts measure their container: drawn while the page is still small, so each one
  // does not lay out every other section again.
  app.append(
    timed('header', () => header(m)),
    nav,
    tp.el,
  );
  timed('charts', () => {
    tp.draw();
  });
  tp.el.before(
    timed('progress', () => progress(m)),
    timed('timeline', () => timeline(m)),
  );
  app.append(
    timed('errors', () => errors(m)),
    timed('dag', () => dag(m)),
  );
  if (st !== undefined) app.append(st);
  timed('layout', () => app.getBoundingClientRect());
  app.setAttribute('data-timings', JSON.stringify(timings));
  app.setAttribute('data-ready', 'true');
}

start();
