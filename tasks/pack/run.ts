/**
 * pack (per parquet): splits the parquet's rows into parts of `rows_per_part`, packs each part
 * (see part.ts) and publishes it to the bucket as
 * `<prefix><Language>/<Language>-<NNNNN>-<part:06d>-of-<total:06d>.jsonl.zst` (+ `.errors.jsonl`
 * when some rows could not be packed). Each part gets its own record, so an interrupted pack
 * resumes at the first unfinished part. Two parts are in flight at once (parts-in-flight.ts): the
 * next part starts once this one has read its rows, and a packed part is published while the next
 * one packs; scratch holds at most two parts, and parts are published in order.
 */
import { join } from 'node:path';
import { rm, writeFile } from 'node:fs/promises';
import {
  err,
  errorsKeyFor,
  holdsSame,
  listAll,
  localParquet,
  objectKey,
  ok,
  packFamilyPrefix,
  parquetRowCount,
  packPartKey,
  parsePartKey,
  publishFile,
  shardOf,
  sharedFetchWindow,
  withDuckDB,
} from '../../lib/task-api.js';
import type { OutputRecord, PartRecord, Result, TaskContext } from '../../lib/task-api.js';
import type { ContentFetcher, FetcherOptions } from './fetchers.js';
import type { PackParams } from './part.js';
import type { PackedPart } from './parts-in-flight.js';
import { PartsInFlight } from './parts-in-flight.js';
import { leaseLineWorkers } from './line-pool.js';
import type { PackStageParams } from './index.js';

/**
 * The pack options of a stage's params (validated and defaulted when pipeline.yaml was read).
 * `concurrency` and `line_workers` are set from the host by the CLI (lib/sizing.ts); the fallbacks
 * are for callers that do not size (tests, benches).
 */
export function packParams(p: PackStageParams): PackParams & FetcherOptions & { prefix: string } {
  return {
    rowsPerPart: p.rows_per_part,
    contentField: p.content_field,
    maxMissingRate: p.max_missing_rate,
    concurrency: p.concurrency ?? 64,
    lineWorkers: p.line_workers ?? 1,
    zstdLevel: p.zstd_level,
    frameBytes: p.frame_bytes,
    prefix: p.prefix,
    fetcher: p.fetcher,
    window: p.window,
    s5cmdPath: p.s5cmd_path,
    s5cmdWorkers: p.s5cmd_workers,
  };
}

export async function run(
  ctx: TaskContext<PackStageParams>,
): Promise<Result<{ outputs: OutputRecord[]; counts: Record<string, number> }>> {
  const { file, language } = ctx.task;
  if (file === undefined || language === undefined)
    throw new Error('Internal error: pack without a file');
  const params = packParams(ctx.params);
  // Loaded on first use: DuckDB and the fetchers cost a fifth of a second at every CLI start,
  // which planning (`--dry-run`, status) never needs.
  const { makeFetcher } = await import('./fetchers.js');
  // The process's fetch window, shared with the other packs running here; this pack's
  // `concurrency` adds to its bound while it runs (within the process's ceiling).
  const window =
    params.fetcher === 'sdk' && params.window === 'adaptive' ? sharedFetchWindow() : undefined;
  const fetcher = makeFetcher(params, window === undefined ? ctx : { ...ctx, window });
  if (!fetcher.ok) return fetcher;
  const leave = window?.join(params.concurrency);
  try {
    return await packFile(ctx, params, fetcher.value);
  } finally {
    leave?.();
  }
}

async function packFile(
  ctx: TaskContext,
  params: ReturnType<typeof packParams>,
  fetcher: ContentFetcher,
): Promise<Result<{ outputs: OutputRecord[]; counts: Record<string, number> }>> {
  const { file, language } = ctx.task;
  if (file === undefined || language === undefined)
    throw new Error('Internal error: pack without a file');
  const { packPart } = await import('./part.js');
  const local = await localParquet(ctx, file);
  if (!local.ok) return local;
  const cleared = await ctx.parts.clearOthers();
  if (!cleared.ok) return cleared;
  const done = await ctx.parts.load();
  if (!done.ok) return done;
  const shard = shardOf(file.stem);
  const totals: Record<string, number> = { parts: 0, resumed_parts: 0 };
  const outputs: OutputRecord[] = [];
  let ready = false;
  const taken = (rec: Pick<PartRecord, 'outputs' | 'counts'>) => {
    outputs.push(...rec.outputs);
    add(totals, rec.counts);
    totals.parts = (totals.parts ?? 0) + 1;
  };
  return withDuckDB(async (conn) => {
    const rows = await parquetRowCount(conn, local.value);
    const total = Math.max(1, Math.ceil(rows / params.rowsPerPart));
    const keyOf = (part: number) =>
      packPartKey({ prefix: params.prefix, language, shard }, part, total);
    const scratchOf = (part: number): PartScratch => ({
      outPath: join(ctx.scratch, `part-${part}.jsonl.zst`),
      errPath: join(ctx.scratch, `part-${part}.errors.jsonl`),
    });
    const parts = new PartsInFlight({
      signal: ctx.signal,
      publish: (part, packed) =>
        publishPart(ctx, keyOf(part), { part, total }, packed, scratchOf(part)),
      drop: (part) => dropScratch(scratchOf(part)),
      published: taken,
    });
    // One share of the line pool for all the parts: two of them in flight do not double it.
    const lease = leaseLineWorkers(params.lineWorkers);
    try {
      for (let part = 0; part < total; part++) {
        if (ctx.signal.aborted) {
          // The parts in flight stop; one being published still gets its record.
          await parts.finish();
          return err({ reason: 'aborted', message: 'interrupted' });
        }
        const key = keyOf(part);
        const prior = done.value.get(part);
        const intact = prior === undefined ? ok(false) : await stillThere(ctx, prior, total);
        if (!intact.ok) {
          await parts.close();
          return intact;
        }
        if (prior !== undefined && intact.value) {
          const before = await parts.finish();
          if (!before.ok) return before;
          taken(prior);
          totals.resumed_parts = (totals.resumed_parts ?? 0) + 1;
          ctx.progress({ rows: prior.counts.rows ?? 0 });
          continue;
        }
        if (!ready) {
          // Checked here, not up front: a pack whose parts are all done needs no fetcher.
          const r = await fetcher.ready();
          if (!r.ok) {
            await parts.close();
            return r;
          }
          ready = true;
        }
        const from = part * params.rowsPerPart;
        const to = Math.min(rows, from + params.rowsPerPart);
        const started = await parts.start(part, async (signal, onRead) => {
          // Opened once the part before has read its rows: the connection is free.
          const blobs = await fetcher.open({ conn, parquet: local.value, part, from, to });
          if (!blobs.ok) return err({ ...blobs.error, message: `${key}: ${blobs.error.message}` });
          try {
            const packed = await packPart({
              conn,
              contentKey: JSON.stringify(params.contentField),
              parquet: local.value,
              from,
              to,
              fetch: blobs.value.fetch,
              localFile: blobs.value.localFile,
              remote: blobs.value.remote,
              params,
              outPath: scratchOf(part).outPath,
              signal,
              onRows: (n, bytes) => {
                ctx.progress({ rows: n, bytes });
              },
              // The process's figures (the run's summary): any fetcher, any window mode.
              onHeld: (d) => {
                sharedFetchWindow().noteHeld(d);
              },
              onRead,
              lease,
            });
            return packed.ok
              ? packed
              : err({ ...packed.error, message: `${key}: ${packed.error.message}` });
          } finally {
            await blobs.value.close();
          }
        });
        if (!started.ok) return started;
      }
      const last = await parts.finish();
      if (!last.ok) return last;
    } finally {
      // An exception (a bug) still stops the part packing and waits for the publish in flight.
      await parts.close();
      lease.release();
    }
    // Parts of an earlier layout (another rows_per_part) or a stale errors sidecar would sit next
    // to the new parts and duplicate rows for readers of the bucket: remove them before the
    // marker says this family is complete.
    const removed = await removeStale(
      ctx,
      packFamilyPrefix(params.prefix, language, shard),
      outputs,
    );
    if (!removed.ok) return removed;
    totals.stale_removed = removed.value;
    const kinds: [string, number][] = [
      ['missing', totals.missing ?? 0],
      ['corrupt gzip', totals.corrupt_gzip ?? 0],
      ['undecodable', totals.undecodable ?? 0],
      ['bad rows', totals.bad_rows ?? 0],
    ];
    const bad = kinds.reduce((n, [, k]) => n + k, 0);
    if (bad > 0) {
      const which = kinds.filter(([, k]) => k > 0).map(([what, k]) => `${String(k)} ${what}`);
      ctx.note(
        `${ctx.task.id}: ${bad} of ${totals.rows ?? 0} rows not packed (${which.join(', ')}); see the parts' .errors.jsonl`,
      );
    }
    return ok({ outputs, counts: totals });
  });
}

/** A part's files in the task's scratch dir. */
interface PartScratch {
  outPath: string;
  errPath: string;
}

/** A part's scratch files go as soon as it is published (or failed), not when the task ends. */
const dropScratch = (s: PartScratch): Promise<void> =>
  Promise.all([s.outPath, s.errPath].map((p) => rm(p, { force: true }))).then(() => undefined);

/**
 * Publishes a packed part (its errors sidecar first, when some rows could not be packed), drops
 * its scratch files and writes its record, after its outputs: a part without a record is redone.
 */
async function publishPart(
  ctx: TaskContext,
  key: string,
  at: { part: number; total: number },
  packed: PackedPart,
  scratch: PartScratch,
): Promise<Result<PartRecord>> {
  const rec: PartRecord = { ...at, outputs: [], counts: { ...packed.counts } };
  try {
    if (packed.errors.length > 0) {
      await writeFile(scratch.errPath, packed.errors.map((e) => JSON.stringify(e) + '\n').join(''));
      const pubErr = await publishFile(
        ctx.stores.bucket,
        'bucket',
        errorsKeyFor(key),
        scratch.errPath,
      );
      if (!pubErr.ok) return pubErr;
      rec.outputs.push(pubErr.value);
    }
    const pub = await publishFile(ctx.stores.bucket, 'bucket', key, scratch.outPath);
    if (!pub.ok) return pub;
    rec.outputs.push(pub.value);
  } finally {
    await dropScratch(scratch);
  }
  const recorded = await ctx.parts.record(rec);
  return recorded.ok ? ok(rec) : recorded;
}

async function removeStale(
  ctx: TaskContext,
  family: string,
  keep: readonly OutputRecord[],
): Promise<Result<number>> {
  const wanted = new Set(keep.map((o) => o.key));
  const stale: string[] = [];
  const listed = await listAll(ctx.stores.bucket, family);
  if (!listed.ok) return listed;
  for (const o of listed.value) {
    const name = o.key.replace(/\.errors\.jsonl$/, '.jsonl.zst');
    if (!wanted.has(o.key) && parsePartKey(name) !== undefined) stale.push(o.key);
  }
  for (const key of stale) {
    const d = await ctx.stores.bucket.delete(objectKey(key));
    if (!d.ok) return d;
  }
  return ok(stale.length);
}

/**
 * Whether a recorded part can be resumed: same layout, and every output it lists holds exactly
 * the recorded bytes (size, then sha256: the store's checksum metadata where it keeps one, else
 * the object hashed). A part that is gone or damaged is redone, never trusted.
 */
async function stillThere(
  ctx: TaskContext,
  rec: PartRecord,
  total: number,
): Promise<Result<boolean>> {
  if (rec.total !== total) return ok(false);
  for (const o of rec.outputs) {
    const same = await holdsSame(ctx.stores.bucket, o.key, o.size, o.sha256);
    if (!same.ok) return same;
    if (!same.value) {
      ctx.note(
        `${o.key} does not hold what part ${String(rec.part)}'s record says: the part is redone`,
      );
      return ok(false);
    }
  }
  return ok(true);
}

function add(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}
