/**
 * shell: a user's own step. Runs `params.command` through bash, then publishes each declared output
 * into the work store under its declared key. Placeholders — `{inputs}` (the declared local globs
 * plus the dependencies' local outputs), `{outputs}` (scratch paths), `{language}`, `{stem}`,
 * `{shard}`, `{stage}` — reach the command as variable references, never as text: a value is data
 * whatever it holds (lib/shell-command.ts).
 */
import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import {
  err,
  localCopy,
  objectKey,
  ok,
  publishFile,
  shellScript,
  templateVars,
} from '../../lib/task-api.js';
import type { Result, TaskContext, TaskResult } from '../../lib/task-api.js';
import type { ShellParams } from './index.js';
import type { OutputRecord } from '../../lib/task-api.js';

import { shellInputFiles } from './inputs.js';

export async function run(ctx: TaskContext<ShellParams>): Promise<Result<TaskResult>> {
  const { command, outputs: outKeys, env, inputs: globs } = ctx.params;
  const globbed = await shellInputFiles(ctx.pipeline.dir, globs);
  const upstream: string[] = [];
  for (const u of ctx.upstream.values()) {
    for (const o of u.outputs) {
      const store =
        o.store === 'work' ? ctx.stores.work : o.store === 'bucket' ? ctx.stores.bucket : undefined;
      if (store === undefined) continue;
      // A remote output (S3 bucket or work store) is downloaded into scratch first.
      const p = await localCopy(store, objectKey(o.key), ctx.scratch, ctx.signal);
      if (!p.ok) return p;
      upstream.push(p.value);
    }
  }
  const inputs = [...upstream.sort(), ...globbed];
  const outPaths = outKeys.map((_k, i) => join(ctx.scratch, `out-${i}`));
  const sh = shellScript(command, {
    vars: templateVars(ctx.task.stage, ctx.task.language, ctx.task.file),
    inputs,
    outputs: outPaths,
  });
  const $ = ctx.$({ env: { ...process.env, ...env, ...sh.env, STACKFLOW_TASK: ctx.task.id } });
  const res = await $`bash -eo pipefail -c ${sh.script} ${sh.args}`.nothrow();
  if (res.exitCode !== 0) {
    return err({
      reason: 'task-exit-non-zero',
      exitCode: res.exitCode,
      message: `${ctx.task.id}: command exited ${res.exitCode ?? res.signal ?? '?'}: ${res.stderr.trim().split('\n').slice(-5).join(' | ')}`,
    });
  }
  const outputs: OutputRecord[] = [];
  for (const [i, key] of outKeys.entries()) {
    const p = outPaths[i] ?? '';
    if (!existsSync(p) || isAbsolute(key)) {
      return err({
        reason: 'output-missing',
        key,
        message: `${ctx.task.id}: the command did not write output ${i + 1} (${key}); write it to the path {outputs} gives`,
      });
    }
    const pub = await publishFile(ctx.stores.work, 'work', key, p);
    if (!pub.ok) return pub;
    outputs.push(pub.value);
  }
  return ok({ outputs, counts: { inputs: inputs.length } });
}
