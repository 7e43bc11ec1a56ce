/**
 * The one table `npm run bench` prints (bench/all.ts): a row per target, read from the results
 * files the benchmarks wrote, each figure a ratio against the reference measured in the same
 * script. Reading is defensive: a results file from an older or partial run yields fewer rows,
 * never a crash.
 */

export interface SummaryRow {
  bench: string;
  measure: string;
  stackflow: string;
  reference: string;
  ratio: string;
  target: string;
  met: boolean | undefined;
}

type Json = Record<string, unknown>;

const obj = (v: unknown): Json =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {};
const arr = (v: unknown): Json[] => (Array.isArray(v) ? v.map(obj) : []);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const fmt = (v: number | undefined, digits = 2): string =>
  v === undefined ? '–' : Number(v.toFixed(digits)).toLocaleString('en-US');
const ms = (v: number | undefined): string => (v === undefined ? '–' : `${fmt(v / 1000, 2)} s`);
const met = (v: number | undefined, ok: (x: number) => boolean): boolean | undefined =>
  v === undefined ? undefined : ok(v);

function planningRows(r: Json): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const size of arr(r.results)) {
    const median = obj(size.medianMs);
    const ratios = obj(size.ratios);
    const tasks = fmt(num(size.tasks), 0);
    const overMake = num(ratios.stackflowOverMake);
    const snakeOver = num(ratios.snakemakeOverStackflow);
    rows.push({
      bench: 'planning',
      measure: `dry run, ${tasks} tasks up to date`,
      stackflow: ms(num(median.stackflow)),
      reference: `make -q ${ms(num(median.make))}`,
      ratio: `${fmt(overMake)}×`,
      target: '≤ 1.5× make',
      met: met(overMake, (x) => x <= 1.5),
    });
    rows.push({
      bench: 'planning',
      measure: `dry run, ${tasks} tasks up to date`,
      stackflow: ms(num(median.stackflow)),
      reference: `snakemake -n ${ms(num(median.snakemake))}`,
      ratio: `${fmt(snakeOver)}× faster`,
      target: '≥ 50× faster than snakemake',
      met: met(snakeOver, (x) => x >= 50),
    });
  }
  const s3 = obj(r.s3);
  const pages = num(s3.listPagesPer1000Tasks);
  if (pages !== undefined) {
    rows.push({
      bench: 'planning',
      measure: `S3 requests, ${fmt(num(s3.tasks), 0)} tasks`,
      stackflow: `${fmt(num(s3.listPages), 0)} LIST pages, ${fmt(num(s3.reads), 0)} GETs`,
      reference: `${fmt(num(s3.minimumListPages), 0)} pages minimum`,
      ratio: `${fmt(pages, 3)} pages / 1,000 tasks; ${fmt(num(s3.readsPerTask), 3)} GETs / task`,
      target: '≤ 1 page / 1,000 tasks (rounded up), 0 per-task reads',
      met: s3.pass === true,
    });
  }
  return rows;
}

function packRows(r: Json): SummaryRow[] {
  const results = arr(r.results);
  const big = results.at(-1);
  if (big === undefined) return [];
  const rows: SummaryRow[] = [];
  const mbps = (v: unknown): string => `${fmt(num(v), 1)} MB/s`;
  for (const [t, key, refKey] of [
    ['-T1', 'ratioVsT1', 'zstdT1MBps'],
    ['-T2', 'ratioVsT2', 'zstdT2MBps'],
  ] as const) {
    rows.push({
      bench: 'pack',
      measure: `throughput, ${fmt(num(big.jsonBytes) === undefined ? undefined : (num(big.jsonBytes) ?? 0) / 1e6, 0)} MB of JSON`,
      stackflow: mbps(big.packMBps),
      reference: `zstd -3 ${t} ${mbps(big[refKey])}`,
      ratio: `${fmt(num(big[key]))}×`,
      target: '≥ 0.6×',
      met: met(num(big[key]), (x) => x >= 0.6),
    });
  }
  rows.push({
    bench: 'pack',
    measure: 'output size',
    stackflow: `${fmt(num(big.sizeRatio), 4)}× zstd -3`,
    reference: 'zstd -3 of the same JSONL',
    ratio: `${fmt(num(big.sizeRatio), 4)}×`,
    target: '≤ 1.05×',
    met: met(num(big.sizeRatio), (x) => x <= 1.05),
  });
  const small = results[0];
  if (small !== undefined && small !== big) {
    rows.push({
      bench: 'pack',
      measure: `peak RSS, ${fmt(num(small.rows), 0)} → ${fmt(num(big.rows), 0)} rows`,
      stackflow: `${fmt(num(small.peakRssMb), 0)} → ${fmt(num(big.peakRssMb), 0)} MB`,
      reference: 'the smaller run',
      ratio: `${fmt(num(r.rssGrowth))}×`,
      target: 'does not grow with rows',
      met: undefined,
    });
  }
  return rows;
}

function packMemoryRows(r: Json): SummaryRow[] {
  const results = arr(r.results);
  const [small, big] = [results[0], results.at(-1)];
  if (small === undefined || big === undefined) return [];
  const growth = num(r.growth);
  return [
    {
      bench: 'pack-memory',
      measure: `peak RSS, ${fmt(num(small.rows), 0)} → ${fmt(num(big.rows), 0)} rows`,
      stackflow: `${fmt(num(small.peakRssMb), 0)} → ${fmt(num(big.peakRssMb), 0)} MB`,
      reference: 'the 10× smaller run',
      ratio: `${fmt(growth)}×`,
      target: '< 600 MB, growth ≤ 1.1×',
      met:
        r.pass === true && growth !== undefined
          ? growth <= 1.1
          : r.pass === false
            ? false
            : undefined,
    },
  ];
}

function fetchRows(r: Json): SummaryRow[] {
  return arr(r.results).map((c) => ({
    bench: 'fetch',
    measure: `objects/s, concurrency ${fmt(num(c.concurrency), 0)}`,
    stackflow: fmt(num(c.packObjectsPerSecond), 0),
    reference: `bare SDK loop ${fmt(num(c.sdkObjectsPerSecond), 0)}`,
    ratio: `${fmt(num(c.ratio))}×`,
    target: '≥ 0.9×',
    met: met(num(c.ratio), (x) => x >= 0.9),
  }));
}

function fleetRows(r: Json): SummaryRow[] {
  const s = obj(r.summary);
  const setup = obj(r.setup);
  const shape = `${fmt(num(setup.workers), 0)} workers, ${fmt(num(setup.shellTasks), 0)} tasks`;
  if (num(s.makespanS) === undefined) return [];
  return [
    {
      bench: 'fleet',
      measure: `duplicate executions, ${shape}`,
      stackflow: fmt(num(s.duplicatesTotal), 0),
      reference: '–',
      ratio: '–',
      target: '0',
      met: met(num(s.duplicatesTotal), (x) => x === 0),
    },
    {
      bench: 'fleet',
      measure: `makespan, ${shape}`,
      stackflow: `${fmt(num(s.makespanS))} s`,
      reference: `bare pool ${fmt(num(s.barePoolS))} s (nominal ${fmt(num(s.nominalIdealS))} s)`,
      ratio: `${fmt(num(s.makespanVsBarePool))}× (${fmt(num(s.makespanVsNominal))}× nominal)`,
      target: '≤ 1.15× ideal',
      met: met(num(s.makespanVsBarePool), (x) => x <= 1.15),
    },
    {
      bench: 'fleet',
      measure: `store requests per task, ${shape}`,
      stackflow: fmt(num(s.requestsPerShellTask)),
      reference: '–',
      ratio: '–',
      target: '≤ 4',
      met: met(num(s.requestsPerShellTask), (x) => x <= 4),
    },
  ];
}

function rehearsalRows(r: Json): SummaryRow[] {
  const s = obj(r.summary);
  const setup = obj(r.setup);
  if (num(s.packPhaseS) === undefined) return [];
  const shape = `${fmt(num(setup.hosts), 0)} hosts × ${fmt(num(setup.jobsPerHost), 0)}, ${fmt(num(setup.parquets), 0)} tasks`;
  return [
    {
      bench: 'fleet-rehearsal',
      measure: `makespan, ${shape}`,
      stackflow: `${fmt(num(s.packPhaseS))} s`,
      reference: `ideal ${fmt(num(s.idealS))} s`,
      ratio: `${fmt(num(s.makespanVsIdeal))}×`,
      target: '≤ 1.1× ideal',
      met: met(num(s.makespanVsIdeal), (x) => x <= 1.1),
    },
    {
      bench: 'fleet-rehearsal',
      measure: `duplicates, ${shape}`,
      stackflow: fmt(num(s.duplicates), 0),
      reference: '–',
      ratio: '–',
      target: '0',
      met: met(num(s.duplicates), (x) => x === 0),
    },
    {
      bench: 'fleet-rehearsal',
      measure: 'coordination share of S3 requests (content GETs included)',
      stackflow: `${fmt((num(s.coordinationShareAtScale) ?? NaN) * 100, 4)}%`,
      reference: `${fmt(num(s.coordinationPerTask))} requests per task`,
      ratio: '–',
      target: '< 1%',
      met: met(num(s.coordinationShareAtScale), (x) => x < 0.01),
    },
  ];
}

function scaleRows(r: Json): SummaryRow[] {
  const rows: SummaryRow[] = arr(obj(r.sweep).cells).map((c) => {
    const p = obj(c.pack);
    return {
      bench: 'scale',
      measure: `GETs/s, ${fmt(num(c.latencyMs), 0)} ms × window ${fmt(num(c.window), 0)}, ${fmt(num(c.rows), 0)} rows`,
      stackflow: fmt(num(p.getsPerSecond), 0),
      reference: `bare SDK loop ${fmt(num(c.bareGetsPerSecond), 0)}`,
      ratio: `${fmt(num(c.ratio))}×`,
      target: '≥ 0.8×',
      met: met(num(c.ratio), (x) => x >= 0.8),
    };
  });
  const m = obj(r.full);
  const runs = arr(m.runs);
  const first = runs[0];
  const last = runs[runs.length - 1];
  if (first !== undefined && last !== undefined) {
    rows.push({
      bench: 'scale',
      measure: `peak RSS, ${fmt(num(first.rows), 0)} → ${fmt(num(last.rows), 0)} rows`,
      stackflow: `${fmt(num(first.peakRssMb), 0)} → ${fmt(num(last.peakRssMb), 0)} MB`,
      reference: 'the smaller shard',
      ratio: `${fmt(num(m.rssGrowth))}×`,
      target: '≤ 1.1×',
      met: met(num(m.rssGrowth), (x) => x <= 1.1),
    });
    rows.push({
      bench: 'scale',
      measure: 'peak scratch disk per running pack',
      stackflow: `${fmt(num(m.peakScratchParts))} parts`,
      reference: '–',
      ratio: '–',
      target: '≤ 2 parts',
      met: met(num(m.peakScratchParts), (x) => x <= 2),
    });
  }
  const c = obj(r.scaling);
  if (num(c.ratio) !== undefined) {
    rows.push({
      bench: 'scale',
      measure: 'rows/s, pack pinned to 2 cores vs 1',
      stackflow: `${fmt(num(c.twoRowsPerSecond), 0)} rows/s`,
      reference: `1 core ${fmt(num(c.oneRowsPerSecond), 0)} rows/s`,
      ratio: `${fmt(num(c.ratio))}×`,
      target: '≥ 1.7×',
      met: met(num(c.ratio), (x) => x >= 1.7),
    });
  }
  const a = obj(r.adaptive);
  if (num(a.shareOfLimit) !== undefined) {
    rows.push({
      bench: 'scale',
      measure: `adaptive window, store limit ${fmt(num(a.limit), 0)} GETs/s`,
      stackflow: `${fmt(num(a.shareOfLimit))}× R, ${fmt(num(a.slowDownShare) === undefined ? undefined : (num(a.slowDownShare) ?? 0) * 100, 1)}% SlowDown`,
      reference: `limit R = ${fmt(num(a.limit), 0)}`,
      ratio: `${fmt(num(a.shareOfLimit))}×`,
      target: '≥ 0.9 R, < 5% SlowDown',
      met: a.pass === true ? true : a.pass === false ? false : undefined,
    });
  }
  return rows;
}

function reportRows(r: Json): SummaryRow[] {
  const setup = obj(r.setup);
  const tasks = `${fmt(num(setup.tasks), 0)} tasks`;
  const bytes = num(r.pageBytes);
  const median = obj(r.medianMs);
  const open = obj(r.open);
  const rows: SummaryRow[] = [];
  if (bytes !== undefined) {
    rows.push({
      bench: 'report',
      measure: `page size, ${tasks}`,
      stackflow: `${fmt(bytes / 1e6)} MB`,
      reference: `its data ${fmt((num(r.modelJsonBytes) ?? 0) / 1e6)} MB`,
      ratio: `${fmt(num(r.pageOverModel))}×`,
      target: '< 5 MB',
      met: met(bytes, (x) => x < 5_000_000),
    });
  }
  if (num(median.report) !== undefined) {
    rows.push({
      bench: 'report',
      measure: `stackflow report, ${tasks}`,
      stackflow: ms(num(median.report)),
      reference: `stackflow status ${ms(num(median.status))}`,
      ratio: `${fmt(num(r.reportOverStatus))}×`,
      target: '–',
      met: undefined,
    });
  }
  const openMs = num(open.reportMs);
  if (openMs !== undefined) {
    rows.push({
      bench: 'report',
      measure: `page drawn in chromium, ${tasks}`,
      stackflow: ms(openMs),
      reference: `parse-only page ${ms(num(open.parseOnlyMs))}`,
      ratio: `${fmt(num(open.ratio))}×`,
      target: '< 2 s',
      met: met(openMs, (x) => x < 2000),
    });
  }
  return rows;
}

const EXTRACT: Record<string, (r: Json) => SummaryRow[]> = {
  planning: planningRows,
  pack: packRows,
  'pack-memory': packMemoryRows,
  fetch: fetchRows,
  fleet: fleetRows,
  'fleet-rehearsal': rehearsalRows,
  scale: scaleRows,
  report: reportRows,
};

/** The table's rows, in benchmark order, from whatever results are present. */
export function summaryRows(results: Record<string, unknown>): SummaryRow[] {
  return Object.entries(EXTRACT).flatMap(([name, f]) =>
    results[name] === undefined ? [] : f(obj(results[name])),
  );
}

/** The table as Markdown, with each benchmark's date, quick flag and machine underneath. */
export function renderMarkdown(rows: SummaryRow[], results: Record<string, unknown>): string {
  const cell = (s: string): string => s.replaceAll('|', '\\|');
  const lines = [
    '| Benchmark | Measure | stackflow | Reference | Ratio | Target | Met |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${[r.bench, r.measure, r.stackflow, r.reference, r.ratio, r.target].map(cell).join(' | ')} | ${r.met === undefined ? '–' : r.met ? 'yes' : '**no**'} |`,
    ),
    '',
  ];
  for (const [name, v] of Object.entries(results)) {
    const r = obj(v);
    const m = obj(r.machine);
    const quick = r.quick === true || obj(r.config).quick === true || obj(r.setup).quick === true;
    lines.push(
      `- ${name}: ${typeof r.date === 'string' ? r.date.slice(0, 16).replace('T', ' ') : '?'} UTC${quick ? ' (quick run)' : ''}, ${fmt(num(m.cores), 0)} cores, ${fmt(num(m.memoryGiB), 0)} GiB, Node ${typeof m.node === 'string' ? m.node : '?'}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
