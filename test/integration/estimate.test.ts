/**
 * `stackflow estimate` through the CLI: on the bundled sample (rows from listing sizes, then from
 * the fetched parquets' footers, bytes per row from finished packs), with a calibration file, and
 * on the real 917-parquet list with synthetic sizes (`--listing`), forwards and inverse.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Rig } from '../helpers/rig.js';
import { stackV2Listing } from '../helpers/stack-v2.js';

const rig = new Rig();
afterAll(() => {
  rig.cleanup();
});

interface EstimateJson {
  totals: { parquets: number; rows: number; rowsFrom: Record<string, number>; gets: number };
  makespan: { seconds: number; limitedBy: string };
  inputs: {
    calibration: { from: string; cpuSecondsPerMillionRows: number; jsonBytesPerRow: number };
    fleet: { hosts: number; cores: number };
  };
  requests: { lines: { purpose: string }[]; coordinationShare: number };
  deadline?: { hosts: number | null; reason?: string };
}
const json = (stdout: string) => JSON.parse(stdout) as EstimateJson;

describe('estimate on the sample', () => {
  it('before anything ran: the plan’s 7 packs, rows from the listing sizes', async () => {
    const r = await rig.run(['estimate', '--hosts', '2', '--cores', '4', '--cache-dir', 'cache']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('plan: 7 parquets to pack (rows: 7 from listing sizes)');
    expect(r.stdout).toContain('fleet: 2 hosts × 4 cores, 256 GiB; each 1 pack × 3 line workers');
    expect(r.stdout).toMatch(/ {2}content GETs \(the blobs; billed to the bucket owner\) +\d/);
    expect(r.stdout).toContain(
      'prices       S3 Standard, us-east-1, list prices as of 2026-12 (GET $0.0004/1k, PUT/LIST $0.005/1k)',
    );
  });

  it('after fetch: exact rows from the footers; after pack: nothing left, bytes per row measured', async () => {
    const f = await rig.run(['run', 'fetch', '--cache-dir', 'cache']);
    expect(f.code, f.stderr).toBe(0);
    const fetched = json((await rig.run(['estimate', '--json', '--cache-dir', 'cache'])).stdout);
    expect(fetched.totals).toMatchObject({
      parquets: 7,
      rows: 3050,
      gets: 3050,
      rowsFrom: { footer: 7, size: 0 },
    });
    const p = await rig.run(['run', 'pack:Python/*', '--cache-dir', 'cache']);
    expect(p.code, p.stderr).toBe(0);
    const after = json((await rig.run(['estimate', '--json', '--cache-dir', 'cache'])).stdout);
    const packed = p.events.filter((e) => e.type === 'task-succeeded' && e.stage === 'pack');
    expect(packed.length).toBeGreaterThan(0);
    expect(after.totals.parquets).toBe(7 - packed.length);
    const n = String(packed.length);
    expect(after.inputs.calibration.from).toContain(
      `bytes per row from ${n} finished pack${packed.length === 1 ? '' : 's'} (`,
    );
    expect(after.inputs.calibration.jsonBytesPerRow).not.toBe(21000);
  });

  it('--calibration takes the rehearsal’s results; a bad file is a usage error', async () => {
    const file = join(rig.dir, 'scale.json');
    writeFileSync(
      file,
      JSON.stringify({
        name: 'scale',
        calibration: { from: 'sweep', cpuSecondsPerMillionRows: 321 },
      }),
    );
    const r = await rig.run(['estimate', '--json', '--calibration', file, '--cache-dir', 'cache']);
    expect(r.code, r.stderr).toBe(0);
    expect(json(r.stdout).inputs.calibration).toMatchObject({ cpuSecondsPerMillionRows: 321 });
    writeFileSync(file, '{"calibration": {"getsPerRow": "many"}}');
    const bad = await rig.run(['estimate', '--calibration', file, '--cache-dir', 'cache']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('getsPerRow must be a positive number, got "many"');
    const dl = await rig.run(['estimate', '--deadline', 'tomorrow', '--cache-dir', 'cache']);
    expect(dl.code).toBe(2);
    expect(dl.stderr).toContain('--deadline must be a duration such as 24h, 90m or 2d');
  });
});

describe('estimate on the real list (917 parquets, synthetic sizes)', () => {
  const listing = join(rig.dir, 'the-stack-v2.txt');
  writeFileSync(listing, stackV2Listing());

  it('10, 20 and 40 hosts of 32 cores', async () => {
    const at = async (hosts: number, extra: string[] = []) => {
      const r = await rig.run([
        'estimate',
        '--listing',
        listing,
        '--hosts',
        String(hosts),
        '--cores',
        '32',
        '--json',
        ...extra,
      ]);
      expect(r.code, r.stderr).toBe(0);
      return json(r.stdout);
    };
    const h10 = await at(10);
    expect(h10.totals.parquets).toBe(917);
    expect(h10.totals.rows).toBeGreaterThan(2.4e9);
    // S3's 5,500 GETs/s for one prefix: the store is the limit, whatever the hosts
    expect(h10.makespan.limitedBy).toBe('store-rate');
    const fast = [
      await at(10, ['--store-rate', '1e8']),
      await at(20, ['--store-rate', '1e8']),
      await at(40, ['--store-rate', '1e8']),
      await at(80, ['--store-rate', '1e8']),
    ];
    expect(fast.map((e) => e.makespan.limitedBy)).toEqual(['cpu', 'cpu', 'cpu', 'longest-task']);
    expect(fast[1]?.makespan.seconds).toBeLessThan((fast[0]?.makespan.seconds ?? 0) * 0.6);
    expect(h10.requests.coordinationShare).toBeLessThan(0.01);
  });

  it('--deadline 24h --cores 32: the hosts needed, or why none suffice', async () => {
    const r = await rig.run([
      'estimate',
      '--listing',
      listing,
      '--deadline',
      '24h',
      '--cores',
      '32',
      '--store-rate',
      '100000',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ {2}deadline {5}24 h needs \d+ hosts? of 32 cores\n/);
    const none = await rig.run(['estimate', '--listing', listing, '--deadline', '24h', '--json']);
    expect(json(none.stdout).deadline).toMatchObject({ hosts: null });
    expect(json(none.stdout).deadline?.reason).toMatch(
      /^no fleet finishes in 24 h: the store's rate \(5500 GETs\/s\) needs 5\.\d days whatever the hosts/,
    );
  });
});
