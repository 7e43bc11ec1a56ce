/**
 * What the S3 test server (server.ts, a child process) and its test-side handle (harness.ts) say to
 * each other over the admin API. Types and pure validation only, so both sides can import it.
 *
 * The admin API lives under {@link ADMIN_PREFIX} on the S3 port itself: bucket names cannot contain
 * `_`, so no S3 request can reach it.
 */

export const ADMIN_PREFIX = '/__harness/';

/** The credentials s3rver's single built-in account accepts (the only access key it knows). */
export const CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/**
 * How an injected fault behaves.
 * - `500`: 500 InternalError (S3 XML); the request is not applied.
 * - `503`: 503 SlowDown (S3 XML); the request is not applied.
 * - `reset`: the TCP connection is reset before any response; the request is not applied.
 * - `latency`: the request waits `latencyMs`, then is served normally.
 * - `reset-mid-body`: only for GetObject with a non-empty body: the headers and about half the
 *   body are sent, then the connection is closed (the client sees a premature close).
 */
export type FaultKind = '500' | '503' | 'reset' | 'latency' | 'reset-mid-body';

export const FAULT_KINDS: readonly FaultKind[] = [
  '500',
  '503',
  'reset',
  'latency',
  'reset-mid-body',
];

/** Which requests fail, and how. Admin requests are never faulted. */
export interface FaultConfig {
  /** Probability (0..1) that an eligible request is faulted. */
  rate: number;
  /** One is chosen per faulted request, among those that apply to it (see {@link FaultKind}). */
  kinds: FaultKind[];
  /** Delay of a `latency` fault. Default 200 ms. */
  latencyMs?: number;
  /** Seed of the fault PRNG: the same seed and the same request order give the same faults. */
  seed?: number;
  /** Only requests with these HTTP methods are eligible (e.g. `['GET']`). Default: all. */
  methods?: string[];
  /**
   * Only requests whose object key starts with this are eligible; a listing is eligible when its
   * `prefix` parameter starts with it. Requests with neither (bucket operations) are not eligible.
   */
  keyPrefix?: string;
  /** Only requests to this bucket are eligible. */
  bucket?: string;
  /** Only UploadPart requests for these part numbers are eligible (one part failing for good). */
  partNumbers?: number[];
}

/**
 * Which conditional-request checks the server enforces, to imitate weaker stores. A disabled check
 * is ignored (the write or delete goes ahead, as on a store that does not support it), never
 * rejected. Conditional reads (GET/HEAD) are always enforced.
 */
export interface Features {
  /** `If-None-Match: *` on PutObject, CopyObject and CompleteMultipartUpload. */
  ifNoneMatch: boolean;
  /** `If-Match: <etag>` on PutObject, CopyObject and CompleteMultipartUpload. */
  ifMatch: boolean;
  /** `If-Match` on DeleteObject and `<ETag>` in DeleteObjects (AWS since 2025-09). */
  conditionalDelete: boolean;
}

export const DEFAULT_FEATURES: Features = {
  ifNoneMatch: true,
  ifMatch: true,
  conditionalDelete: true,
};

/** What the server saw since it started or since the last reset. Admin requests are not counted. */
export interface ServerStats {
  /** S3 requests received, faulted ones included. */
  requests: number;
  /** Requests by S3 operation name (`GetObject`, `PutObject`, `ListObjectsV2`, ...). */
  byOp: Record<string, number>;
  /** Injected faults by kind. */
  faults: Record<string, number>;
  /** The `Range` header of every GetObject that had one, in arrival order. */
  ranges: { bucket: string; key: string; range: string }[];
}

/** Parses an admin `faults` body: a FaultConfig, or null to switch faults off. */
export function parseFaultConfig(value: unknown): FaultConfig | null {
  if (value === null) return null;
  if (typeof value !== 'object') throw new Error('faults: expected an object or null');
  const v = value as Record<string, unknown>;
  const known = new Set([
    'rate',
    'kinds',
    'latencyMs',
    'seed',
    'methods',
    'keyPrefix',
    'bucket',
    'partNumbers',
  ]);
  for (const k of Object.keys(v)) if (!known.has(k)) throw new Error(`faults: unknown field ${k}`);
  const { rate, kinds, latencyMs, seed, methods, keyPrefix, bucket, partNumbers } = v;
  if (typeof rate !== 'number' || !(rate >= 0 && rate <= 1)) {
    throw new Error('faults.rate: expected a number in 0..1');
  }
  if (!Array.isArray(kinds) || kinds.length === 0) {
    throw new Error('faults.kinds: expected a non-empty array');
  }
  const checkedKinds = kinds.map((k: unknown) => {
    const kind = FAULT_KINDS.find((known) => known === k);
    if (kind === undefined) throw new Error(`faults.kinds: unknown kind ${JSON.stringify(k)}`);
    return kind;
  });
  const out: FaultConfig = { rate, kinds: checkedKinds };
  if (latencyMs !== undefined) {
    if (typeof latencyMs !== 'number' || !(latencyMs >= 0)) {
      throw new Error('faults.latencyMs: expected a number >= 0');
    }
    out.latencyMs = latencyMs;
  }
  if (seed !== undefined) {
    if (typeof seed !== 'number' || !Number.isInteger(seed)) {
      throw new Error('faults.seed: expected an integer');
    }
    out.seed = seed;
  }
  if (methods !== undefined) {
    if (!Array.isArray(methods) || !methods.every((m) => typeof m === 'string')) {
      throw new Error('faults.methods: expected an array of strings');
    }
    out.methods = methods.map((m: string) => m.toUpperCase());
  }
  if (keyPrefix !== undefined) {
    if (typeof keyPrefix !== 'string') throw new Error('faults.keyPrefix: expected a string');
    out.keyPrefix = keyPrefix;
  }
  if (bucket !== undefined) {
    if (typeof bucket !== 'string') throw new Error('faults.bucket: expected a string');
    out.bucket = bucket;
  }
  if (partNumbers !== undefined) {
    if (!Array.isArray(partNumbers) || !partNumbers.every((n) => Number.isInteger(n))) {
      throw new Error('faults.partNumbers: expected an array of integers');
    }
    out.partNumbers = partNumbers as number[];
  }
  return out;
}

/** Parses an admin `features` body: any subset of {@link Features}. */
export function parseFeatures(value: unknown): Partial<Features> {
  if (typeof value !== 'object' || value === null) throw new Error('features: expected an object');
  const out: Partial<Features> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k !== 'ifNoneMatch' && k !== 'ifMatch' && k !== 'conditionalDelete') {
      throw new Error(`features: unknown field ${k}`);
    }
    if (typeof v !== 'boolean') throw new Error(`features.${k}: expected a boolean`);
    out[k] = v;
  }
  return out;
}
