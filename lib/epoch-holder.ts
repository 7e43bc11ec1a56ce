/**
 * EFFECTS. Holding one epoch of a create-only epoch lease, whatever it guards: a task's claim
 * (lib/leases.ts) or a plain run's state lock (lib/run-lock.ts). Both win an epoch the same way (a
 * create-only put of `e<epoch:8>.json` under their directory) and then hold it the same way:
 *
 * - heartbeat: every TTL/8 the holder rewrites its own epoch object (nobody else ever writes that
 *   key), which moves its last-modified time, and lists the directory: a later epoch means
 *   another process took over, and the holder stops. A heartbeat never waits for the previous
 *   one's answer: under load (a fleet rehearsal at load 20) a put and a listing took longer than
 *   a tick, and a holder that waited sent too few heartbeats, fenced itself with its task still
 *   running, and the task was taken over and started again, over and over for the longest tasks.
 * - fence: a holder whose heartbeats have not landed for half a TTL stops itself, before anyone
 *   may take it over (a takeover needs a whole TTL of silence by the store's clock). The deadline
 *   is its own timer, re-armed by every heartbeat that lands, so a heartbeat request that hangs
 *   (a slow store, retries under load) cannot hold the fence back: the holder still stops at
 *   half a TTL, not when the request finally returns.
 * - confirm: right before the guarded effect (a marker), the same deadline is checked again.
 * - release: `keep` leaves every epoch in place (a finished claim's record); otherwise the
 *   holder deletes its epoch, then the older ones it replaced, from the top down, so a lower
 *   epoch never goes missing while a higher one exists. A holder that lost deletes nothing: the
 *   epochs belong to whoever took over.
 *
 * The times are the holder's monotonic clock (`performance.now()`), never the store's: what is
 * assumed is that this clock runs at roughly the right rate over one TTL.
 */
import type { Result } from './errors.js';
import { err, ok } from './errors.js';
import type { ObjectStore } from './io/stores/object-store.js';
import type { ObjectKey } from './model.js';
import { objectKey } from './model.js';

export interface EpochHolderOptions {
  state: ObjectStore;
  /** Our epoch's key. */
  key: ObjectKey;
  /** Our epoch. */
  epoch: number;
  /** The directory of the epochs (ends with `/`), listed to see a later epoch. */
  dir: string;
  /** The epoch an object of `dir` is, if it is one (io/state/keys.ts). */
  parseEpoch: (key: string) => number | undefined;
  /** How long the holder may stay silent before others may take over. */
  ttlMs: number;
  /** performance.now() when the winning create was SENT (the conservative start). */
  sentAt: number;
  /** Keys of the older epochs ours replaced; deleted after ours when released without `keep`. */
  older: readonly string[];
  /** The body each heartbeat writes (called once per heartbeat). */
  body: () => string;
  /** Who takes an epoch over, for the message (`worker`, `run`). */
  rival: string;
  /** Told once, when the epoch is lost (taken over, or its heartbeats stopped landing). */
  onLost: (why: string) => void;
  /** The abort reason of `signal` for a loss `why`. */
  abortReason: (why: string) => Error;
  /** Injectable clock (tests); default performance.now. */
  now?: () => number;
}

/** Why a holder stops itself. */
export const SILENT = 'its heartbeats stopped landing for half its TTL';

export class EpochHolder {
  private readonly ac = new AbortController();
  private readonly key: ObjectKey;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private fenceTimer: NodeJS.Timeout | undefined;
  /** now() when the last heartbeat that landed was SENT (conservative). */
  private lastSent: number;
  /** A look for a later epoch is in flight. */
  private looking = false;
  private released = false;

  constructor(private readonly o: EpochHolderOptions) {
    this.key = o.key;
    this.now = o.now ?? (() => performance.now());
    this.lastSent = o.sentAt;
  }

  /** Aborts when the epoch is lost. */
  get signal(): AbortSignal {
    return this.ac.signal;
  }

  get epoch(): number {
    return this.o.epoch;
  }

  /** Starts heartbeating and the fence. */
  start(): void {
    this.timer = setInterval(
      () => {
        this.beat();
      },
      Math.max(250, this.o.ttlMs / 8),
    );
    this.timer.unref();
    this.armFence();
  }

  /**
   * Ok while the epoch is ours. No request: a takeover needs our epoch silent for a whole TTL by
   * the store's clock, and we stop ourselves after half a TTL without a heartbeat landing; a
   * takeover seen by a heartbeat has already aborted us.
   */
  confirm(): Result<void> {
    if (!this.ac.signal.aborted && this.now() - this.lastSent > this.o.ttlMs / 2) {
      this.lose(SILENT);
    }
    return this.ac.signal.aborted ? err({ reason: 'aborted', message: 'lost' }) : ok(undefined);
  }

  /** Stops heartbeating; deletes our epoch and the older ones unless `keep` (or lost). */
  async release(keep: boolean): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.stopTimers();
    if (keep || this.ac.signal.aborted) return;
    for (const k of [this.key, ...[...this.o.older].reverse()]) {
      // Result dropped on purpose: an epoch left behind goes stale and is taken over or swept.
      await this.o.state.delete(objectKey(k));
    }
  }

  /** Half a TTL after the last heartbeat that landed was sent: stop, whatever is in flight. */
  private armFence(): void {
    if (this.fenceTimer) clearTimeout(this.fenceTimer);
    if (this.released || this.ac.signal.aborted) return;
    const left = this.lastSent + this.o.ttlMs / 2 - this.now();
    this.fenceTimer = setTimeout(
      () => {
        this.fenceTimer = undefined;
        if (this.released || this.ac.signal.aborted) return;
        // A timer may fire early by a millisecond; only a real deadline fences.
        if (this.now() - this.lastSent > this.o.ttlMs / 2) this.lose(SILENT);
        else this.armFence();
      },
      Math.max(0, left) + 1,
    );
    this.fenceTimer.unref();
  }

  /**
   * One tick: a heartbeat put, whatever is still in flight (a put that takes longer than a tick
   * must not delay the next one: under load the store answers late, and a holder that waits
   * for each answer before sending the next heartbeat fences itself with its task still
   * running), and a look for a later epoch unless one is still in flight. Puts in flight are
   * bounded: the fence stops the ticks half a TTL after the last put that landed.
   */
  private beat(): void {
    if (this.over()) return;
    const sent = this.now();
    this.o.state
      .put(this.key, this.o.body())
      .then((put) => {
        if (this.over() || !put.ok || sent <= this.lastSent) return;
        this.lastSent = sent;
        this.armFence();
      })
      // A put that throws is a heartbeat that did not land: the fence takes care of it.
      .catch(() => undefined);
    if (this.looking) return;
    this.looking = true;
    void this.o.state
      .list(this.o.dir)
      .then((page) => {
        if (this.over()) return;
        if (
          page.ok &&
          page.value.objects.some((x) => (this.o.parseEpoch(x.key) ?? -1) > this.o.epoch)
        ) {
          this.lose(`another ${this.o.rival} took it over`);
        }
      })
      .catch(() => undefined)
      .finally(() => {
        this.looking = false;
      });
  }

  /** Released or lost (re-read after every await: either may happen meanwhile). */
  private over(): boolean {
    return this.released || this.ac.signal.aborted;
  }

  private lose(why: string): void {
    if (this.ac.signal.aborted) return;
    this.stopTimers();
    this.o.onLost(why);
    this.ac.abort(this.o.abortReason(why));
  }

  private stopTimers(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.fenceTimer) clearTimeout(this.fenceTimer);
    this.timer = undefined;
    this.fenceTimer = undefined;
  }
}
