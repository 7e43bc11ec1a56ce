/**
 * The worker-thread half of fetching a `remote` batch (lines.ts): the batch's blobs are fetched
 * here, from this thread's own client of the content store, and their lines built here, so the
 * main thread never runs the SDK for a blob. Loaded by line-worker.ts on the first remote batch
 * (it pulls in the SDK; a pack of local files never pays for it).
 *
 * Slots: every GET attempt waits for a slot of the main thread's fetch window (the process's
 * adaptive window, or a pack's fixed one: lib/util/fetch-window.ts), lent through the line pool
 * (line-pool.ts). The protocol, per window:
 *
 *   worker → main  want n            n more GETs wait here for a slot
 *   main → worker  grant n           n slots are now held for this worker
 *   worker → main  ended [outcome, latency]…   GETs that ended (answered / throttled / failed),
 *                                     or grants it had no use for (unused): the slots go back
 *
 * so the window counts every GET in flight in any thread, and learns each GET's latency and
 * answer as if it had sent it. A retry waits outside the window (its backoff holds no slot), as
 * on the main thread (fetchers.ts). Messages are coalesced per turn of the event loop.
 *
 * A cancelled batch (its part ended: failure, abort) stops asking: its GETs not yet started never
 * start, and a grant nobody waits for is given back.
 */
import type { Failure, ObjectStore, Result, ThreadStoreSpec } from '../../lib/task-api.js';
import { err, objectKey, openThreadStore, withRetry } from '../../lib/task-api.js';
import type { FetchedBlob, LineBatch, LineBatchResult } from './lines.js';
import { assembleLines, fetchedRowLine } from './lines.js';

/** How a slot came back: the window's outcome, or `unused` (granted, never sent). */
export const ENDED = { answered: 0, throttled: 1, failed: 2, unused: 3 } as const;

/** Worker → main thread. */
export type WorkerSlotMessage =
  | { type: 'want'; window: number; n: number }
  | {
      type: 'ended';
      window: number;
      outcomes: Uint8Array;
      latencies: Float64Array;
      /** GETs sent again since the last message because the first was slow (see #hedged). */
      hedged: number;
    }
  | { type: 'retry'; id: number; failure: Failure };

/** Main thread → worker. */
export type MainSlotMessage =
  { type: 'grant'; window: number; n: number } | { type: 'cancel'; id: number };

/**
 * When a GET is hedged: HEDGE_FACTOR times the smoothed latency of the GETs answered here, within
 * [HEDGE_MIN_MS, HEDGE_MAX_MS]. At S3's usual latencies (tens of ms, p99 a few hundred) that
 * hedges well under 1% of GETs, and every straggler of a second or more.
 */
export const HEDGE_FACTOR = 8;
export const HEDGE_MIN_MS = 200;
export const HEDGE_MAX_MS = 2000;

/** Smoothed latency of the GETs answered (EWMA, weight 1/16). */
class LatencyTracker {
  #srtt: number | undefined;

  note(ms: number): void {
    this.#srtt = this.#srtt === undefined ? ms : this.#srtt + (ms - this.#srtt) / 16;
  }

  hedgeAfterMs(): number {
    const base = this.#srtt ?? HEDGE_MAX_MS / HEDGE_FACTOR;
    return Math.min(HEDGE_MAX_MS, Math.max(HEDGE_MIN_MS, HEDGE_FACTOR * base));
  }
}

/** The retries of one blob's GET (the main thread's fetcher makes the same: fetchers.ts). */
export const BLOB_RETRIES = 8;
export const BLOB_BASE_MS = 100;

interface Waiter {
  grant: () => void;
  cancelled: () => boolean;
}

/** One window's slots as this worker sees them. */
interface Lane {
  credits: number;
  waiting: Waiter[];
  want: number;
  outcomes: number[];
  latencies: number[];
  hedged: number;
}

export class RemoteFetcher {
  readonly #post: (m: WorkerSlotMessage) => void;
  readonly #lanes = new Map<number, Lane>();
  readonly #stores = new Map<string, ObjectStore>();
  readonly #cancelled = new Set<number>();
  /** Remote batches being fetched here. */
  readonly #active = new Set<number>();
  #flushing = false;
  readonly #latency = new LatencyTracker();

  constructor(post: (m: WorkerSlotMessage) => void) {
    this.#post = post;
  }

  /** Fetches the blobs of remote batch `id` and builds its lines. */
  async build(id: number, batch: LineBatch): Promise<LineBatchResult> {
    const blobs = batch.blobs;
    if (blobs.kind !== 'remote') throw new Error('Internal error: not a remote batch');
    const store = this.#store(blobs.store);
    this.#active.add(id);
    try {
      // Each row's line is built as its GET answers (see fetchedRowLine).
      const rows = await Promise.all(
        blobs.ids.map(async (blobId, i) =>
          fetchedRowLine(batch, i, await this.#fetch(id, store, blobs.window, blobId)),
        ),
      );
      const answer = assembleLines(rows);
      // Before the answer: the main thread then knows of every slot this batch used, and its
      // hedges, when it gets the lines (messages on one port arrive in order).
      this.#flush();
      return answer;
    } finally {
      this.#active.delete(id);
      this.#cancelled.delete(id);
    }
  }

  /** Main thread messages about slots. */
  onMessage(m: MainSlotMessage): void {
    if (m.type === 'cancel') {
      if (!this.#active.has(m.id)) return;
      this.#cancelled.add(m.id);
      // Its GETs waiting for a slot end now; their wants were sent, so the grants that answer
      // them will find nobody waiting and go back (#pump).
      for (const lane of this.#lanes.values()) {
        lane.waiting = lane.waiting.filter((w) => !w.cancelled());
      }
      return;
    }
    const lane = this.#lane(m.window);
    lane.credits += m.n;
    this.#pump(lane);
  }

  #store(spec: ThreadStoreSpec): ObjectStore {
    const key = JSON.stringify(spec);
    let s = this.#stores.get(key);
    if (s === undefined) {
      s = openThreadStore(spec);
      this.#stores.set(key, s);
    }
    return s;
  }

  async #fetch(
    id: number,
    store: ObjectStore,
    window: number,
    blobId: string,
  ): Promise<FetchedBlob> {
    const key = objectKey(blobId);
    const attempt = async (onSent: () => void): Promise<Result<Uint8Array>> => {
      if (!(await this.#acquire(id, window))) {
        return err({ reason: 'aborted', message: 'interrupted' });
      }
      onSent();
      const t0 = performance.now();
      const r = await store.get(key);
      const ms = performance.now() - t0;
      const answered = r.ok || r.error.reason === 'not-found';
      if (answered) this.#latency.note(ms);
      this.#ended(
        window,
        answered
          ? ENDED.answered
          : r.error.reason === 'transient' && r.error.throttled === true
            ? ENDED.throttled
            : ENDED.failed,
        ms,
      );
      return r;
    };
    const got = await withRetry(() => this.#hedged(id, window, attempt), {
      retries: BLOB_RETRIES,
      baseMs: BLOB_BASE_MS,
      shouldRetry: (f) => f.reason === 'transient' && !this.#cancelled.has(id),
      onRetry: (_n, failure) => {
        this.#post({ type: 'retry', id, failure });
      },
    });
    if (got.ok) return { ok: true, gz: got.value };
    if (got.error.reason === 'not-found') {
      return { ok: false, missing: { reason: 'missing', detail: 'no such blob' } };
    }
    // A valid id the store will not read is this row's problem, not the part's (fetchers.ts).
    if (got.error.reason === 'unsafe-path') {
      return { ok: false, missing: { reason: 'refused', detail: got.error.message } };
    }
    return { ok: false, fatal: got.error };
  }

  /**
   * One attempt, hedged: if it has not answered after `hedgeAfterMs` (several times the usual
   * latency of GETs here), a second GET of the same object goes out, in a slot of its own, and the
   * first answer (a body or a 404) wins; the other's is dropped. A GET straggling at the store
   * (S3's latency has a long tail) then costs one more request instead of holding back its batch,
   * and every row behind it, for seconds. The bytes are the same whichever answers.
   */
  #hedged(
    id: number,
    window: number,
    attempt: (onSent: () => void) => Promise<Result<Uint8Array>>,
  ): Promise<Result<Uint8Array>> {
    return new Promise((resolve) => {
      let pending = 1;
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const onResult = (r: Result<Uint8Array>): void => {
        pending--;
        if (settled) return;
        if (r.ok || r.error.reason === 'not-found' || pending === 0) {
          settled = true;
          clearTimeout(timer);
          resolve(r);
        }
      };
      // Timed from the first GET's send, not from its wait for a slot.
      const hedge = (): void => {
        timer = setTimeout(() => {
          if (settled || this.#cancelled.has(id)) return;
          pending++;
          this.#lane(window).hedged++;
          void attempt(() => undefined).then(onResult);
        }, this.#latency.hedgeAfterMs());
      };
      void attempt(hedge).then(onResult);
    });
  }

  /** Resolves true once a slot is held for this GET; false if its batch was cancelled. */
  #acquire(id: number, window: number): Promise<boolean> {
    if (this.#cancelled.has(id)) return Promise.resolve(false);
    const lane = this.#lane(window);
    if (lane.credits > 0 && lane.waiting.length === 0) {
      lane.credits--;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => {
      lane.waiting.push({
        grant: () => {
          resolve(true);
        },
        cancelled: () => {
          if (!this.#cancelled.has(id)) return false;
          resolve(false);
          return true;
        },
      });
      lane.want++;
      this.#schedule();
    });
  }

  /** Gives credits to waiters in order; a cancelled waiter's want is answered, its credit kept. */
  #pump(lane: Lane): void {
    while (lane.credits > 0 && lane.waiting.length > 0) {
      const w = lane.waiting.shift();
      if (w === undefined || w.cancelled()) continue;
      lane.credits--;
      w.grant();
    }
    // Credits nobody waits for (their waiters were cancelled) go back to the window at once.
    if (lane.waiting.length === 0 && lane.credits > 0) {
      for (; lane.credits > 0; lane.credits--) {
        lane.outcomes.push(ENDED.unused);
        lane.latencies.push(0);
      }
      this.#schedule();
    }
  }

  #ended(window: number, outcome: number, latencyMs: number): void {
    const lane = this.#lane(window);
    lane.outcomes.push(outcome);
    lane.latencies.push(latencyMs);
    this.#schedule();
  }

  #lane(window: number): Lane {
    let lane = this.#lanes.get(window);
    if (lane === undefined) {
      lane = { credits: 0, waiting: [], want: 0, outcomes: [], latencies: [], hedged: 0 };
      this.#lanes.set(window, lane);
    }
    return lane;
  }

  /** One message per window and kind per turn of the event loop. */
  #schedule(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    setImmediate(() => {
      this.#flush();
    });
  }

  /** Sends what the lanes gathered: slots that ended (and hedges), and wants. */
  #flush(): void {
    this.#flushing = false;
    for (const [window, lane] of this.#lanes) {
      if (lane.outcomes.length > 0 || lane.hedged > 0) {
        this.#post({
          type: 'ended',
          window,
          outcomes: Uint8Array.from(lane.outcomes),
          latencies: Float64Array.from(lane.latencies),
          hedged: lane.hedged,
        });
        lane.outcomes = [];
        lane.latencies = [];
        lane.hedged = 0;
      }
      if (lane.want > 0) {
        this.#post({ type: 'want', window, n: lane.want });
        lane.want = 0;
      }
    }
  }
}
