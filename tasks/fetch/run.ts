/**
 * fetch (per parquet): downloads one parquet into the work store. The hub verifies size and sha256
 * against the manifest BEFORE the file reaches the scratch path, and only then is it published,
 * so a bad download is never visible under its key.
 */
import { join } from 'node:path';
import { err, publishFile, workParquetKey } from '../../lib/task-api.js';
import type { Result, TaskContext, TaskResult } from '../../lib/task-api.js';

export async function run(ctx: TaskContext): Promise<Result<TaskResult>> {
  const file = ctx.task.file;
  if (file === undefined) throw new Error('Internal error: fetch without a file');
  const tmp = join(ctx.scratch, 'download.parquet');
  const got = await ctx.hub.download(file, ctx.pipeline.revision, tmp, {
    signal: ctx.signal,
    onBytes: (n) => {
      ctx.progress({ bytes: n });
    },
  });
  if (!got.ok) {
    if (got.error.reason !== 'checksum-mismatch') return got;
    // The hub names the file, expected and actual; add what the user can do about it.
    return err({
      ...got.error,
      message: `${got.error.message}; if the source really changed, rerun discover with --force 'discover:${ctx.task.language ?? ''}'`,
    });
  }
  const out = await publishFile(ctx.stores.work, 'work', workParquetKey(file), tmp);
  if (!out.ok) return out;
  return { ok: true, value: { outputs: [out.value], counts: { bytes: got.value.size } } };
}
