/**
 * cmds (per parquet): reads `blob_id` with DuckDB and writes an s5cmd command file with one
 * `cp "<source>/<blob_id>" "<dest>"` per row, in row order. Same parquet + params → same bytes.
 */
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import {
  cmdKey,
  defineTask,
  err,
  localParquet,
  ok,
  publishFile,
  shardOf,
} from '../lib/task-api.js';

/** `file:///a/b` → `/a/b` (s5cmd takes local paths bare); other URLs unchanged. */
const s5cmdUrl = (url: string): string => (url.startsWith('file://') ? url.slice(7) : url);

export default defineTask({
  kind: 'cmds',
  version: '1',
  tools: {},
  async run(ctx) {
    const { file, language } = ctx.task;
    if (file === undefined || language === undefined) {
      throw new Error('Internal error: cmds without a file');
    }
    const source = s5cmdUrl(
      typeof ctx.task.params.source === 'string'
        ? ctx.task.params.source
        : ctx.pipeline.contentSource,
    ).replace(/\/+$/, '');
    const dest = typeof ctx.task.params.dest === 'string' ? ctx.task.params.dest : '{blob_id}.gz';
    if (/["\n\r]/.test(dest) || /["\n\r]/.test(source)) {
      return err({
        reason: 'invalid-input',
        message: 'cmds: source and dest must not contain quotes or newlines',
      });
    }
    const local = await localParquet(ctx, file);
    if (!local.ok) return local;
    const tmp = join(ctx.scratch, 'cmd.txt');
    const out = createWriteStream(tmp);
    const vars: Record<string, string> = { language, stem: file.stem, shard: shardOf(file.stem) };
    let rows = 0;
    let bad = 0;
    // Loaded on first use (see pack): planning never needs DuckDB.
    const { streamColumn, withDuckDB } = await import('../lib/io/duckdb.js');
    await withDuckDB(async (conn) => {
      for await (const ids of streamColumn(conn, local.value, 'blob_id')) {
        let chunk = '';
        for (const id of ids) {
          if (!/^[0-9a-f]{40}$/.test(id)) {
            bad++;
            chunk += `# row ${rows}: skipped malformed blob_id ${JSON.stringify(id)}\n`;
          } else {
            const d = dest.replace(/\{(blob_id|language|stem|shard)\}/g, (_m, k: string) =>
              k === 'blob_id' ? id : (vars[k] ?? ''),
            );
            chunk += `cp "${source}/${id}" "${d}"\n`;
          }
          rows++;
        }
        if (!out.write(chunk)) await once(out, 'drain');
        ctx.progress({ rows: ids.length });
      }
    });
    out.end();
    await once(out, 'finish');
    const pub = await publishFile(ctx.stores.work, 'work', cmdKey(language, file.stem), tmp);
    if (!pub.ok) return pub;
    if (bad > 0)
      ctx.note(`${ctx.task.id}: ${bad} rows had a malformed blob_id (commented out in cmd.txt)`);
    return ok({ outputs: [pub.value], counts: { rows, malformed: bad } });
  },
});
