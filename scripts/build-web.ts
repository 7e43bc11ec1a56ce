/**
 * Bundles the report page's client (lib/report-html/web/) with its npm libraries (uPlot, dagre)
 * into dist/web/report.js, and its CSS with uPlot's into dist/web/report.css. Run by
 * `npm run build`; render.ts inlines both into every report, so the page requests nothing.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';

const root = resolve(import.meta.dirname, '..');
const out = join(root, 'dist', 'web');
const require = createRequire(import.meta.url);

await mkdir(out, { recursive: true });
await build({
  entryPoints: [join(root, 'lib/report-html/web/main.ts')],
  outfile: join(out, 'report.js'),
  bundle: true,
  minify: true,
  format: 'iife',
  platform: 'browser',
  target: ['es2020'],
  legalComments: 'none',
  logLevel: 'warning',
});
const uplotCss = await readFile(
  join(dirname(require.resolve('uplot/package.json')), 'dist/uPlot.min.css'),
  'utf8',
);
const ours = await readFile(join(root, 'lib/report-html/web/report.css'), 'utf8');
await writeFile(join(out, 'report.css'), `${uplotCss}\n${ours}`);
