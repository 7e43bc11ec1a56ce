/** Dataset statistics (the stats stages' output): per-language table and top-N bars. */
import type { ReportModel } from '../types.js';
import { bytes, h, int, section } from './dom.js';

const TOP = 12;

function bars(title: string, counts: Record<string, number>): HTMLElement {
  const top = Object.entries(counts)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, TOP);
  const max = Math.max(1, ...top.map(([, v]) => v));
  return h(
    'div',
    { class: 'topn' },
    h('h3', {}, title),
    ...top.map(([k, v]) =>
      h(
        'div',
        { class: 'hbar' },
        h('span', { class: 'k', title: k }, k || '(none)'),
        h(
          'span',
          { class: 'track' },
          h('span', { class: 'fill', style: `width:${((v / max) * 100).toFixed(1)}%` }),
        ),
        h('span', { class: 'v' }, int(v)),
      ),
    ),
  );
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

export function stats(m: ReportModel): HTMLElement | undefined {
  const st = m.stats;
  if (st === undefined) return undefined;
  const langs = Object.values(st.languages).sort((a, b) => b.rows - a.rows);
  const sum = (
    pick: (l: (typeof langs)[number]) => Record<string, number>,
  ): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const l of langs) for (const [k, v] of Object.entries(pick(l))) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  const heads = [
    'language',
    'rows',
    'content',
    'lines',
    'p50 length',
    'p90',
    'p99',
    'max',
    'generated',
    'vendor',
    'not packed',
  ];
  return section(
    'stats',
    'Dataset statistics',
    h('p', { class: 'muted' }, `From ${st.source}. Lengths are length_bytes of packed rows.`),
    h(
      'div',
      { class: 'scroll' },
      h(
        'table',
        { class: 'grid stats' },
        h(
          'thead',
          {},
          h('tr', {}, ...heads.map((x, i) => h('th', { class: i === 0 ? '' : 'num' }, x))),
        ),
        h(
          'tbody',
          {},
          ...langs.map((l) =>
            h(
              'tr',
              { 'data-language': l.language },
              h('td', {}, l.language),
              ...[
                int(l.rows),
                bytes(l.content_bytes),
                int(l.lines),
                bytes(l.length.p50),
                bytes(l.length.p90),
                bytes(l.length.p99),
                bytes(l.length.max),
                pct(l.generated_share),
                pct(l.vendor_share),
                int(Object.values(l.not_packed).reduce((a, b) => a + b, 0)),
              ].map((v) => h('td', { class: 'num' }, v)),
            ),
          ),
        ),
      ),
    ),
    h(
      'div',
      { class: 'topns' },
      bars(
        'Top extensions',
        sum((l) => l.top_extensions),
      ),
      bars(
        'License types',
        sum((l) => l.license_type),
      ),
      bars(
        'Source encodings',
        sum((l) => l.src_encoding),
      ),
      bars('Rows by language', Object.fromEntries(langs.map((l) => [l.language, l.rows]))),
    ),
  );
}
