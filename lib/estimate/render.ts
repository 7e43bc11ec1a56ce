/**
 * PURE: an estimate as text — the totals, the fleet and its makespan with every bound, S3 requests
 * by purpose with their price, and the inputs it assumed.
 */
import type { Estimate } from './model.js';
import { fmtDuration } from './model.js';

const n0 = (n: number): string => Math.round(n).toLocaleString('en-US');
/** 2.73B, 917M, 12.3k, 950. */
export function fmtCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return n0(n);
}
/** Decimal bytes, as the dataset card and AWS bill them. */
export function fmtBytes(b: number): string {
  if (b >= 1e12) return `${(b / 1e12).toFixed(2)} TB`;
  if (b >= 1e9) return `${(b / 1e9).toFixed(1)} GB`;
  if (b >= 1e6) return `${(b / 1e6).toFixed(1)} MB`;
  if (b >= 1e3) return `${(b / 1e3).toFixed(1)} KB`;
  return `${n0(b)} B`;
}
/** Hours with two significant digits below 10. */
const hours = (h: number): string => (h >= 10 ? n0(h) : h.toPrecision(2));
const usd = (x: number): string => (x >= 100 ? `$${n0(x)}` : `$${x.toFixed(2)}`);

const LIMITS: Record<Estimate['makespan']['limitedBy'], string> = {
  cpu: 'CPU (the packs’ cores)',
  window: 'the fetch window (GETs in flight × latency)',
  'longest-task': 'the longest pack (more hosts do not shorten it)',
  'store-rate': 'the store’s GET rate',
  network: 'the hosts’ network',
};

export function renderEstimate(e: Estimate, deadline?: { seconds: number; line: string }): string {
  const { totals: t, makespan: m, inputs: i } = e;
  const f = i.fleet;
  const c = i.calibration;
  const rowsFrom = [
    t.rowsFrom.footer > 0 ? `${t.rowsFrom.footer} from parquet footers` : '',
    t.rowsFrom.listing > 0 ? `${t.rowsFrom.listing} from the listing` : '',
    t.rowsFrom.size > 0 ? `${t.rowsFrom.size} from listing sizes` : '',
  ].filter(Boolean);
  const out: string[] = [];
  out.push(
    `plan: ${n0(t.parquets)} parquet${t.parquets === 1 ? '' : 's'} to pack (rows: ${rowsFrom.join(', ') || 'none'})`,
  );
  out.push(`  rows          ${fmtCount(t.rows)} (${n0(t.rows)})`);
  out.push(`  content GETs  ${fmtCount(t.gets)}`);
  out.push(
    `  bytes in      ${fmtBytes(t.bytesIn.content)} of content (gzip) + ${fmtBytes(t.bytesIn.parquets)} of parquets`,
  );
  out.push(
    `  bytes out     ${fmtBytes(t.bytesOut)} packed (.jsonl.zst, ${fmtCount(t.parts)} parts; ${fmtBytes(t.jsonBytes)} of JSON before zstd)`,
  );
  out.push(`  CPU           ${hours(t.cpuHours)} core-hours`);
  out.push('');
  out.push(
    `fleet: ${f.hosts} host${f.hosts === 1 ? '' : 's'} × ${f.cores} cores, ${f.memoryGiB} GiB; each ${e.sizing.summary.replace(/^.*→ /, '')}`,
  );
  out.push(
    t.rows === 0
      ? '  makespan     0 s: nothing to pack'
      : `  makespan     ${fmtDuration(m.seconds)}, limited by ${LIMITS[m.limitedBy]}; ${hours(m.hostHours)} host-hours`,
  );
  out.push(
    `  bounds       packs ${fmtDuration(m.bounds.packs)} (one pack ${n0(m.packRowsPerSecond)} rows/s, ${m.packLimitedBy === 'cpu' ? 'CPU' : 'window'}-bound) · longest pack ${fmtDuration(m.bounds.longestTask)} · store ${fmtDuration(m.bounds.storeRate)} · network ${fmtDuration(m.bounds.network)}`,
  );
  if (deadline) out.push(`  deadline     ${deadline.line}`);
  out.push('');
  out.push(
    'S3 requests by purpose                                   GET     PUT/LIST     DELETE     cost',
  );
  for (const l of [...e.requests.lines, e.requests.total]) {
    out.push(
      `  ${l.purpose.padEnd(52)} ${fmtCount(l.gets).padStart(8)} ${fmtCount(l.putsLists).padStart(12)} ${fmtCount(l.deletes).padStart(10)} ${usd(l.usd).padStart(8)}`,
    );
  }
  out.push(
    `  coordination: ${(e.requests.coordinationShare * 100).toFixed(3)}% of all requests; egress ${usd(e.egressUsd)} (${i.prices.egressPerGB === 0 ? 'hosts in the bucket’s region' : `$${i.prices.egressPerGB}/GB`})`,
  );
  out.push('');
  out.push('inputs (a model, not a measurement):');
  out.push(`  calibration  ${c.from}`);
  out.push(
    `               ${n0(c.cpuSecondsPerMillionRows)} CPU-s per 1M rows · ${c.getsPerRow} GET/row · ${fmtBytes(c.gzBytesPerGet)}/GET · ${fmtBytes(c.jsonBytesPerRow)} JSON and ${fmtBytes(c.outputBytesPerRow)} packed per row`,
  );
  out.push(
    `  store        ${n0(f.storeGetsPerSecond)} GETs/s for the fleet (--store-rate; S3: 5,500/s per prefix partition), ${f.latencyMs} ms median latency`,
  );
  out.push(
    `  hosts        ${f.hostGbps} Gbit/s each; lease TTL ${f.leaseTtlS} s, poll ${f.pollMs} ms, ${n0(f.rowsPerPart)} rows per part; work store ${f.remoteWork ? 'remote' : 'local'}`,
  );
  out.push(`  prices       ${i.prices.source}`);
  return out.join('\n') + '\n';
}
