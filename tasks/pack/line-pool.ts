/**
 * A small pool of worker threads that build JSON lines (lines.ts) for batches of rows.
 *
 * Why: packing is CPU-bound on one thread. Per megabyte of output, gunzip, decoding, JSON escaping
 * of the content and UTF-8 encoding cost more than everything else the main thread does (reading
 * parquet rows, fetching blobs, handing frames to zstd); in workers they run beside it and beside
 * the zstd compression in the libuv pool. When the blobs are files of a local store, the workers
 * also read them (blocking reads, see line-worker.ts), which spares the main thread its costliest
 * part: four promise round trips per blob.
 *
 * Order and memory are the caller's: `build` answers each batch on its own promise, and part.ts
 * awaits them in batch order through `orderedMap` with a bounded window, so at most that many
 * batches exist at once whatever the row count.
 *
 * The worker file is resolved next to this module: `line-worker.js` under dist/ (the CLI), and
 * `line-worker.ts` when this module itself runs as TypeScript (tsx, vitest), in which case the
 * worker first registers tsx's loader, which a worker thread does not inherit from a vitest pool.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { SHARE_ENV, Worker } from 'node:worker_threads';
import type { Failure, FetchWindow, Slot as WindowSlot } from '../../lib/task-api.js';
import type { LineAnswer, LineRequest } from './line-worker.js';
import type { LineBatch, LineBatchResult } from './lines.js';
import type { MainSlotMessage, WorkerSlotMessage } from './remote-fetch.js';
import { ENDED } from './remote-fetch.js';

interface Pending {
  resolve: (r: LineBatchResult) => void;
  reject: (e: unknown) => void;
  onRetry: ((f: Failure) => void) | undefined;
}

/** A fetch window's slots lent to one worker (see remote-fetch.ts for the protocol). */
interface Lane {
  window: FetchWindow;
  /** GETs the worker waits to send, not yet granted. */
  demand: number;
  /** Slots held for the worker, oldest first: granted, in flight there, or on their way back. */
  held: WindowSlot[];
  /** Granted since the last grant message. */
  toGrant: number;
  granting: boolean;
  flushing: boolean;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
  lanes: Map<number, Lane>;
  dead: boolean;
}

/** What a remote batch's fetches need besides the batch. */
export interface RemoteOptions {
  /** The fetch window its GETs take slots of (`batch.blobs.window` names it). */
  window: FetchWindow;
  signal: AbortSignal;
  /** Told of every retried GET. */
  onRetry?: (f: Failure) => void;
}

const windowIds = new WeakMap<FetchWindow, number>();
let nextWindowId = 0;
/** A window's name in messages to the workers. */
export function windowId(w: FetchWindow): number {
  let id = windowIds.get(w);
  if (id === undefined) {
    id = nextWindowId++;
    windowIds.set(w, id);
  }
  return id;
}

function spawn(): Worker {
  const here = import.meta.url;
  // SHARE_ENV: a worker's SDK finds the credentials the main thread's would, even those set
  // after the worker started.
  if (here.endsWith('.js')) {
    return new Worker(new URL('./line-worker.js', here), { env: SHARE_ENV });
  }
  const entry = new URL('./line-worker.ts', here).href;
  // tsx's ESM API (the .mjs build: its CommonJS build cannot register hooks), registered for this
  // thread before the entry is imported; an eval'd worker is a CommonJS script, hence import().
  const api = createRequire(here)
    .resolve('tsx/esm/api')
    .replace(/\.cjs$/, '.mjs');
  const boot = `import(${JSON.stringify(pathToFileURL(api).href)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true, env: SHARE_ENV });
}

export class LinePool {
  readonly #slots: Slot[] = [];
  #nextId = 0;
  #closed = false;
  #broken = false;

  /** True once a worker failed or exited: the pool must be replaced. */
  get broken(): boolean {
    return this.#broken || this.#closed;
  }

  /** Workers started so far. */
  get size(): number {
    return this.#slots.length;
  }

  /** Starts `size` workers (at least one). */
  constructor(size: number) {
    this.grow(Math.max(1, size));
  }

  /** Starts workers until there are `size` of them; a pool never shrinks (idle ones are unref'd). */
  grow(size: number): void {
    if (this.#closed) throw new Error('Internal error: LinePool.grow after close()');
    while (this.#slots.length < size) {
      const slot: Slot = { worker: spawn(), pending: new Map(), lanes: new Map(), dead: false };
      const failAll = (e: unknown): void => {
        this.#broken = true;
        slot.dead = true;
        for (const p of slot.pending.values()) p.reject(e);
        slot.pending.clear();
        releaseLanes(slot);
      };
      slot.worker.on('message', (m: LineAnswer | WorkerSlotMessage) => {
        this.#onMessage(slot, m);
      });
      slot.worker.on('error', failAll);
      slot.worker.on('exit', (code) => {
        if (!this.#closed) failAll(new Error(`Internal error: line worker exited (code ${code})`));
        else releaseLanes(slot);
      });
      // An idle worker must not keep the process alive: the pool is shared by the parts of a run
      // and never closed (see leaseLineWorkers). It is ref'd while it has requests. Unref'd after
      // its listeners are attached, which ref its message port again: a worker that never got a
      // request would otherwise keep the process from exiting.
      slot.worker.unref();
      this.#slots.push(slot);
    }
  }

  /**
   * Builds the batch's lines on the least busy worker. The buffers of a `bytes` batch are moved,
   * not copied.
   */
  build(batch: LineBatch, remote?: RemoteOptions): Promise<LineBatchResult> {
    if (this.#closed) throw new Error('Internal error: LinePool.build after close()');
    const { blobs } = batch;
    if ((blobs.kind === 'remote') !== (remote !== undefined)) {
      throw new Error('Internal error: a remote batch goes with its window, and only it');
    }
    if (remote?.signal.aborted === true) return Promise.reject(abortError());
    let slot = this.#slots[0];
    for (const s of this.#slots)
      if (slot === undefined || s.pending.size < slot.pending.size) slot = s;
    if (slot === undefined) throw new Error('Internal error: LinePool without workers');
    const id = this.#nextId++;
    const target = slot;
    if (remote !== undefined) {
      const wid = windowId(remote.window);
      if (!target.lanes.has(wid)) {
        target.lanes.set(wid, {
          window: remote.window,
          demand: 0,
          held: [],
          toGrant: 0,
          granting: false,
          flushing: false,
        });
      }
    }
    return new Promise<LineBatchResult>((resolve, reject) => {
      if (target.pending.size === 0) target.worker.ref();
      const onAbort = (): void => {
        if (!target.pending.delete(id)) return;
        if (target.pending.size === 0) target.worker.unref();
        target.worker.postMessage({ type: 'cancel', id } satisfies MainSlotMessage);
        reject(abortError());
      };
      target.pending.set(id, {
        resolve: (r) => {
          remote?.signal.removeEventListener('abort', onAbort);
          resolve(r);
        },
        reject: (e) => {
          remote?.signal.removeEventListener('abort', onAbort);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
        onRetry: remote?.onRetry,
      });
      remote?.signal.addEventListener('abort', onAbort, { once: true });
      const req: LineRequest = { type: 'build', id, batch };
      target.worker.postMessage(
        req,
        blobs.kind === 'bytes'
          ? [blobs.gz.buffer as ArrayBuffer, blobs.gzEnds.buffer as ArrayBuffer]
          : [],
      );
    });
  }

  #onMessage(slot: Slot, m: LineAnswer | WorkerSlotMessage): void {
    switch (m.type) {
      case 'built':
      case 'broken': {
        const p = slot.pending.get(m.id);
        slot.pending.delete(m.id);
        if (slot.pending.size === 0) slot.worker.unref();
        if (m.type === 'built') p?.resolve(m.result);
        else p?.reject(new Error(`Internal error: a line worker failed a batch: ${m.message}`));
        return;
      }
      case 'retry':
        slot.pending.get(m.id)?.onRetry?.(m.failure);
        return;
      case 'want': {
        const lane = slot.lanes.get(m.window);
        if (lane === undefined) throw new Error('Internal error: a want for an unknown window');
        lane.demand += m.n;
        void this.#grant(slot, lane);
        return;
      }
      case 'ended': {
        const lane = slot.lanes.get(m.window);
        if (lane === undefined) throw new Error('Internal error: slots of an unknown window');
        if (m.hedged > 0) lane.window.noteHedged(m.hedged);
        m.outcomes.forEach((o, k) => {
          const held = lane.held.shift();
          if (held === undefined) throw new Error('Internal error: a worker ended a slot not lent');
          if (o === ENDED.unused) held.done('failed');
          else {
            const latency = m.latencies[k] ?? 0;
            held.done(
              o === ENDED.answered ? 'answered' : o === ENDED.throttled ? 'throttled' : 'failed',
              latency,
            );
          }
        });
        return;
      }
    }
  }

  #wantsMore(slot: Slot, lane: Lane): boolean {
    return lane.demand > 0 && !slot.dead && !this.#closed;
  }

  /** Takes slots of the lane's window for the worker while it wants some, one grant per turn. */
  async #grant(slot: Slot, lane: Lane): Promise<void> {
    if (lane.granting) return;
    lane.granting = true;
    try {
      while (this.#wantsMore(slot, lane)) {
        let held: WindowSlot;
        try {
          held = await lane.window.acquire();
        } catch {
          return;
        }
        // The worker's wants may have been answered meanwhile (it died, the pool closed).
        if (!this.#wantsMore(slot, lane)) {
          held.done('failed');
          return;
        }
        lane.demand--;
        lane.held.push(held);
        lane.toGrant++;
        if (!lane.flushing) {
          lane.flushing = true;
          setImmediate(() => {
            lane.flushing = false;
            if (lane.toGrant === 0 || slot.dead) return;
            const wid = windowId(lane.window);
            slot.worker.postMessage({
              type: 'grant',
              window: wid,
              n: lane.toGrant,
            } satisfies MainSlotMessage);
            lane.toGrant = 0;
          });
        }
      }
    } finally {
      lane.granting = false;
    }
  }

  /** Stops the workers; requests still pending are rejected. Idempotent; call it in a finally. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(
      this.#slots.map(async (s) => {
        for (const p of s.pending.values()) p.reject(new Error('Internal error: LinePool closed'));
        s.pending.clear();
        await s.worker.terminate();
        releaseLanes(s);
      }),
    );
  }
}

/** A dead or closed worker's slots go back to their windows. */
function releaseLanes(slot: Slot): void {
  slot.dead = true;
  for (const lane of slot.lanes.values()) {
    lane.demand = 0;
    lane.toGrant = 0;
    for (const held of lane.held.splice(0)) held.done('failed');
  }
}

function abortError(): Error {
  const e = new Error('aborted');
  e.name = 'AbortError';
  return e;
}

let shared: LinePool | undefined;
/** Line workers the parts running now asked for, in all. */
let leased = 0;

/** A share of the process's line pool: `pool` is the pool now (a new one if a worker died). */
export interface LineLease {
  readonly pool: LinePool;
  release(): void;
}

/**
 * The process's line pool, for a pack (or one part) that wants `perPart` workers: the pool grows
 * to the sum of what the leases held at once asked for (so packs running side by side each get
 * their share) and is replaced if a worker died. Shared, not one per part, so that a pack of many
 * parts pays the workers' startup (a thread, an isolate, loading decode.js and iconv-lite) once.
 * A pack holds one lease across its parts, so two of its parts in flight at once (run.ts) do not
 * double its workers. Call `release` when done.
 */
export function leaseLineWorkers(perPart: number): LineLease {
  const n = Math.max(1, Math.floor(perPart));
  leased += n;
  current();
  let released = false;
  return {
    get pool() {
      return current();
    },
    release: () => {
      if (released) return;
      released = true;
      leased -= n;
    },
  };
}

/** The shared pool, sized to the leases held, replaced if broken. */
function current(): LinePool {
  if (shared === undefined || shared.broken) shared = new LinePool(leased);
  else shared.grow(leased);
  return shared;
}
