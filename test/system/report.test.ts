/**
 * The report page in a real browser: Debian's chromium, headless, driven by playwright-core, a
 * fresh profile, the network off. The test fails on any console error or uncaught exception and
 * on any request leaving the page; it checks the DOM for the sample's known totals (tasks, rows
 * in and out, rows not packed), a timeline bar per task, a DAG node per stage and per task, the
 * four charts, the progress table's filter and sort, a tooltip; it takes a screenshot. A failed
 * run's page shows the failure. Skips loudly without chromium (see ./skip.ts).
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, haveChromium, openReport } from '../helpers/browser.js';
import { sample, stageCount } from '../helpers/report-page.js';
import { Rig, SAMPLE } from '../helpers/rig.js';
import { announce } from './skip.js';

const runs = announce(
  'browser',
  haveChromium() ? undefined : `${CHROMIUM} is not installed (apt-get install chromium)`,
);

describe.runIf(runs)('the report page in chromium', () => {
  const rig = new Rig();
  let succeeded = 0;
  beforeAll(async () => {
    const r = await rig.run(['run', '--cache-dir', 'cache']);
    expect(r.code, r.stderr).toBe(0);
    succeeded = r.events.filter((e) => e.type === 'task-succeeded').length;
    const page = await rig.run(['report', '--cache-dir', 'cache']);
    expect(page.code, page.stderr).toBe(0);
  }, 300_000);
  afterAll(() => {
    rig.cleanup();
  });

  it('opens offline with no error, the totals, a bar per task and a node per stage', async () => {
    if (!haveChromium()) throw new Error(`STACKFLOW_REQUIRE_SYSTEM=1 but ${CHROMIUM} is missing`);
    const file = join(rig.dir, 'report.html');
    const page = await openReport(file);
    try {
      const { page: p } = page;
      const total = async (k: string) =>
        (await p.textContent(`[data-total="${k}"] .v`))?.replace(/,/g, '');
      expect(await total('tasks')).toBe(String(succeeded));
      expect(await total('done')).toBe(String(succeeded));
      expect(await total('rowsIn')).toBe(String(sample.rows));
      expect(await total('rowsOut')).toBe(String(sample.rows - sample.notPackedTotal));
      expect(await total('notPacked')).toBe(String(sample.notPackedTotal));
      // STACKFLOW_REPORT_SCREENSHOT=docs/report.png refreshes the README's picture
      // (taken before the test filters, sorts and hovers).
      const shot = process.env.STACKFLOW_REPORT_SCREENSHOT ?? join(rig.dir, 'report.png');
      await p.screenshot({ path: shot, fullPage: true });
      expect(statSync(shot).size).toBeGreaterThan(20_000);
      // Locators only: the tests compile without the DOM's types.
      const attrs = async (sel: string, name: string): Promise<string[]> => {
        const loc = p.locator(sel);
        const out: string[] = [];
        for (let i = 0; i < (await loc.count()); i++)
          out.push((await loc.nth(i).getAttribute(name)) ?? '');
        return out;
      };
      const bars = await attrs('svg.timeline rect.bar', 'data-task');
      expect(bars).toHaveLength(succeeded);
      expect(new Set(bars).size).toBe(succeeded);
      expect(await p.locator('svg.dag-stages g.dag-stage').count()).toBe(stageCount(rig));
      expect(await p.locator('svg.dag-tasks g.dag-task').count()).toBe(succeeded);
      expect(await p.locator('[data-chart] canvas').count()).toBe(4);
      // Sorting and filtering the progress table.
      await p.fill('#progress input[type=search]', 'pack');
      const stages = await p.locator('#progress tbody tr td:first-child').allTextContents();
      expect(stages.length).toBeGreaterThan(0);
      expect(stages.every((s) => s === 'pack')).toBe(true);
      await p.click('#progress th[data-key="rowsIn"]');
      const rows = (await p.locator('#progress tbody tr td:nth-child(10)').allTextContents()).map(
        (t) => Number(t.replace(/,/g, '')),
      );
      expect(rows).toEqual([...rows].sort((a, b) => b - a));
      // A tooltip names the task under the pointer (the widest bar, scrolled to the middle).
      const widths = (await attrs('svg.timeline rect.bar', 'width')).map(Number);
      const widest = widths.indexOf(Math.max(...widths));
      const bar = p.locator('svg.timeline rect.bar').nth(widest);
      await bar.scrollIntoViewIfNeeded();
      await p.mouse.wheel(0, -200);
      await bar.hover();
      const id = bars[widest];
      expect(await p.textContent('.tooltip b')).toBe(id);
      expect(await p.textContent('.tooltip')).toMatch(/rows\/s|MB\/s/);
      expect(page.errors).toEqual([]);
      expect(page.outside).toEqual([]);
    } finally {
      await page.close();
    }
  }, 120_000);

  it("shows a failed run's failure with its message", async () => {
    const failing = new Rig();
    try {
      failing.writePipeline(
        readFileSync(join(SAMPLE, 'pipeline.yaml'), 'utf8').replace(
          'command: "cat {inputs} | wc -c | tr -d \' \' > {outputs}"',
          'command: "echo \'no space left (it says) </script><b>x</b>\' >&2; exit 3"',
        ),
      );
      expect((await failing.run(['run', '--cache-dir', 'cache', '--only', 'C'])).code).toBe(1);
      expect((await failing.run(['report', '--cache-dir', 'cache'])).code).toBe(0);
      const page = await openReport(join(failing.dir, 'report.html'));
      try {
        // The message arrives as text: the markup in it is not markup on the page.
        expect(await page.page.textContent('table.failed td.msg')).toContain(
          'no space left (it says) </script><b>x</b>',
        );
        expect(await page.page.locator('table.failed td.msg b').count()).toBe(0);
        expect(await page.page.textContent('[data-total="failed"] .v')).toBe('1');
        expect(await page.page.textContent('pre.cmd')).toContain('npx stackflow run sizes -f ');
        expect(page.errors).toEqual([]);
        expect(page.outside).toEqual([]);
      } finally {
        await page.close();
      }
    } finally {
      failing.cleanup();
    }
  }, 300_000);
});
