/**
 * `stackflow report` through the CLI on the bundled sample: the page's data (the sample's known
 * totals, a lane and times for every task, links to files that exist), its size, `--watch`
 * rewriting it atomically, a failed task with how to retry, and `status` pointing to it. The
 * page in a real browser: test/system/report.test.ts.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, Rig, SAMPLE } from '../helpers/rig.js';
import { modelOf, sample, stageCount } from '../helpers/report-page.js';

describe('stackflow report on the sample', () => {
  const rig = new Rig();
  let succeeded = 0;
  beforeAll(async () => {
    const r = await rig.run(['run', '--cache-dir', 'cache']);
    expect(r.code, r.stderr).toBe(0);
    succeeded = r.events.filter((e) => e.type === 'task-succeeded').length;
  }, 300_000);
  afterAll(() => {
    rig.cleanup();
  });

  it('writes one small self-contained page with the run in it', async () => {
    const r = await rig.run(['report', '--cache-dir', 'cache', '-o', 'out/../report.html']);
    expect(r.code, r.stderr).toBe(0);
    const file = join(rig.dir, 'report.html');
    expect(r.stderr).toContain(`wrote ${file} (`);
    expect(r.stderr).toContain(`${String(succeeded)} of ${String(succeeded)} tasks done`);
    const html = readFileSync(file, 'utf8');
    expect(html.length).toBeLessThan(5_000_000);
    // Nothing for the browser to fetch: no src/href to anything but in-page anchors, and a CSP
    // that forbids every fetch.
    expect(html).toMatch(/Content-Security-Policy" content="default-src 'none'/);
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/i);
    const m = modelOf(html);
    expect(m.totals).toMatchObject({
      tasks: succeeded,
      done: succeeded,
      running: 0,
      failed: 0,
      pending: 0,
      blocked: 0,
      rowsIn: sample.rows,
      rowsOut: sample.rows - sample.notPackedTotal,
      notPacked: sample.notPacked,
    });
    expect(m.pipeline.revision).toBe('sample-v1');
    expect(m.tasks.every((t) => t.lane !== undefined && t.start !== undefined)).toBe(true);
    expect(m.throughput.fleet.finished.reduce((a, b) => a + b, 0)).toBe(succeeded);
    // Every .errors.jsonl link points at a file that exists.
    const files = m.errors.notPacked.flatMap((x) => x.files);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(existsSync(new URL(f))).toBe(true);
    expect(m.dag.stages.nodes).toHaveLength(stageCount(rig));
  });

  it('--watch rewrites the page atomically until interrupted', async () => {
    const file = join(rig.dir, 'watched.html');
    const child = rig.start([
      'report',
      '--cache-dir',
      'cache',
      '-o',
      'watched.html',
      '--watch',
      '1',
    ]);
    const done = collect(child);
    const seen = new Set<number>();
    const deadline = Date.now() + 60_000;
    while (seen.size < 2 && Date.now() < deadline) {
      if (existsSync(file)) seen.add(modelOf(readFileSync(file, 'utf8')).generatedAt);
      await sleep(100);
    }
    child.kill('SIGINT');
    const r = await done;
    expect(seen.size, r.stderr).toBe(2);
    expect(r.code).toBe(130);
    expect(r.stderr.match(/^wrote /gm)?.length).toBeGreaterThanOrEqual(2);
    expect(readdirSync(rig.dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  }, 90_000);

  it('status points to it', async () => {
    const r = await rig.run(['status', '--cache-dir', 'cache']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('stackflow report');
  });
});

describe('stackflow report after a failure', () => {
  const rig = new Rig();
  afterAll(() => {
    rig.cleanup();
  });

  it('lists the failed task with its last error and how to retry it', async () => {
    rig.writePipeline(
      readFileSync(join(SAMPLE, 'pipeline.yaml'), 'utf8').replace(
        'command: "cat {inputs} | wc -c | tr -d \' \' > {outputs}"',
        'command: "echo \'no space left (it says)\' >&2; exit 3"',
      ),
    );
    const run = await rig.run(['run', '--cache-dir', 'cache', '--only', 'C']);
    expect(run.code).toBe(1);
    const r = await rig.run(['report', '--cache-dir', 'cache']);
    expect(r.code, r.stderr).toBe(0);
    const m = modelOf(readFileSync(join(rig.dir, 'report.html'), 'utf8'));
    expect(m.totals.failed).toBe(1);
    const [f] = m.errors.failed;
    expect(f).toMatchObject({ task: 'sizes:C', stage: 'sizes', language: 'C', attempts: 1 });
    expect(f?.message).toContain('no space left (it says)');
    expect(m.errors.retry).toEqual([
      `npx stackflow run sizes -f ${join(rig.dir, 'pipeline.yaml')}`,
    ]);
  }, 300_000);
});
