/**
 * PURE: the size of an adaptive fetch window (GETs in flight), driven by what the store answers.
 * Time comes from the caller; nothing here sleeps, counts sockets or knows S3.
 *
 *   throttled   (503 SlowDown, 429, Throttling…): multiplicative decrease, `limit × decrease`,
 *               at most once per window: only a throttled request that started after the last
 *               decrease counts, so the answers to requests already in flight do not cut again.
 *   answered    (a body or a 404): growth, while the smoothed latency stays flat (≤ tolerance ×
 *               its recent minimum): +1 per answer in slow start (the window doubles per round
 *               trip) until the first throttle, then +1 per round trip back up to the window
 *               of the last throttle and +1/4 per round trip above it. A store that has not
 *               throttled for `probeAfterMs` is probed at ~12% per round trip, so a raised
 *               limit is found in a few dozen round trips without a slow start's overshoot.
 *   rising latency (queueing at the store, or a client too busy to read its answers): no growth.
 *   not full    (fewer requests in flight than the window allows: the client, not the window,
 *               is the limit): no growth, and a throttle cuts from what was in flight, so the
 *               window never drifts above what is used (as TCP's congestion window validation).
 *   failed      (500, reset, timeout): neither; the retry layer deals with it.
 *
 *   limit ∈ [min, max]; `max` follows the upper bounds of the packs using the window
 *   (their `concurrency:`), and never exceeds what the caller allows for memory.
 */

export interface AimdOptions {
  /** Smallest window. */
  min: number;
  /** Largest window (changed with `setMax`). */
  max: number;
  /** Window at the start. */
  initial: number;
  /** Factor applied on a throttle (0..1). */
  decrease: number;
  /** Growth only while smoothed latency ≤ tolerance × its minimum over `baselineMs`. */
  latencyTolerance: number;
  /** How far back the latency baseline (minimum) looks, ms. */
  baselineMs: number;
  /** Without a throttle for this long (and 8 round trips), probe faster, ms. */
  probeAfterMs: number;
}

export const AIMD_DEFAULTS: AimdOptions = {
  min: 1,
  max: 64,
  initial: 8,
  decrease: 0.8,
  latencyTolerance: 2,
  baselineMs: 10_000,
  probeAfterMs: 1500,
};

/** Everything the controller knows, for tests and for a run's report. */
export interface AimdState {
  limit: number;
  /** The window when the store last throttled (Infinity before the first throttle). */
  lastThrottleWindow: number;
  /** Smoothed latency of answered requests, ms (undefined before the first). */
  srttMs: number | undefined;
  /** Minimum smoothed latency over the baseline period, ms. */
  baselineMs: number | undefined;
  throttles: number;
  decreases: number;
}

/** EWMA weight of a new latency sample. */
const ALPHA = 1 / 16;

export class AimdController {
  private readonly o: AimdOptions;
  private limitF: number;
  /** The window when the store last throttled. */
  private wMax = Infinity;
  private srtt: number | undefined;
  /** [time, srtt] samples of the minimum per baseline bucket (~baselineMs / 8 each). */
  private baseline: { at: number; min: number }[] = [];
  private lastDecreaseAt = -Infinity;
  private lastThrottleAt = -Infinity;
  private throttles = 0;
  private decreases = 0;

  constructor(opts: Partial<AimdOptions> = {}) {
    this.o = { ...AIMD_DEFAULTS, ...opts };
    if (!(this.o.min >= 1 && this.o.max >= this.o.min)) {
      throw new Error(`Internal error: AIMD bounds ${String(this.o.min)}..${String(this.o.max)}`);
    }
    this.limitF = clamp(this.o.initial, this.o.min, this.o.max);
  }

  /** Requests that may be in flight now. */
  get limit(): number {
    return Math.max(this.o.min, Math.floor(this.limitF));
  }

  get max(): number {
    return this.o.max;
  }

  /** A new upper bound (packs joined or left); the window shrinks at once if above it. */
  setMax(max: number): void {
    this.o.max = Math.max(this.o.min, max);
    this.limitF = clamp(this.limitF, this.o.min, this.o.max);
  }

  /**
   * A request was answered (body or 404) after `latencyMs`; `inFlight` requests were in flight
   * then, this one included (default: a full window).
   */
  onAnswer(latencyMs: number, now: number, inFlight = Infinity): void {
    this.srtt = this.srtt === undefined ? latencyMs : this.srtt + ALPHA * (latencyMs - this.srtt);
    const base = this.track(this.srtt, now);
    if (this.srtt > this.o.latencyTolerance * base) return;
    if (inFlight < this.limit) return;
    // Slow start until the first throttle (+1 per answer: doubling per round trip). Then +1 per
    // round trip back up to the window of the last throttle and a quarter of that above it,
    // where the store refused before (fewer, smaller overshoots); after a quiet spell, +1/8 per
    // answer (~12% per round trip), to find a raised limit without the overshoot of a restart.
    let step: number;
    if (this.wMax === Infinity) step = 1;
    else if (now - this.lastThrottleAt >= Math.max(this.o.probeAfterMs, 8 * this.srtt)) {
      step = 1 / 8;
    } else step = (this.limitF < this.wMax ? 1 : 0.25) / this.limitF;
    this.limitF += step;
    this.limitF = Math.min(this.limitF, this.o.max);
  }

  /**
   * A request that started at `startedAt` was throttled (503 SlowDown and the like), with
   * `inFlight` requests in flight, this one included (default: a full window).
   */
  onThrottle(startedAt: number, now: number, inFlight = Infinity): void {
    this.throttles++;
    this.lastThrottleAt = now;
    if (startedAt < this.lastDecreaseAt) return;
    const used = Math.min(this.limitF, Math.max(inFlight, this.o.min));
    this.wMax = used;
    this.limitF = Math.max(this.o.min, used * this.o.decrease);
    this.lastDecreaseAt = now;
    this.decreases++;
  }

  state(): AimdState {
    return {
      limit: this.limit,
      lastThrottleWindow: this.wMax,
      srttMs: this.srtt,
      baselineMs: this.baseline.length === 0 ? undefined : this.baselineMin(),
      throttles: this.throttles,
      decreases: this.decreases,
    };
  }

  /** Records a smoothed latency; returns the minimum over the baseline period. */
  private track(srtt: number, now: number): number {
    const bucketMs = this.o.baselineMs / 8;
    const last = this.baseline[this.baseline.length - 1];
    if (last !== undefined && now - last.at < bucketMs) last.min = Math.min(last.min, srtt);
    else this.baseline.push({ at: now, min: srtt });
    while ((this.baseline[0]?.at ?? now) < now - this.o.baselineMs) this.baseline.shift();
    return this.baselineMin();
  }

  private baselineMin(): number {
    let m = Infinity;
    for (const b of this.baseline) m = Math.min(m, b.min);
    return m;
  }
}

const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));
