/**
 * The client's DOM helpers and number formats. Data from the report always enters the page as
 * text (`textContent`, attribute values), never as markup.
 */

type Child = Node | string | number | null | undefined | false;

/** An HTML element with attributes and children (strings become text nodes). */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An SVG element with attributes and children. */
export function s<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | undefined> = {},
  ...children: Child[]
): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'number' ? String(c) : c);
  }
}

const INT = new Intl.NumberFormat('en-US');
export const int = (n: number): string => INT.format(Math.round(n));

export function bytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? String(v) : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[i] ?? ''}`;
}

export function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (ms < 1000) return `${String(Math.round(ms))} ms`;
  if (s < 60) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${String(m)} min ${String(s % 60)} s`;
  const hrs = Math.floor(m / 60);
  return `${String(hrs)} h ${String(m % 60)} min`;
}

export const time = (t: number): string =>
  new Date(t).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';

/** Stage colours (colour-blind friendly, Okabe–Ito then Tableau). */
export const PALETTE = [
  '#0072B2',
  '#E69F00',
  '#009E73',
  '#CC79A7',
  '#56B4E9',
  '#D55E00',
  '#F0E442',
  '#000000',
  '#8c564b',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
];
export const color = (i: number): string => PALETTE[i % PALETTE.length] ?? '#888';

/** A section with a heading and an id (the page's table of contents links to it). */
export function section(id: string, title: string, ...children: Child[]): HTMLElement {
  return h('section', { id }, h('h2', {}, title), ...children);
}

/** The one tooltip of the page. */
let tip: HTMLDivElement | undefined;
export function tooltip(): HTMLDivElement {
  if (tip === undefined) {
    tip = h('div', { class: 'tooltip', role: 'tooltip' });
    tip.hidden = true;
    document.body.append(tip);
  }
  return tip;
}

export function showTip(ev: MouseEvent, lines: string[]): void {
  const t = tooltip();
  t.replaceChildren(...lines.map((l, i) => (i === 0 ? h('b', {}, l) : h('div', {}, l))));
  t.hidden = false;
  const x = Math.min(ev.clientX + 14, window.innerWidth - t.offsetWidth - 8);
  const y = Math.min(ev.clientY + 14, window.innerHeight - t.offsetHeight - 8);
  t.style.left = `${String(x + window.scrollX)}px`;
  t.style.top = `${String(y + window.scrollY)}px`;
}

export function hideTip(): void {
  tooltip().hidden = true;
}
