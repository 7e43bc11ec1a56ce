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
import { Worker } from 'node:worker_threads';
import type { LineRequest } from './line-worker.js';
import type { LineBatch, LineBatchResult } from './lines.js';

interface Pending {
  resolve: (r: LineBatchResult) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

function spawn(): Worker {
  const here = import.meta.url;
  if (here.endsWith('.js')) return new Worker(new URL('./line-worker.js', here));
  const entry = new URL('./line-worker.ts', here).href;
  // tsx's ESM API (the .mjs build: its CommonJS build cannot register hooks), registered for this
  // thread before the entry is imported; an eval'd worker is a CommonJS script, hence import().
  const api = createRequire(here)
    .resolve('tsx/esm/api')
    .replace(/\.cjs$/, '.mjs');
  const boot = `import(${JSON.stringify(pathToFileURL(api).href)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true });
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
      const slot: Slot = { worker: spawn(), pending: new Map() };
      const failAll = (e: unknown): void => {
        this.#broken = true;
        for (const p of slot.pending.values()) p.reject(e);
        slot.pending.clear();
      };
      slot.worker.on('message', (m: { id: number; result: LineBatchResult }) => {
        const p = slot.pending.get(m.id);
        slot.pending.delete(m.id);
        if (slot.pending.size === 0) slot.worker.unref();
        p?.resolve(m.result);
      });
      slot.worker.on('error', failAll);
      slot.worker.on('exit', (code) => {
        if (!this.#closed) failAll(new Error(`Internal error: line worker exited (code ${code})`));
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
  build(batch: LineBatch): Promise<LineBatchResult> {
    if (this.#closed) throw new Error('Internal error: LinePool.build after close()');
    let slot = this.#slots[0];
    for (const s of this.#slots)
      if (slot === undefined || s.pending.size < slot.pending.size) slot = s;
    if (slot === undefined) throw new Error('Internal error: LinePool without workers');
    const id = this.#nextId++;
    const target = slot;
    return new Promise<LineBatchResult>((resolve, reject) => {
      if (target.pending.size === 0) target.worker.ref();
      target.pending.set(id, { resolve, reject });
      const req: LineRequest = { id, batch };
      const { blobs } = batch;
      target.worker.postMessage(
        req,
        blobs.kind === 'bytes'
          ? [blobs.gz.buffer as ArrayBuffer, blobs.gzEnds.buffer as ArrayBuffer]
          : [],
      );
    });
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
      }),
    );
  }
}

let shared: LinePool | undefined;
/** Line workers the parts running now asked for, in all. */
let leased = 0;

/**
 * The process's line pool, for one part that wants `perPart` workers: the pool grows to the sum
 * of what the parts running at once asked for (so packs running side by side each get their
 * share) and is replaced if a worker died. Shared, not one per part, so that a pack of many parts
 * pays the workers' startup (a thread, an isolate, loading decode.js and iconv-lite) once. Call
 * `release` when the part ends.
 */
export function leaseLineWorkers(perPart: number): { pool: LinePool; release: () => void } {
  const n = Math.max(1, Math.floor(perPart));
  leased += n;
  if (shared === undefined || shared.broken) shared = new LinePool(leased);
  else shared.grow(leased);
  let released = false;
  return {
    pool: shared,
    release: () => {
      if (released) return;
      released = true;
      leased -= n;
    },
  };
}
