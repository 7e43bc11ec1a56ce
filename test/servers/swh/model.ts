/**
 * The behaviour of the synthetic Software Heritage (server.ts), as pure functions of a config, a
 * random source and a clock, so unit tests can check each part without a socket:
 *
 *   sizeOf(id)        the text length of a blob: a lognormal fitted to the dataset's
 *                     `length_bytes` (median ~4 KB, mean ~20 KB, a tail to MBs), from the id alone
 *   isMissing(id)     whether the id is one of the `missingRate` ids that answer 404 NoSuchKey
 *   latencyMs(rng)    time to first byte: lognormal (median, p99) plus rare multi-second stragglers
 *   TokenBucket       the bucket-wide request-rate limit; above it, S3's `503 SlowDown`
 *   decide(...)       what one request gets: 200, 404, 500, 503 or SlowDown, and after how long
 *
 * Everything about an id is a function of (seed, id), so every process and every retry sees the
 * same blob; everything about a request (latency, faults) comes from the request's random draw.
 */
import { createHash } from 'node:crypto';

/** The text length distribution (uncompressed bytes; the body is its gzip). */
export interface SizeModel {
  /** Median text length in bytes. */
  medianBytes: number;
  /** Sigma of ln(length): 1.79 makes the mean ~5× the median (~20 KB for 4 KB). */
  sigma: number;
  /** Lengths are clamped to [minBytes, maxBytes]. */
  minBytes: number;
  maxBytes: number;
}

/** Time to first byte. */
export interface LatencyModel {
  /** Median TTFB of an ordinary request, ms. 0 turns the whole model off (answers at once). */
  medianMs: number;
  /** 99th percentile of an ordinary request, ms (≥ medianMs); sets the lognormal's sigma. */
  p99Ms: number;
  /** Share of requests that straggle instead (0..1). */
  stragglerRate: number;
  /** A straggler waits uniformly in [stragglerMinMs, stragglerMaxMs]. */
  stragglerMinMs: number;
  stragglerMaxMs: number;
}

/** The bucket-wide request-rate limit. */
export interface RateLimit {
  /** Requests per second admitted on average; null = no limit. */
  perSecond: number | null;
  /** Requests admitted at once after a quiet spell (the bucket's depth). Default perSecond / 4. */
  burst?: number;
}

export interface SwhConfig {
  /** Seeds the id → blob mapping and the request draws. */
  seed: number;
  /** Bucket and key prefix served: `/<bucket>/<prefix><sha1>`. */
  bucket: string;
  prefix: string;
  size: SizeModel;
  latency: LatencyModel;
  /** Share of ids (0..1) that do not exist: 404 NoSuchKey, always for the same ids. */
  missingRate: number;
  /** Share of requests (0..1) answered 500 InternalError / 503 ServiceUnavailable. */
  fault500Rate: number;
  fault503Rate: number;
  rateLimit: RateLimit;
}

/** σ of ln for a median and a p99: p99 = median · e^(2.3263 σ). */
const Z99 = 2.3263478740408408;

export const DEFAULT_CONFIG: SwhConfig = {
  seed: 1,
  bucket: 'softwareheritage',
  prefix: 'content/',
  size: { medianBytes: 4096, sigma: 1.79, minBytes: 16, maxBytes: 8 << 20 },
  latency: {
    medianMs: 20,
    p99Ms: 150,
    stragglerRate: 0.0005,
    stragglerMinMs: 1000,
    stragglerMaxMs: 4000,
  },
  missingRate: 0,
  fault500Rate: 0,
  fault503Rate: 0,
  rateLimit: { perSecond: null },
};

/** A partial config (as the control endpoint takes it) laid over a full one. */
export interface SwhConfigPatch {
  seed?: number;
  bucket?: string;
  prefix?: string;
  size?: Partial<SizeModel>;
  latency?: Partial<LatencyModel>;
  missingRate?: number;
  fault500Rate?: number;
  fault503Rate?: number;
  rateLimit?: RateLimit;
}

export function applyPatch(base: SwhConfig, p: SwhConfigPatch): SwhConfig {
  return {
    ...base,
    ...(p.seed !== undefined ? { seed: p.seed } : {}),
    ...(p.bucket !== undefined ? { bucket: p.bucket } : {}),
    ...(p.prefix !== undefined ? { prefix: p.prefix } : {}),
    ...(p.missingRate !== undefined ? { missingRate: p.missingRate } : {}),
    ...(p.fault500Rate !== undefined ? { fault500Rate: p.fault500Rate } : {}),
    ...(p.fault503Rate !== undefined ? { fault503Rate: p.fault503Rate } : {}),
    size: { ...base.size, ...p.size },
    latency: { ...base.latency, ...p.latency },
    rateLimit: p.rateLimit ?? base.rateLimit,
  };
}

/** Every way a config can be wrong, as messages; empty when it is usable. */
export function checkConfig(c: SwhConfig): string[] {
  const errors: string[] = [];
  const share = (name: string, v: number) => {
    if (!(v >= 0 && v <= 1)) errors.push(`${name} must be in [0, 1], got ${String(v)}`);
  };
  const positive = (name: string, v: number) => {
    if (!(Number.isFinite(v) && v > 0)) errors.push(`${name} must be > 0, got ${String(v)}`);
  };
  if (!Number.isSafeInteger(c.seed)) errors.push('seed must be an integer');
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(c.bucket))
    errors.push('bucket: not a bucket name');
  if (c.prefix !== '' && !c.prefix.endsWith('/')) errors.push('prefix must be empty or end in /');
  positive('size.medianBytes', c.size.medianBytes);
  if (!(c.size.sigma >= 0)) errors.push('size.sigma must be ≥ 0');
  positive('size.minBytes', c.size.minBytes);
  if (!(c.size.maxBytes >= c.size.minBytes)) errors.push('size.maxBytes must be ≥ minBytes');
  if (!(c.latency.medianMs >= 0)) errors.push('latency.medianMs must be ≥ 0');
  if (!(c.latency.p99Ms >= c.latency.medianMs)) errors.push('latency.p99Ms must be ≥ medianMs');
  share('latency.stragglerRate', c.latency.stragglerRate);
  if (!(c.latency.stragglerMaxMs >= c.latency.stragglerMinMs && c.latency.stragglerMinMs >= 0)) {
    errors.push('latency.stragglerMaxMs must be ≥ stragglerMinMs ≥ 0');
  }
  share('missingRate', c.missingRate);
  share('fault500Rate', c.fault500Rate);
  share('fault503Rate', c.fault503Rate);
  if (c.rateLimit.perSecond !== null) positive('rateLimit.perSecond', c.rateLimit.perSecond);
  if (c.rateLimit.burst !== undefined) positive('rateLimit.burst', c.rateLimit.burst);
  return errors;
}

/** A seeded PRNG (sfc32 over a splitmix32-expanded seed): fast, deterministic, good enough. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.float();
  }

  /** Uniform in [0, 1). */
  float(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }
}

/**
 * The standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9), for
 * drawing lognormals from one uniform.
 */
export function normalQuantile(p: number): number {
  if (p <= 0) return -Infinity;
  if (p >= 1) return Infinity;
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972,
    -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734,
    4.374664141464968, 2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const [a0, a1, a2, a3, a4, a5] = a as [number, number, number, number, number, number];
  const [b0, b1, b2, b3, b4] = b as [number, number, number, number, number];
  const [c0, c1, c2, c3, c4, c5] = c as [number, number, number, number, number, number];
  const [d0, d1, d2, d3] = d as [number, number, number, number];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (
      (((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) /
      ((((d0 * q + d1) * q + d2) * q + d3) * q + 1)
    );
  }
  if (p > 1 - lo) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return (
      -(((((c0 * q + c1) * q + c2) * q + c3) * q + c4) * q + c5) /
      ((((d0 * q + d1) * q + d2) * q + d3) * q + 1)
    );
  }
  const q = p - 0.5;
  const r = q * q;
  return (
    ((((((a0 * r + a1) * r + a2) * r + a3) * r + a4) * r + a5) * q) /
    (((((b0 * r + b1) * r + b2) * r + b3) * r + b4) * r + 1)
  );
}

/** Two independent uniforms in [0, 1) from (seed, id): the blob's size and its "exists" draw. */
export function idDraws(
  seed: number,
  id: string,
): { size: number; missing: number; variant: number } {
  const h = createHash('sha1')
    .update(`${String(seed)}:${id}`)
    .digest();
  const u = (i: number) => (h.readUInt32BE(i) + 0.5) / 4294967296;
  return { size: u(0), missing: u(4), variant: h.readUInt32BE(8) };
}

/** Text length for a uniform draw u: the size model's quantile at u, clamped. */
export function sizeAt(m: SizeModel, u: number): number {
  const x = m.medianBytes * Math.exp(m.sigma * normalQuantile(u));
  return Math.round(Math.min(m.maxBytes, Math.max(m.minBytes, x)));
}

/**
 * Bodies come from a pool of size classes (a geometric grid of 8 classes per doubling, so a
 * served length is within ~4.5% of the drawn one) × a few variants each; one variant above
 * 256 KB, where a second one would cost seconds of gzip and ~0.1% of blobs are drawn.
 */
export const CLASSES_PER_DOUBLING = 8;
export const VARIANTS = 4;

export function variantsOf(m: SizeModel, cls: number): number {
  return classBytes(m, cls) > 256 << 10 ? 1 : VARIANTS;
}

/** Class index of a text length (0 = minBytes). */
export function sizeClass(m: SizeModel, bytes: number): number {
  return Math.round(Math.log2(bytes / m.minBytes) * CLASSES_PER_DOUBLING);
}

/** The text length of a class. */
export function classBytes(m: SizeModel, cls: number): number {
  return Math.min(m.maxBytes, Math.round(m.minBytes * 2 ** (cls / CLASSES_PER_DOUBLING)));
}

/** Where a blob's body comes from: its class and variant, or missing. */
export type BlobPlan = { kind: 'missing' } | { kind: 'body'; cls: number; variant: number };

export function planBlob(c: SwhConfig, id: string): BlobPlan {
  const d = idDraws(c.seed, id);
  if (d.missing < c.missingRate) return { kind: 'missing' };
  return {
    kind: 'body',
    cls: sizeClass(c.size, sizeAt(c.size, d.size)),
    variant: d.variant % VARIANTS,
  };
}

/** Time to first byte of one request, ms. */
export function latencyMs(m: LatencyModel, rng: Rng): number {
  if (m.medianMs <= 0) return 0;
  if (rng.float() < m.stragglerRate) {
    return m.stragglerMinMs + rng.float() * (m.stragglerMaxMs - m.stragglerMinMs);
  }
  const sigma = Math.log(m.p99Ms / m.medianMs) / Z99;
  return m.medianMs * Math.exp(sigma * normalQuantile(rng.float()));
}

/**
 * A token bucket: `perSecond` tokens a second up to `burst`; a request takes one or is refused.
 * Time comes from the caller (ms, monotonic), so tests drive it by hand.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private limit: RateLimit,
    now: number,
  ) {
    this.tokens = this.depth();
    this.last = now;
  }

  private depth(): number {
    const r = this.limit.perSecond;
    return r === null ? Infinity : Math.max(1, this.limit.burst ?? r / 4);
  }

  /** A new limit from now on; the bucket keeps what it holds (up to the new depth). */
  setLimit(limit: RateLimit, now: number): void {
    this.refill(now);
    this.limit = limit;
    this.tokens = Math.min(this.tokens, this.depth());
    if (!Number.isFinite(this.tokens)) this.tokens = this.depth();
  }

  private refill(now: number): void {
    const r = this.limit.perSecond;
    if (r !== null)
      this.tokens = Math.min(this.depth(), this.tokens + ((now - this.last) / 1000) * r);
    this.last = Math.max(this.last, now);
  }

  /** True if a request arriving at `now` is admitted. */
  take(now: number): boolean {
    if (this.limit.perSecond === null) return true;
    this.refill(now);
    if (this.tokens < 1 - 1e-9) return false;
    this.tokens -= 1;
    return true;
  }
}

/** What one request gets. */
export type Outcome = 'ok' | 'missing' | 'slow-down' | 'internal-error' | 'unavailable';

/**
 * The outcome and delay of one GET of `id` arriving at `now`. Order: the rate limit first (S3
 * refuses before looking), then injected faults, then the key.
 */
export function decide(
  c: SwhConfig,
  bucket: TokenBucket,
  rng: Rng,
  id: string,
  now: number,
): { outcome: Outcome; delayMs: number; plan: BlobPlan } {
  const delayMs = latencyMs(c.latency, rng);
  const plan = planBlob(c, id);
  if (!bucket.take(now)) return { outcome: 'slow-down', delayMs, plan };
  const f = rng.float();
  if (f < c.fault500Rate) return { outcome: 'internal-error', delayMs, plan };
  if (f < c.fault500Rate + c.fault503Rate) return { outcome: 'unavailable', delayMs, plan };
  return { outcome: plan.kind === 'missing' ? 'missing' : 'ok', delayMs, plan };
}
