/**
 * cmds (per parquet): reads `blob_id` with DuckDB and writes an s5cmd command file with one
 * `cp <source>/<blob_id> <dest>` per row, in row order, each path quoted for s5cmd's line parser
 * (lib/io/s5cmd.ts `copyLine`), so a language such as `Ren'Py` or `x"y` stays one path. A row whose
 * blob_id is NULL or not 40 hex digits becomes a `# row N: skipped …` comment. Same parquet +
 * params → same bytes.
 */
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import {
  cmdKey,
  copyLine,
  err,
  localParquet,
  ok,
  publishFile,
  shardOf,
  streamColumn,
  withDuckDB,
} from '../../lib/task-api.js';
import type { Result, TaskContext, TaskResult } from '../../lib/task-api.js';
import type { CmdsParams } from './index.js';

const BLOB_ID = /^[0-9a-f]{40}$/;

/** `file:///a/b` → `/a/b` (s5cmd takes local paths bare); other URLs unchanged. */
const s5cmdUrl = (url: string): string => (url.startsWith('file://') ? url.slice(7) : url);

export async function run(ctx: TaskContext<CmdsParams>): Promise<Result<TaskResult>> {
  const { file, language } = ctx.task;
  if (file === undefined || language === undefined) {
    throw new Error('Internal error: cmds without a file');
  }
  const source = s5cmdUrl(ctx.params.source ?? ctx.pipeline.contentSource).replace(/\/+$/, '');
  const dest = ctx.params.dest;
  const vars: Record<string, string> = { language, stem: file.stem, shard: shardOf(file.stem) };
  const line = (id: string) =>
    copyLine({
      source: `${source}/${id}`,
      dest: dest.replace(/\{(blob_id|language|stem|shard)\}/g, (_m, k: string) =>
        k === 'blob_id' ? id : (vars[k] ?? ''),
      ),
    });
  // Every line differs only in the blob id (40 hex digits): one that cannot be written means
  // none can, so it fails the task here, before the parquet is read.
  const probe = line('0'.repeat(40));
  if (!probe.ok) {
    return err({ reason: 'invalid-input', message: `${ctx.task.id}: ${probe.error.message}` });
  }
  const local = await localParquet(ctx, file);
  if (!local.ok) return local;
  const tmp = join(ctx.scratch, 'cmd.txt');
  const out = createWriteStream(tmp);
  let rows = 0;
  let bad = 0;
  await withDuckDB(async (conn) => {
    for await (const ids of streamColumn(conn, local.value, 'blob_id')) {
      let chunk = '';
      for (const id of ids) {
        const l = id !== null && BLOB_ID.test(id) ? line(id) : undefined;
        if (l?.ok === true) chunk += l.value;
        else {
          bad++;
          // JSON.stringify keeps the comment on one line whatever the value holds.
          const what = id === null ? 'NULL blob_id' : `malformed blob_id ${JSON.stringify(id)}`;
          chunk += `# row ${rows}: skipped ${what}\n`;
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
    ctx.note(
      `${ctx.task.id}: ${bad} rows had a NULL or malformed blob_id (commented out in cmd.txt)`,
    );
  return ok({ outputs: [pub.value], counts: { rows, malformed: bad } });
}
