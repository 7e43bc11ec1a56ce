/**
 * discover (per language): lists `data/<Language>/*.parquet` at the pinned revision and writes the
 * manifest (path, size, sha256) that parquet-level stages expand from.
 */
import { err, ok, writeManifest } from '../../lib/task-api.js';
import type { Result, TaskContext, TaskResult } from '../../lib/task-api.js';

export async function run(ctx: TaskContext): Promise<Result<TaskResult>> {
  const language = ctx.task.language;
  if (language === undefined) throw new Error('Internal error: discover without a language');
  const files = await ctx.hub.listFiles(language, ctx.pipeline.revision);
  if (!files.ok) {
    if (files.error.reason === 'not-found') {
      return err({
        reason: 'invalid-input',
        message: `language ${JSON.stringify(language)} has no folder data/${language}/ in ${ctx.hub.url} at ${ctx.pipeline.revision}`,
      });
    }
    return files;
  }
  if (files.value.length === 0) {
    return err({ reason: 'invalid-input', message: `data/${language}/ holds no parquet files` });
  }
  const manifest = { language, revision: ctx.pipeline.revision, files: files.value };
  const out = await writeManifest(ctx.stores.state, ctx.fingerprint.hash, manifest);
  if (!out.ok) return out;
  return ok({
    outputs: [out.value],
    counts: { files: files.value.length, bytes: files.value.reduce((a, f) => a + f.size, 0) },
    manifest,
  });
}
