/**
 * PURE: `stackflow estimate` — what a plan costs on a fleet: rows, GETs, bytes, CPU-hours, the
 * makespan on N hosts of C cores and what limits it, S3 requests by purpose and their price; and
 * the inverse, the hosts a deadline needs. A model, not a measurement: every input is in the
 * result, so a reader can see what it assumed.
 *
 *   makespan = max( pack schedule   longest-first over hosts × packs per host (lib/sizing.ts),
 *                                   each pack at min(its cores / CPU per row, its window / latency)
 *                 , store rate      all content GETs / the GETs per second the store allows
 *                 , network         bytes in per host / the host's bandwidth )
 *
 * Requests: content GETs (one per row, from the calibration); outputs (each part a multipart
 * upload of 16 MiB parts); coordination in the state store: per task a lease create (+ lost
 * races), a heartbeat (a PUT and a LIST) every TTL/8 while it runs (lib/epoch-holder.ts), the old marker's delete and
 * the new marker, a record per part; per planning round (one per task finished, and every poll
 * while a host waits in the tail) a listing of markers, leases, the work store and the bucket.
 */
import type { Calibration } from './calibration.js';
import type { SizingDecision } from '../sizing.js';
import { decideSizing } from '../sizing.js';
import { scheduleLongestFirst } from './schedule.js';

/** One parquet the plan would pack. */
export interface PlannedParquet {
  /** `pack:<Language>/<stem>`. */
  id: string;
  /** Parquet bytes (the Hub listing's size). */
  bytes: number;
  /** Rows: from its footer (or the listing) when known, else bytes × rows per byte. */
  rows: number;
  rowsFrom: 'footer' | 'listing' | 'size';
}

/** S3 list prices, and when they were read. */
export interface Prices {
  /** Where and when. */
  source: string;
  getPer1k: number;
  /** PUT, COPY, POST, LIST. */
  putListPer1k: number;
  /** Per GB leaving the region (0 when the hosts run in the bucket's region). */
  egressPerGB: number;
}

/**
 * us-east-1, S3 Standard, as quoted in issue 10 (2026-12): GET $0.0004 per 1,000, PUT/COPY/POST/
 * LIST $0.005 per 1,000, DELETE free. Egress: 0 for hosts in us-east-1 (S3 to EC2 in one region
 * is free); hosts elsewhere pay internet egress (about $0.09/GB for the first 10 TB a month):
 * pass it with --egress-per-gb.
 */
export const DEFAULT_PRICES: Prices = {
  source: 'S3 Standard, us-east-1, list prices as of 2026-12 (GET $0.0004/1k, PUT/LIST $0.005/1k)',
  getPer1k: 0.0004,
  putListPer1k: 0.005,
  egressPerGB: 0,
};

/** The fleet and the world around it. */
export interface FleetAssumptions {
  hosts: number;
  cores: number;
  /** Memory per host (for the host's sizing). */
  memoryGiB: number;
  /** Median time to first byte of a content GET. */
  latencyMs: number;
  /** GETs per second the content store serves the whole fleet (S3: 5,500 per prefix partition). */
  storeGetsPerSecond: number;
  /** Network per host, Gbit/s. */
  hostGbps: number;
  /** Lease TTL (heartbeat every TTL/8) and the pause between plans of a waiting worker. */
  leaseTtlS: number;
  pollMs: number;
  rowsPerPart: number;
  /** The work store is remote (each pack copies its parquet into scratch). */
  remoteWork: boolean;
}

/**
 * Defaults: i4i.8xlarge-like hosts (32 vCPU, 256 GiB, "up to 18.75 Gbps"; we plan on 10), the
 * synthetic SWH's median latency (20 ms), S3's documented 5,500 GETs/s for one prefix partition
 * (`content/` is one prefix until S3 splits it under sustained load), stackflow's defaults for
 * TTL, poll and rows per part.
 */
export const DEFAULT_FLEET: FleetAssumptions = {
  hosts: 1,
  cores: 32,
  memoryGiB: 256,
  latencyMs: 20,
  storeGetsPerSecond: 5500,
  hostGbps: 10,
  leaseTtlS: 60,
  pollMs: 500,
  rowsPerPart: 16384,
  remoteWork: true,
};

export interface EstimateInput {
  parquets: readonly PlannedParquet[];
  /** Every task of the plan (all stages): markers and leases the planning rounds list. */
  tasksInPlan: number;
  calibration: Calibration;
  fleet: FleetAssumptions;
  prices: Prices;
}

/** What sets the makespan: the packs' CPU or window, the longest pack, the store, the network. */
export type Limiter = 'cpu' | 'window' | 'longest-task' | 'store-rate' | 'network';

/** Each bound on the makespan, in seconds. */
export interface Bounds {
  /** Longest-first schedule of the packs over hosts × packs per host. */
  packs: number;
  /** The longest pack alone (more hosts do not shorten it). */
  longestTask: number;
  /** All content GETs at the store's rate. */
  storeRate: number;
  /** Bytes in per host at its bandwidth. */
  network: number;
}

/** Requests of one purpose. */
export interface RequestLine {
  purpose: string;
  gets: number;
  putsLists: number;
  deletes: number;
  usd: number;
}

export interface Estimate {
  inputs: EstimateInput;
  sizing: Pick<SizingDecision, 'packs' | 'lineWorkers' | 'window' | 'summary'>;
  totals: {
    parquets: number;
    rows: number;
    rowsFrom: Record<PlannedParquet['rowsFrom'], number>;
    gets: number;
    /** Content (gzip) bytes fetched, and the parquets read. */
    bytesIn: { content: number; parquets: number };
    /** Packed output. */
    bytesOut: number;
    jsonBytes: number;
    cpuHours: number;
    parts: number;
  };
  /** Seconds, each bound and the result. */
  makespan: {
    seconds: number;
    limitedBy: Limiter;
    bounds: Bounds;
    /** rows/s of one pack, and why. */
    packRowsPerSecond: number;
    packLimitedBy: 'cpu' | 'window';
    hostHours: number;
  };
  requests: { lines: RequestLine[]; total: RequestLine; coordinationShare: number };
  egressUsd: number;
}

const GiB = 2 ** 30;

/** How one host of the fleet sizes itself (lib/sizing.ts, with the fleet's assumptions). */
function hostSizing(f: FleetAssumptions) {
  return decideSizing(
    {
      cores: f.cores,
      memoryBytes: f.memoryGiB * GiB,
      freeDiskBytes: undefined,
      openFilesLimit: undefined,
    },
    { parquetScratchBytes: f.remoteWork ? 3e9 : 0 },
  );
}

export function estimate(input: EstimateInput): Estimate {
  const { parquets, calibration: cal, fleet: f, prices } = input;
  const sizing = hostSizing(f);
  const rows = parquets.reduce((a, p) => a + p.rows, 0);
  const gets = rows * cal.getsPerRow;
  const cpuPerRow = cal.cpuSecondsPerMillionRows / 1e6;
  const coresPerPack = f.cores / sizing.packs;
  const byCpu = coresPerPack / cpuPerRow;
  const byWindow = sizing.window.perPack / (f.latencyMs / 1000) / cal.getsPerRow;
  const packRate = Math.min(byCpu, byWindow);
  const durations = parquets.map((p) => p.rows / packRate);
  const slots = f.hosts * sizing.packs;
  const sched = scheduleLongestFirst(durations, slots);
  const longest = Math.max(0, ...durations);
  const contentBytes = gets * cal.gzBytesPerGet;
  const parquetBytes = parquets.reduce((a, p) => a + p.bytes, 0);
  const bounds: Bounds = {
    packs: sched.makespan,
    longestTask: longest,
    storeRate: gets / f.storeGetsPerSecond,
    network: (contentBytes + parquetBytes) / f.hosts / ((f.hostGbps * 1e9) / 8),
  };
  const seconds = Math.max(bounds.packs, bounds.storeRate, bounds.network);
  const packLimitedBy = byWindow < byCpu ? 'window' : 'cpu';
  const limitedBy: Limiter =
    seconds === bounds.storeRate
      ? 'store-rate'
      : seconds === bounds.network
        ? 'network'
        : longest >= sched.makespan * 0.99
          ? 'longest-task'
          : packLimitedBy;
  const parts = parquets.reduce((a, p) => a + Math.max(1, Math.ceil(p.rows / f.rowsPerPart)), 0);

  // Requests.
  const put = prices.putListPer1k / 1000;
  const get = prices.getPer1k / 1000;
  const line = (purpose: string, g: number, pl: number, d = 0): RequestLine => ({
    purpose,
    gets: Math.round(g),
    putsLists: Math.round(pl),
    deletes: Math.round(d),
    usd: g * get + pl * put,
  });
  const partBytes = f.rowsPerPart * cal.outputBytesPerRow;
  const uploadsPerPart = partBytes > 16 * 2 ** 20 ? 2 + Math.ceil(partBytes / (16 * 2 ** 20)) : 1;
  const tasks = parquets.length;
  const heartbeats = durations.reduce((a, d) => a + Math.floor(d / (f.leaseTtlS / 8)), 0);
  // Planning rounds: one per task finished, and a poll every pollMs while a host waits in the
  // tail for tasks others hold (its slots are done, the fleet's are not).
  const hostEnds = new Array<number>(f.hosts).fill(0);
  sched.slotEnds.forEach((end, i) => {
    const h = i % f.hosts;
    hostEnds[h] = Math.max(hostEnds[h] ?? 0, end);
  });
  const makespanSched = sched.makespan;
  const tailPolls = hostEnds.reduce(
    (a, end) => a + Math.max(0, makespanSched - end) / (f.pollMs / 1000),
    0,
  );
  const rounds = tasks + tailPolls;
  // Objects a round lists, on average over the run (half the final counts): markers and leases
  // of every task, the bucket's parts and what the other stages wrote.
  const pagesPerRound =
    Math.ceil(input.tasksInPlan / 2 / 1000) * 2 + Math.ceil((parts + input.tasksInPlan) / 2 / 1000);
  const lines = [
    line('content GETs (the blobs; billed to the bucket owner)', gets, 0),
    line('outputs: packed parts (multipart uploads)', 0, parts * uploadsPerPart),
    line('coordination: lease claims (+ lost races)', 0, tasks * 1.25),
    line('coordination: heartbeats (PUT + LIST every TTL/8)', 0, heartbeats * 2),
    line('coordination: markers and part records', 0, tasks + parts, tasks),
    line('coordination: planning listings', 0, rounds * pagesPerRound),
  ];
  const sum = (k: 'gets' | 'putsLists' | 'deletes' | 'usd') => lines.reduce((a, l) => a + l[k], 0);
  const total: RequestLine = {
    purpose: 'total',
    gets: sum('gets'),
    putsLists: sum('putsLists'),
    deletes: sum('deletes'),
    usd: sum('usd'),
  };
  const coordination = lines
    .filter((l) => l.purpose.startsWith('coordination'))
    .reduce((a, l) => a + l.gets + l.putsLists + l.deletes, 0);
  return {
    inputs: input,
    sizing: {
      packs: sizing.packs,
      lineWorkers: sizing.lineWorkers,
      window: sizing.window,
      summary: sizing.summary,
    },
    totals: {
      parquets: tasks,
      rows,
      rowsFrom: {
        footer: parquets.filter((p) => p.rowsFrom === 'footer').length,
        listing: parquets.filter((p) => p.rowsFrom === 'listing').length,
        size: parquets.filter((p) => p.rowsFrom === 'size').length,
      },
      gets,
      bytesIn: { content: contentBytes, parquets: parquetBytes },
      bytesOut: rows * cal.outputBytesPerRow,
      jsonBytes: rows * cal.jsonBytesPerRow,
      cpuHours: (rows * cpuPerRow) / 3600,
      parts,
    },
    makespan: {
      seconds,
      limitedBy,
      bounds,
      packRowsPerSecond: packRate,
      packLimitedBy,
      hostHours: (f.hosts * seconds) / 3600,
    },
    requests: {
      lines,
      total,
      coordinationShare: coordination / Math.max(1, total.gets + total.putsLists + total.deletes),
    },
    egressUsd: ((contentBytes + parquetBytes) / 1e9) * prices.egressPerGB,
  };
}

/**
 * The fewest hosts that finish by `deadlineS`, or why none can: a bound that hosts do not move
 * (the store's rate, the longest task) is past the deadline.
 */
export function hostsFor(
  input: Omit<EstimateInput, 'fleet'> & { fleet: Omit<FleetAssumptions, 'hosts'> },
  deadlineS: number,
): { hosts: number; estimate: Estimate } | { hosts: null; reason: string; estimate: Estimate } {
  const at = (hosts: number) => estimate({ ...input, fleet: { ...input.fleet, hosts } });
  const MAX = 100_000;
  const many = at(Math.max(1, Math.min(MAX, input.parquets.length * 4)));
  const b = many.makespan.bounds;
  const fixed = Math.max(b.storeRate, b.longestTask);
  if (fixed > deadlineS) {
    const which =
      b.storeRate >= b.longestTask
        ? `the store's rate (${input.fleet.storeGetsPerSecond} GETs/s) needs ${fmtDuration(b.storeRate)} whatever the hosts`
        : `the longest pack alone takes ${fmtDuration(b.longestTask)}`;
    // The fewest hosts that reach that bound: more would only wait on it.
    const enough = fewest(at, Math.max(1, Math.min(MAX, input.parquets.length * 4)), fixed * 1.001);
    return {
      hosts: null,
      reason: `no fleet finishes in ${fmtDuration(deadlineS)}: ${which}; ${enough.inputs.fleet.hosts === 1 ? '1 host already reaches' : `${enough.inputs.fleet.hosts} hosts already reach`} that bound`,
      estimate: enough,
    };
  }
  const e = fewest(at, Math.max(1, Math.min(MAX, input.parquets.length * 4)), deadlineS);
  if (e.makespan.seconds > deadlineS) {
    return {
      hosts: null,
      reason: `no fleet of up to ${e.inputs.fleet.hosts} hosts finishes in ${fmtDuration(deadlineS)}`,
      estimate: e,
    };
  }
  return { hosts: e.inputs.fleet.hosts, estimate: e };
}

/** The estimate of the fewest hosts (≤ hi) whose makespan is within `seconds` (binary search). */
function fewest(at: (hosts: number) => Estimate, hi: number, seconds: number): Estimate {
  let lo = 1;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (at(mid).makespan.seconds <= seconds) hi = mid;
    else lo = mid + 1;
  }
  return at(lo);
}

/** `36 h 10 min`, `12 min`, `40 s`. */
export function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return '∞';
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  const h = Math.floor(s / 3600);
  const m = Math.round((s - h * 3600) / 60);
  if (h >= 72) return `${(s / 86400).toFixed(1)} days`;
  return m === 0 ? `${h} h` : `${h} h ${m} min`;
}

/** `24h`, `90m`, `2d`, `3600s`, `1.5h` → seconds; undefined if not a duration. */
export function parseDuration(v: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?$/.exec(v.trim());
  if (m?.[1] === undefined) return undefined;
  const n = Number(m[1]);
  const unit = { s: 1, m: 60, min: 60, h: 3600, d: 86400 }[m[2] ?? 's'] ?? 1;
  return n > 0 ? n * unit : undefined;
}
