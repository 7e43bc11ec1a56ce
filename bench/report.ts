/**
 * `stackflow report` at the real graph's size (~4,300 tasks on 80 workers, bench/lib/report-state.ts):
 * - the page's size, against the 5 MB target and against the model JSON it carries;
 * - the time `stackflow report` takes, against `stackflow status` on the same state (both read
 *   the same listings; report also reads every marker);
 * - the time until the page has drawn itself in headless chromium, against the same page whose
 *   script only parses the data (the floor any page carrying this data pays). Target: < 2 s.
 * Commands alternate (A B A B …); figures are medians.
 *
 *   npx tsx bench/report.ts [--quick]
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { haveChromium, openReport } from '../test/helpers/browser.js';
import { makeSyntheticRun } from './lib/report-state.js';
import { machineInfo } from './lib/machine.js';
import { alternate, median, round, writeResults } from './lib/stats.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const RUNS = values.quick ? 2 : 5;
const REPO = resolve(import.meta.dirname, '..');
const BIN = join(REPO, 'bin/stackflow.js');

const dir = mkdtempSync(join(tmpdir(), 'stackflow-bench-report-'));
try {
  const t0 = performance.now();
  const run = await makeSyntheticRun(dir);
  console.error(
    `synthetic state: ${String(run.tasks)} tasks (${String(run.done)} done, ${String(run.running)} running, ${String(run.failed)} failed, ${String(run.blockedLanguages)} languages unlisted) in ${String(Math.round(performance.now() - t0))} ms`,
  );
  const cli = (args: string[]) => ({
    cmd: process.execPath,
    args: [BIN, ...args, '-f', run.pipelineFile, '--cache-dir', join(dir, 'cache')],
    cwd: dir,
  });
  const times = alternate(
    { report: cli(['report', '-o', join(dir, 'report.html')]), status: cli(['status']) },
    RUNS,
  );
  const html = readFileSync(join(dir, 'report.html'), 'utf8');
  const data =
    /<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)?.[1] ?? '';
  const pageBytes = statSync(join(dir, 'report.html')).size;

  let open: { reportMs: number; parseOnlyMs: number; ratio: number } | undefined;
  if (haveChromium()) {
    // The reference: the same bytes, but a script that only parses the data.
    const parseOnly = html.replace(
      /<script>(?:(?!<\/script>)[\s\S])*<\/script>\s*<\/body>/,
      `<script>JSON.parse(document.getElementById('report-data').textContent);document.getElementById('app').textContent='ready';document.getElementById('app').setAttribute('data-ready','true')</script></body>`,
    );
    const refFile = join(dir, 'parse-only.html');
    writeFileSync(refFile, parseOnly);
    const page: number[] = [];
    const ref: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      for (const [file, into] of [
        [join(dir, 'report.html'), page],
        [refFile, ref],
      ] as const) {
        const p = await openReport(file);
        if (p.errors.length > 0 || p.outside.length > 0)
          throw new Error(`page errors: ${[...p.errors, ...p.outside].join('; ')}`);
        into.push(p.readyMs);
        await p.close();
      }
    }
    open = {
      reportMs: round(median(page), 0),
      parseOnlyMs: round(median(ref), 0),
      ratio: round(median(page) / median(ref), 2),
    };
  } else console.error('chromium is not installed: the page-open figures are left out');

  const out = {
    date: new Date().toISOString(),
    machine: machineInfo({ chromium: ['chromium', '--version'] }),
    setup: run,
    pageBytes,
    modelJsonBytes: Buffer.byteLength(data),
    pageOverModel: round(pageBytes / Math.max(1, Buffer.byteLength(data)), 2),
    medianMs: {
      report: round(median(times.report), 0),
      status: round(median(times.status), 0),
    },
    reportOverStatus: round(median(times.report) / median(times.status), 2),
    ...(open !== undefined ? { open } : {}),
    targets: { pageBytes: 5_000_000, openMs: 2000 },
  };
  console.log(JSON.stringify(out, null, 2));
  writeResults('report', out);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
