/**
 * sync (per parquet): copies the work-store outputs of its dependencies (the parquet, its cmd.txt)
 * to the user's bucket under `prefix`, skipping objects that are already identical.
 */
import { holdsSame, ok, objectKey } from '../../lib/task-api.js';
import type { Result, TaskContext, TaskResult } from '../../lib/task-api.js';
import type { SyncParams } from './index.js';
import type { OutputRecord } from '../../lib/task-api.js';

export async function run(ctx: TaskContext<SyncParams>): Promise<Result<TaskResult>> {
  const prefix = ctx.params.prefix;
  const outputs: OutputRecord[] = [];
  const counts = { uploaded: 0, skipped: 0, bytes: 0 };
  const sources = [...ctx.upstream.values()].flatMap((u) => u.outputs);
  for (const o of sources.filter((s) => s.store === 'work')) {
    const key = prefix + o.key;
    const same = await holdsSame(ctx.stores.bucket, key, o.size, o.sha256);
    if (!same.ok) return same;
    if (same.value) {
      counts.skipped++;
    } else {
      const local = ctx.stores.work.localPath?.(objectKey(o.key));
      const body =
        local !== undefined ? { file: local } : await ctx.stores.work.getStream(objectKey(o.key));
      if (!('file' in body) && !body.ok) return body;
      const put = await ctx.stores.bucket.put(objectKey(key), 'file' in body ? body : body.value);
      if (!put.ok) return put;
      counts.uploaded++;
      counts.bytes += o.size;
      ctx.progress({ bytes: o.size });
    }
    outputs.push({ store: 'bucket', key, size: o.size, sha256: o.sha256 });
  }
  return ok({ outputs, counts });
}
