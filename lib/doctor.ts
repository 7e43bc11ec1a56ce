/**
 * `stackflow doctor <store-url>`: what a store enforces, and so how hosts can share a graph on it.
 *
 * Opens the store, probes it afresh (lib/io/stores/probe.ts; the fresh report also refreshes the probe
 * cache that runs reuse), and renders a short table plus a verdict. Returns the text and the
 * exit code instead of printing, so that the CLI owns stdout and exit codes and tests read both:
 *
 *   0  dynamic claiming works (`stackflow run --worker`)
 *   1  the store works, but dynamic claiming is refused: static sharding (`--shard i/N`) only
 *   2  the URL is invalid, or the store cannot be used (unreachable, access denied, no bucket)
 */
import type { Failure } from './errors.js';
import { cachedProbe, leaseSupport, probeStore } from './io/stores/probe.js';
import type { LeaseSupport, ProbeReport } from './io/stores/probe.js';
import type { S3BucketSettings } from './io/stores/s3-location.js';
import { S3Store } from './io/stores/s3-store.js';
import type { S3StoreOptions } from './io/stores/s3-store.js';
import { openStore } from './io/stores/store-url.js';

export interface DoctorOptions {
  /** pipeline.yaml's `s3:` block: endpoint, region, path style per bucket. */
  s3Settings?: Readonly<Record<string, S3BucketSettings>>;
  /** Environment for endpoint and region defaults (credentials come from the SDK's chain). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Where the fresh report is cached for runs (`<cacheDir>/probes/`); none: not cached. */
  cacheDir?: string;
  /** Print the report and the verdict as JSON instead of the table. */
  json?: boolean;
  /**
   * S3 client tuning. Default: 3 retries, so an unreachable endpoint is reported in seconds
   * rather than after a run's patient backoff.
   */
  s3Store?: S3StoreOptions;
}

/** What the CLI prints, and the exit code it returns. */
export interface DoctorResult {
  code: 0 | 1 | 2;
  /** The whole output, ending with a newline. */
  out: string;
}

/** Probes `url` and renders the findings; see the file comment for the exit codes. */
export async function doctor(url: string, opts: DoctorOptions = {}): Promise<DoctorResult> {
  const opened = openStore(url, {
    ...(opts.s3Settings !== undefined ? { s3: opts.s3Settings } : {}),
    ...(opts.env !== undefined ? { env: opts.env } : {}),
    s3Store: { retries: 3, ...opts.s3Store },
  });
  if (!opened.ok) return unusable(url, opened.error, opts.json === true);
  const store = opened.value;
  try {
    const probed =
      opts.cacheDir !== undefined
        ? await cachedProbe(store, opts.cacheDir, { reprobe: true })
        : await probeStore(store);
    if (!probed.ok) return unusable(url, probed.error, opts.json === true);
    const verdict = leaseSupport(probed.value);
    const code = verdict.dynamic ? 0 : 1;
    if (opts.json === true) {
      return { code, out: `${JSON.stringify({ report: probed.value, verdict }, null, 2)}\n` };
    }
    return { code, out: renderReport(probed.value, verdict) };
  } finally {
    // The S3 client keeps sockets alive; a one-shot command must not wait for them to idle out.
    if (store instanceof S3Store) store.close();
  }
}

function unusable(url: string, f: Failure, json: boolean): DoctorResult {
  if (json) {
    const error = { reason: f.reason, message: f.message };
    return { code: 2, out: `${JSON.stringify({ url, error }, null, 2)}\n` };
  }
  return { code: 2, out: `❌ ${url}: cannot use this store: ${f.message}\n` };
}

/** One table row per capability: the name, and what each answer means for stackflow. */
const CAPABILITIES: readonly {
  field: 'createOnly' | 'ifMatch' | 'conditionalDelete';
  name: string;
  enforced: string;
  ignored: string;
}[] = [
  {
    field: 'createOnly',
    name: 'create-only puts',
    enforced: 'a lease claim is a create-only put: exactly one host wins each task',
    ignored: 'two hosts could win the same claim: dynamic claiming needs this',
  },
  {
    field: 'ifMatch',
    name: 'replace-if-etag puts',
    enforced: 'available; the lease protocol does not need it',
    ignored: 'not needed: leases use create-only puts only',
  },
  {
    field: 'conditionalDelete',
    name: 'conditional deletes',
    enforced: 'available; the lease protocol does not need them',
    ignored: 'not needed: a lease holder deletes only its own epochs',
  },
];

/** Seconds with a sign and one decimal: `+0.4 s`, `-12.0 s` (never `-0.0 s`). */
function seconds(ms: number): string {
  const tenths = Math.round(ms / 100);
  return `${tenths < 0 ? '-' : '+'}${(Math.abs(tenths) / 10).toFixed(1)} s`;
}

/** The human table: capabilities, the clock, any notes, and the verdict. */
export function renderReport(report: ProbeReport, verdict: LeaseSupport): string {
  const rows: [string, string, string][] = CAPABILITIES.map((c) =>
    report[c.field] ? [c.name, 'enforced', c.enforced] : [c.name, 'ignored', c.ignored],
  );
  // S3 reports times in whole seconds, so the skew there is only known to about a second.
  const coarse = report.url.startsWith('s3://') ? ', ±1 s: S3 times are whole seconds' : '';
  rows.push([
    'clock skew',
    seconds(report.clock.skewMs),
    `store minus this host${coarse}; lease ages use only the store's clock`,
  ]);
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max('enforced'.length, ...rows.map((r) => r[1].length)); // stable columns
  const lines = [
    `stackflow doctor ${report.url} (probed ${report.probedAt})`,
    '',
    ...rows.map(([a, b, c]) => `  ${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`),
  ];
  if (report.notes.length > 0) lines.push('', ...report.notes.map((n) => `  note: ${n}`));
  lines.push(
    '',
    verdict.dynamic
      ? `✅ dynamic claiming works: stackflow run --worker uses the ${verdict.protocol} lease protocol`
      : `❌ dynamic claiming is refused: ${verdict.reason}`,
  );
  return `${lines.join('\n')}\n`;
}
