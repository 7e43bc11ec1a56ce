/**
 * The parts of one pack in flight at once (run.ts). A part starts as soon as the part before it
 * has read all its rows (its DuckDB stream has ended, so the connection is free): the fetch
 * window does not drain and refill at every part boundary, the previous part's last batches
 * finish beside the next part's first. A packed part is published while the next one packs.
 *
 *   part n    read rows ─────────┐ finish (last GETs, last frame) ─ publish ─ record
 *   part n+1                     └ read rows ───────────────────────────────────┐ finish ─ …
 *
 * Bounds: at most two parts are packing (the one finishing and the one reading) and at most two
 * are in scratch: a part starts only once the publish of the part two back has ended. Parts are
 * published, and taken, in part order. The first failure stops the rest: a part that fails, or a
 * publish that fails, aborts the part still packing and drops its scratch, and is the pack's
 * error.
 */
import type { Failure, PartRecord, Result } from '../../lib/task-api.js';
import { err, ok } from '../../lib/task-api.js';
import type { PartCounts, RowError } from './part.js';

/** What packing a part gives: its counts and its rows' errors. */
export interface PackedPart {
  counts: PartCounts;
  errors: RowError[];
}

/**
 * Packs one part: aborted by `signal`, calls `onRead` once its rows are all read. Its failures
 * name the part.
 */
export type PackOne = (signal: AbortSignal, onRead: () => void) => Promise<Result<PackedPart>>;

export interface PartsInFlightOptions {
  /** The task's signal (a stop of the run). */
  signal: AbortSignal;
  /** Publishes a packed part: its outputs, then its record; drops its scratch files either way. */
  publish(part: number, packed: PackedPart): Promise<Result<PartRecord>>;
  /** Drops the scratch files of a part that failed or was stopped. */
  drop(part: number): Promise<void>;
  /** A part is published (in part order). */
  published(rec: PartRecord): void;
}

interface Packing {
  part: number;
  abort: AbortController;
  /** Resolves once the part's rows are all read. */
  read: Promise<void>;
  done: Promise<Result<PackedPart>>;
}

export class PartsInFlight {
  private packing: Packing | undefined;
  private publishing: Promise<Result<PartRecord>> | undefined;

  constructor(private readonly o: PartsInFlightOptions) {}

  /**
   * Starts packing `part` once the part packing now has read its rows and the publish before it
   * has ended; then waits for that part to finish and starts its publish. An error is the first
   * failure, everything else stopped.
   */
  async start(part: number, pack: PackOne): Promise<Result<void>> {
    const prev = this.packing;
    if (prev !== undefined) {
      const readFirst = await Promise.race([
        prev.read.then(() => true),
        prev.done.then((r) => r.ok),
      ]);
      // A part that failed before reading all its rows: no next part, its error is the pack's.
      if (!readFirst) return this.toPublish(prev);
    }
    const before = await this.settlePublish();
    if (!before.ok) return this.stop(before.error);
    const abort = new AbortController();
    let onRead = (): void => undefined;
    const read = new Promise<void>((resolve) => {
      onRead = resolve;
    });
    const done = pack(AbortSignal.any([this.o.signal, abort.signal]), onRead);
    this.packing = { part, abort, read, done };
    return prev === undefined ? ok(undefined) : this.toPublish(prev);
  }

  /** Finishes and publishes every part in flight (before a resumed part is taken, and at the end). */
  async finish(): Promise<Result<void>> {
    const last = this.packing;
    if (last !== undefined) {
      const r = await this.toPublish(last);
      if (!r.ok) return r;
      this.packing = undefined;
    }
    return this.settlePublish();
  }

  /** After an exception: stops the part packing and waits for everything in flight, quietly. */
  async close(): Promise<void> {
    const p = this.packing;
    this.packing = undefined;
    if (p !== undefined) {
      p.abort.abort();
      await p.done.catch(() => undefined);
      await this.o.drop(p.part);
    }
    const pub = this.publishing;
    this.publishing = undefined;
    await pub?.catch(() => undefined);
  }

  /** Waits for part `p` to be packed, then for the publish before it, then publishes it. */
  private async toPublish(p: Packing): Promise<Result<void>> {
    const r = await p.done;
    // The publish before first: when it failed, it stopped this part, and is the cause.
    const before = await this.settlePublish();
    if (!before.ok) return this.stop(before.error, p);
    if (!r.ok) return this.stop(r.error, p);
    this.publishing = this.o.publish(p.part, r.value).then((x) => {
      // A publish that fails stops the part packing meanwhile: its error is the pack's.
      if (!x.ok && this.packing !== p) this.packing?.abort.abort();
      return x;
    });
    return ok(undefined);
  }

  private async settlePublish(): Promise<Result<void>> {
    const pub = this.publishing;
    if (pub === undefined) return ok(undefined);
    this.publishing = undefined;
    const r = await pub;
    if (!r.ok) return r;
    this.o.published(r.value);
    return ok(undefined);
  }

  /** The first failure: the part packing is stopped, unpublished scratch dropped. */
  private async stop(failure: Failure, failed?: Packing): Promise<Result<void>> {
    const rest = this.packing;
    this.packing = undefined;
    if (rest !== undefined && rest !== failed) {
      rest.abort.abort();
      await rest.done.catch(() => undefined);
      await this.o.drop(rest.part);
    }
    if (failed !== undefined) await this.o.drop(failed.part);
    const pub = this.publishing;
    this.publishing = undefined;
    if (pub !== undefined) {
      const r = await pub.catch(() => undefined);
      if (r?.ok === true) this.o.published(r.value);
    }
    return err(failure);
  }
}
