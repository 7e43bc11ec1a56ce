/**
 * The report page: one self-contained HTML file. The client bundle (built from web/ by
 * `npm run build` into dist/web/) and its CSS are inlined, and so is the model, as JSON. A
 * Content-Security-Policy with `default-src 'none'` lets the browser fetch nothing at all.
 *
 * User data (task ids, error messages, host names) only ever reaches the page as JSON inside a
 * `<script type="application/json">`, with `<` escaped so no value can close that element; the
 * client puts it into the DOM as text, never as markup.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ReportModel } from './types.js';

/** The built client (dist/web/report.{js,css}), found from this module in lib/ or in dist/lib/. */
export function webAssetDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // lib/report-html → <root>/dist/web; dist/lib/report-html → <root>/dist/web.
  const root = here.includes(join('dist', 'lib', 'report-html'))
    ? join(here, '..', '..', '..')
    : join(here, '..', '..');
  return join(root, 'dist', 'web');
}

export interface WebAssets {
  js: string;
  css: string;
}

export async function loadWebAssets(dir = webAssetDir()): Promise<WebAssets> {
  try {
    const [js, css] = await Promise.all([
      readFile(join(dir, 'report.js'), 'utf8'),
      readFile(join(dir, 'report.css'), 'utf8'),
    ]);
    return { js, css };
  } catch {
    throw new Error(
      `Internal error: the report's client bundle is missing under ${dir}; run \`npm run build\``,
    );
  }
}

const CSP =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; font-src data:";

/** JSON that is safe inside `<script type="application/json">`. */
export const scriptJson = (v: unknown): string =>
  JSON.stringify(v)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');

/** Text for an HTML text node or attribute value. */
const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${String(c.charCodeAt(0))};`);

/** Inline code must not contain the sequence that ends its element. */
const inline = (code: string, tag: 'script' | 'style'): string =>
  code.replace(new RegExp(`</${tag}`, 'gi'), `<\\/${tag}`);

export function renderHtml(model: ReportModel, assets: WebAssets): string {
  const title = `stackflow · ${model.pipeline.repo} @ ${model.pipeline.revision.slice(0, 12)}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${inline(assets.css, 'style')}</style>
</head>
<body>
<noscript>This report draws itself with JavaScript; enable it to see the run.</noscript>
<main id="app" data-generated-at="${String(model.generatedAt)}"></main>
<script type="application/json" id="report-data">${scriptJson(model)}</script>
<script>${inline(assets.js, 'script')}</script>
</body>
</html>
`;
}
