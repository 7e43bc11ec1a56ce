/**
 * A map over an async source whose calls run out of order and whose results come out in INPUT
 * order, with the memory of the results waiting for their turn bounded in BYTES.
 *
 *   source ─▶ fn (≤ concurrency in flight) ─▶ reorder buffer (≤ maxBytes held) ─▶ in order
 *
 * A call's slot is freed when the call settles, not when its result's turn comes: one slow call
 * at the head (a multi-second straggler among GETs) does not drain the window to one in flight,
 * as `orderedMap` (lib/util/ordered.ts) would. While the head is late, later results wait in the
 * reorder buffer; new calls start while it holds less than `maxBytes` (so it may exceed that by
 * what the calls in flight bring back). Calls start as others settle, whether or not the consumer
 * is reading: the consumer only takes results that are ready.
 *
 * `fn` should not reject (return a value describing the failure instead); if it does, the
 * rejection surfaces at that item's turn, as does a failure of the source. If `signal` aborts,
 * no call starts any more and the consumer gets an AbortError at its next result. When the
 * consumer stops early (break, throw), nothing new starts and the source is closed; calls in
 * flight finish on their own (they should watch the same signal).
 */

/** Options of `reorderMap`. */
export interface ReorderOptions<R> {
  /** Calls of `fn` in flight at most. */
  concurrency: number;
  /** No call starts while the results waiting for their turn hold this many bytes or more. */
  maxBytes: number;
  /** What a result holds in memory, bytes (its share of `maxBytes`); include fixed overheads. */
  bytesOf: (result: R) => number;
  signal?: AbortSignal;
  /** Told of every change of the bytes held (+ when a result waits, − when it is taken). */
  onHeld?: (deltaBytes: number) => void;
}

/** What a reorder map did, for a run's figures. */
export interface ReorderStats {
  /** Most bytes held by results waiting for their turn at once. */
  peakHeldBytes: number;
  /** Most results waiting for their turn at once. */
  peakHeldItems: number;
  /** Most calls in flight at once. */
  peakInFlight: number;
}

export const emptyReorderStats = (): ReorderStats => ({
  peakHeldBytes: 0,
  peakHeldItems: 0,
  peakInFlight: 0,
});

type Slot<R> =
  | { state: 'running' }
  | { state: 'value'; value: R; bytes: number }
  | { state: 'error'; error: unknown };

/**
 * Maps `source` through `fn` (see the module comment); `stats`, when given, is updated as it
 * goes.
 */
export async function* reorderMap<T, R>(
  source: AsyncIterable<T> | Iterable<T>,
  opts: ReorderOptions<R>,
  fn: (item: T) => Promise<R>,
  stats: ReorderStats = emptyReorderStats(),
): AsyncGenerator<R, void, undefined> {
  if (!(opts.concurrency >= 1) || !(opts.maxBytes > 0)) {
    throw new Error(
      `Internal error: reorderMap(concurrency ${String(opts.concurrency)}, maxBytes ${String(opts.maxBytes)})`,
    );
  }
  const it: AsyncIterator<T> | Iterator<T> =
    Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
  const slots = new Map<number, Slot<R>>();
  let started = 0;
  let next = 0;
  let inFlight = 0;
  let heldBytes = 0;
  let heldItems = 0;
  let pulling = false;
  let sourceDone = false;
  let sourceFailed: { error: unknown } | undefined;
  let stopped = false;
  let wake: (() => void) | undefined;
  const signal = opts.signal;

  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  /** A result starts (+1) or stops (−1) waiting for its turn, holding `bytes`. */
  const hold = (items: 1 | -1, bytes: number): void => {
    heldItems += items;
    heldBytes += items * bytes;
    if (bytes !== 0) opts.onHeld?.(items * bytes);
    stats.peakHeldBytes = Math.max(stats.peakHeldBytes, heldBytes);
    stats.peakHeldItems = Math.max(stats.peakHeldItems, heldItems);
  };
  const closeSource = (): void => {
    if (!pulling && !sourceDone) {
      sourceDone = true;
      void Promise.resolve(it.return?.()).catch(() => undefined);
    }
  };

  const start = (item: T): void => {
    const index = started++;
    slots.set(index, { state: 'running' });
    inFlight++;
    stats.peakInFlight = Math.max(stats.peakInFlight, inFlight);
    // A synchronous throw of `fn` becomes a rejection, surfacing at its turn like any other.
    const p = (async () => fn(item))();
    p.then(
      (value) => {
        if (stopped) return;
        let bytes: number;
        try {
          bytes = Math.max(0, opts.bytesOf(value));
        } catch (error) {
          slots.set(index, { state: 'error', error });
          return;
        }
        slots.set(index, { state: 'value', value, bytes });
        hold(1, bytes);
      },
      (error: unknown) => {
        if (!stopped) slots.set(index, { state: 'error', error });
      },
    ).finally(() => {
      inFlight--;
      if (index === next) notify();
      pump();
    });
  };

  /** Nothing more will come from the source (read through a function: callbacks change it). */
  const exhausted = (): boolean => sourceDone && !pulling;
  const canStart = (): boolean =>
    !stopped &&
    !sourceDone &&
    !pulling &&
    signal?.aborted !== true &&
    inFlight < opts.concurrency &&
    heldBytes < opts.maxBytes;

  // Pulls one item at a time from the source (an async source must not be asked twice at once).
  const pump = (): void => {
    if (stopped && !pulling) closeSource();
    while (canStart()) {
      pulling = true;
      let step: IteratorResult<T> | Promise<IteratorResult<T>>;
      try {
        step = it.next();
      } catch (e) {
        pulling = false;
        sourceFailed = { error: e };
        sourceDone = true;
        notify();
        return;
      }
      if (!(step instanceof Promise)) {
        pulling = false;
        if (step.done === true) {
          sourceDone = true;
          notify();
          return;
        }
        start(step.value);
        continue;
      }
      step.then(
        (r) => {
          pulling = false;
          if (r.done === true) {
            sourceDone = true;
            notify();
          } else if (stopped) {
            closeSource();
          } else {
            start(r.value);
          }
          pump();
        },
        (e: unknown) => {
          pulling = false;
          sourceFailed = { error: e };
          sourceDone = true;
          notify();
        },
      );
      return;
    }
  };

  const onAbort = (): void => {
    notify();
  };
  signal?.addEventListener('abort', onAbort);
  try {
    pump();
    for (;;) {
      if (signal?.aborted === true) throw abortError();
      const slot = slots.get(next);
      if (slot !== undefined && slot.state !== 'running') {
        slots.delete(next);
        next++;
        if (slot.state === 'error') throw slot.error;
        hold(-1, slot.bytes);
        pump();
        yield slot.value;
        continue;
      }
      if (slot === undefined && exhausted()) {
        if (sourceFailed !== undefined) throw sourceFailed.error;
        return;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    stopped = true;
    signal?.removeEventListener('abort', onAbort);
    // What is still held is no longer this map's to account for.
    for (const s of slots.values()) if (s.state === 'value') hold(-1, s.bytes);
    slots.clear();
    closeSource();
  }
}

function abortError(): Error {
  const e = new Error('aborted');
  e.name = 'AbortError';
  return e;
}
