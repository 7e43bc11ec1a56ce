/**
 * fetch (per parquet): downloads one parquet into the work store, verifying size and sha256
 * against the manifest BEFORE publishing it (a bad download is never visible under its key).
 */
import { join } from 'node:path';
import { defineTask, err, publishFile, workParquetKey, writeHashed } from '../lib/task-api.js';

export default defineTask({
  kind: 'fetch',
  version: '1',
  tools: {},
  async run(ctx) {
    const file = ctx.task.file;
    if (file === undefined) throw new Error('Internal error: fetch without a file');
    const src = await ctx.hub.open(file, ctx.pipeline.revision, ctx.signal);
    if (!src.ok) return src;
    const tmp = join(ctx.scratch, 'download.parquet');
    const got = await writeHashed(src.value, tmp, ctx.signal);
    ctx.progress({ bytes: got.size });
    if (got.size !== file.size || got.sha256 !== file.sha256) {
      return err({
        reason: 'checksum-mismatch',
        key: file.path,
        expected: `${file.size} bytes, sha256 ${file.sha256}`,
        actual: `${got.size} bytes, sha256 ${got.sha256}`,
        message: `${file.path} does not match the manifest (expected sha256 ${file.sha256.slice(0, 12)}… and ${file.size} bytes, got ${got.sha256.slice(0, 12)}… and ${got.size} bytes); if the source really changed, rerun discover with --force 'discover:${ctx.task.language ?? ''}'`,
      });
    }
    const out = await publishFile(ctx.stores.work, 'work', workParquetKey(file), tmp);
    if (!out.ok) return out;
    return { ok: true, value: { outputs: [out.value], counts: { bytes: got.size } } };
  },
});
