/**
 * PURE: what one row of pack costs, the calibration `stackflow estimate` multiplies the plan by.
 * Three sources, best first:
 *
 *   file     `--calibration <file>`: bench/results/scale.json (its `calibration` object, written by
 *            the full-size rehearsal `npm run bench -- --only scale`) or a file holding that object
 *   markers  finished pack markers on this fleet: their counts (rows, JSON and zstd bytes) replace
 *            the byte figures, and get better as the run goes
 *   default  the figures below, derived from bench/results/pack.json and fetch.json (2026-12, 2
 *            cores) and the dataset's published totals; each says where it comes from
 */

/** Per-row costs of pack. */
export interface Calibration {
  /** Where the figures come from, for the printed inputs. */
  from: string;
  /** CPU seconds (all threads) per million rows packed, SDK fetches included. */
  cpuSecondsPerMillionRows: number;
  /** Content GETs per row (1: one blob per row; retries and 503s add to it). */
  getsPerRow: number;
  /** Gzip bytes per content GET. */
  gzBytesPerGet: number;
  /** JSON lines bytes per row (before zstd). */
  jsonBytesPerRow: number;
  /** Packed (zstd) bytes per row. */
  outputBytesPerRow: number;
}

/**
 * The defaults, when neither a rehearsal nor markers say better:
 * - CPU: pack.json packs 50,000 rows of 10.9 KB of JSON each in 7.02 s on 1.67 cores (234 core-s
 *   per 1M rows, local blobs); scaled to the dataset's ~21 KB per row that is ~450, plus fetch.json's
 *   ~0.6 ms of SDK CPU per GET (600 per 1M rows): 1,050.
 * - One GET per row; ~20 KB of text per row (DOMAIN.md) gzips to ~6 KB.
 * - Output: the public packager wrote 15.1 TB for 2.73B rows, 5.5 KB per row.
 */
export const DEFAULT_CALIBRATION: Calibration = {
  from: 'defaults (bench/results/pack.json, fetch.json, the public packager’s output size)',
  cpuSecondsPerMillionRows: 1050,
  getsPerRow: 1,
  gzBytesPerGet: 6000,
  jsonBytesPerRow: 21_000,
  outputBytesPerRow: 5_500,
};

const FIELDS = [
  'cpuSecondsPerMillionRows',
  'getsPerRow',
  'gzBytesPerGet',
  'jsonBytesPerRow',
  'outputBytesPerRow',
] as const;

/**
 * A calibration from a parsed JSON file: scale.json (its `calibration`) or the object itself.
 * Fields it lacks keep their defaults (and the `from` says which came from the file); an error
 * message when it holds none of them or a value is not a positive number.
 */
export function parseCalibration(
  json: unknown,
  name: string,
): { ok: true; value: Calibration } | { ok: false; message: string } {
  const isObj = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObj(json)) return { ok: false, message: `${name}: not a JSON object` };
  const c = isObj(json.calibration) ? json.calibration : json;
  const out: Calibration = { ...DEFAULT_CALIBRATION };
  const found: string[] = [];
  for (const f of FIELDS) {
    const v = c[f];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      return {
        ok: false,
        message: `${name}: ${f} must be a positive number, got ${JSON.stringify(v)}`,
      };
    }
    out[f] = v;
    found.push(f);
  }
  if (found.length === 0) {
    return {
      ok: false,
      message: `${name}: no calibration figures (expected a "calibration" object with ${FIELDS.join(', ')}; bench/results/scale.json has one after \`npm run bench -- --only scale\`)`,
    };
  }
  const src = typeof c.from === 'string' ? ` (${c.from})` : '';
  out.from =
    found.length === FIELDS.length
      ? `${name}${src}`
      : `${name}${src} for ${found.join(', ')}; defaults for the rest`;
  return { ok: true, value: out };
}

/** What finished pack markers on this fleet say (their counts). */
export interface MarkerFigures {
  packs: number;
  rows: number;
  rawBytes: number;
  zstBytes: number;
}

/**
 * The calibration with the byte figures measured by finished packs (the CPU figure stays: markers
 * carry wall time, not CPU time). Unchanged when no pack has finished with rows.
 */
export function withMarkers(c: Calibration, m: MarkerFigures): Calibration {
  if (m.packs === 0 || m.rows === 0) return c;
  return {
    ...c,
    from: `${c.from}; bytes per row from ${m.packs} finished pack${m.packs === 1 ? '' : 's'} (${m.rows} rows)`,
    jsonBytesPerRow: m.rawBytes / m.rows,
    outputBytesPerRow: m.zstBytes / m.rows,
  };
}
