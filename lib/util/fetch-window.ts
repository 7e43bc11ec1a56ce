/**
 * The process's blob-fetch window: GETs to the content store in flight, shared by every pack
 * running in this process and sized by an AIMD controller (aimd.ts) from the store's answers.
 * Each pack joins with its `concurrency:` (its upper bound and its memory bound); the window's
 * ceiling is the sum of the packs' bounds while they run.
 *
 *   const w = sharedFetchWindow();
 *   const leave = w.join(256);
 *   try {
 *     const slot = await w.acquire(signal);   // waits while the window is full
 *     const r = await store.get(key);          // one attempt: no retry inside (see session.ts)
 *     slot.done(r.ok || r.error.reason === 'not-found' ? 'answered' : r.error.throttled ? 'throttled' : 'failed');
 *   } finally { leave(); }
 *
 * A retry waits outside the window (its backoff holds no slot), so a throttled store sees fewer
 * requests, not the same number later.
 *
 * The process's ceiling (`setCeiling`: the host's sizing decision, lib/sizing.ts `window.max`,
 * set by `run`) bounds the window whatever the packs' bounds add up to: `run --dry-run` prints
 * the ceiling a run uses. The window also keeps the process's figures for the run's summary:
 * requests in flight at most, and the bytes of fetched blobs waiting for their turn in the packs'
 * reorder buffers (`noteHeld`).
 */
import type { AimdOptions, AimdState } from './aimd.js';
import { AimdController } from './aimd.js';

export type SlotOutcome = 'answered' | 'throttled' | 'failed';

export interface Slot {
  /**
   * The GET ended. `latencyMs` is its own time when it was measured elsewhere (a worker thread
   * holding the slot through the pack's line pool); by default the time since the slot was given.
   */
  done(outcome: SlotOutcome, latencyMs?: number): void;
}

/** What a run can report about the window. */
export interface FetchWindowStats extends AimdState {
  inFlight: number;
  /** The window's bound now: the packs' bounds added up, within the ceiling. */
  max: number;
  /** The process's ceiling (Infinity until `setCeiling`). */
  ceiling: number;
  /** Most in flight at once so far. */
  peakInFlight: number;
  /** Requests that took a slot so far. */
  requests: number;
  /** Most bytes held at once in the packs' reorder buffers so far (see `noteHeld`). */
  peakHeldBytes: number;
  /** GETs sent a second time because the first was slow to answer (hedged), so far. */
  hedged: number;
}

/** A GET waiting for a slot. */
interface Waiting {
  grant: () => void;
  reject: (e: Error) => void;
}

export class FetchWindow {
  private readonly ctl: AimdController;
  private readonly now: () => number;
  private inFlight = 0;
  private peak = 0;
  private readonly waiting: Waiting[] = [];
  /** The waiting GETs of each signal, and its one abort listener. */
  private readonly watched = new Map<AbortSignal, { entries: Set<Waiting>; onAbort: () => void }>();
  private readonly caps = new Map<number, number>();
  private nextCap = 0;
  private ceiling = Infinity;
  private requests = 0;
  private heldBytes = 0;
  private peakHeld = 0;
  private hedged = 0;

  constructor(opts: Partial<AimdOptions> & { now?: () => number } = {}) {
    const { now, ...aimd } = opts;
    this.now = now ?? (() => performance.now());
    // The ceiling follows the packs that join; until one does, nothing acquires.
    this.ctl = new AimdController({ ...aimd, max: aimd.max ?? 1 << 20 });
  }

  /** A pack starts using the window with this upper bound; call the result when it ends. */
  join(cap: number): () => void {
    const id = this.nextCap++;
    this.caps.set(id, Math.max(1, cap));
    this.resize();
    return () => {
      this.caps.delete(id);
      this.resize();
    };
  }

  /**
   * The process's bound (the host's sizing decision, `run --window`): the window never exceeds
   * it, whatever the packs that join allow.
   */
  setCeiling(max: number): void {
    this.ceiling = Math.max(1, Math.floor(max));
    this.resize();
  }

  /** Bytes of fetched blobs now waiting for their turn in a pack's reorder buffer (+/−). */
  noteHeld(deltaBytes: number): void {
    this.heldBytes += deltaBytes;
    this.peakHeld = Math.max(this.peakHeld, this.heldBytes);
  }

  /** GETs sent a second time because the first was slow (they took slots like any GET). */
  noteHedged(n: number): void {
    this.hedged += n;
    counts.hedged += n;
  }

  /** Whether a pack used the window (joined it, or held fetched blobs). */
  get used(): boolean {
    return this.nextCap > 0 || this.peakHeld > 0;
  }

  private resize(): void {
    let sum = 0;
    for (const c of this.caps.values()) sum += c;
    this.ctl.setMax(Math.max(1, Math.min(sum, this.ceiling)));
    this.pump();
  }

  /**
   * Resolves when a GET may start (rejects if `signal` aborts first). With a free slot and nobody
   * waiting, at once; a waiting GET is rejected through one abort listener per signal (not one
   * per GET: a pack's window of waiting GETs would exceed Node's listener warning threshold).
   */
  acquire(signal?: AbortSignal): Promise<Slot> {
    if (signal?.aborted === true) return Promise.reject(abortError());
    if (this.waiting.length === 0 && this.inFlight < this.ctl.limit) {
      return Promise.resolve(this.slot());
    }
    return new Promise<Slot>((resolve, reject) => {
      const entry: Waiting = {
        grant: () => {
          if (signal) this.unwatch(signal, entry);
          resolve(this.slot());
        },
        reject,
      };
      if (signal) this.watch(signal, entry);
      this.waiting.push(entry);
      this.pump();
    });
  }

  private watch(signal: AbortSignal, entry: Waiting): void {
    let w = this.watched.get(signal);
    if (w === undefined) {
      const entries = new Set<Waiting>();
      const onAbort = (): void => {
        this.watched.delete(signal);
        for (const e of entries) {
          const i = this.waiting.indexOf(e);
          if (i >= 0) this.waiting.splice(i, 1);
          e.reject(abortError());
        }
      };
      w = { entries, onAbort };
      this.watched.set(signal, w);
      signal.addEventListener('abort', onAbort, { once: true });
    }
    w.entries.add(entry);
  }

  private unwatch(signal: AbortSignal, entry: Waiting): void {
    const w = this.watched.get(signal);
    if (w === undefined) return;
    w.entries.delete(entry);
    if (w.entries.size === 0) {
      this.watched.delete(signal);
      signal.removeEventListener('abort', w.onAbort);
    }
  }

  private slot(): Slot {
    this.inFlight++;
    this.requests++;
    this.peak = Math.max(this.peak, this.inFlight);
    counts.requests++;
    counts.inFlight++;
    counts.peakInFlight = Math.max(counts.peakInFlight, counts.inFlight);
    const startedAt = this.now();
    let settled = false;
    return {
      done: (outcome, latencyMs) => {
        if (settled) return;
        settled = true;
        const t = this.now();
        const began = latencyMs === undefined ? startedAt : Math.max(startedAt, t - latencyMs);
        if (outcome === 'answered') this.ctl.onAnswer(t - began, t, this.inFlight);
        else if (outcome === 'throttled') this.ctl.onThrottle(began, t, this.inFlight);
        if (outcome === 'throttled') counts.throttled++;
        this.inFlight--;
        counts.inFlight--;
        this.pump();
      },
    };
  }

  private pump(): void {
    while (this.inFlight < this.ctl.limit && this.waiting.length > 0) {
      this.waiting.shift()?.grant();
    }
  }

  stats(): FetchWindowStats {
    return {
      ...this.ctl.state(),
      inFlight: this.inFlight,
      max: this.ctl.max,
      ceiling: this.ceiling,
      peakInFlight: this.peak,
      requests: this.requests,
      peakHeldBytes: this.peakHeld,
      hedged: this.hedged,
    };
  }
}

function abortError(): Error {
  const e = new Error('aborted');
  e.name = 'AbortError';
  return e;
}

/**
 * The GETs of every window of this process — the shared adaptive one and each pack's fixed one
 * (`window: fixed`, {@link fixedFetchWindow}) — for the run's summary.
 */
export interface ProcessFetchCounts {
  requests: number;
  /** Most GETs in flight at once, over all windows together. */
  peakInFlight: number;
  /** Answers that were throttled (503 SlowDown …). */
  throttled: number;
  hedged: number;
  /** Packs that ran with a fixed window of their own. */
  fixedWindows: number;
}

const counts = {
  requests: 0,
  inFlight: 0,
  peakInFlight: 0,
  throttled: 0,
  hedged: 0,
  fixedWindows: 0,
};

/** This process's GETs so far, over every window. */
export function processFetchCounts(): ProcessFetchCounts {
  const { inFlight: _now, ...rest } = counts;
  return rest;
}

/** A pack's own window: always `bound` slots, whatever the store answers (`window: fixed`). */
export function fixedFetchWindow(bound: number): FetchWindow {
  const w = new FetchWindow({ min: bound, initial: bound });
  w.join(bound);
  counts.fixedWindows++;
  return w;
}

let shared: FetchWindow | undefined;

/** The one window of this process (every pack in it shares it). */
export function sharedFetchWindow(): FetchWindow {
  shared ??= new FetchWindow();
  return shared;
}
