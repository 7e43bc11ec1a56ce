/**
 * EFFECTS. `stackflow verify [targets]`: re-reads every finished output that markers list and
 * checks it against the marker (store, key, size, sha256). The sha256 comes from the store's
 * checksum metadata where it keeps one (S3's `x-amz-meta-sha256`), else from hashing the bytes;
 * `deep` always hashes (re-downloads from S3). A marker that does not parse counts as damaged too.
 * With `repair`, exactly the damaged tasks are reset (as `stackflow reset` would), so the next run
 * redoes them. Bounded concurrency; progress goes out as events (one `verified` per task).
 *
 *   snapshot of markers ─▶ read bodies (jobs at once) ─▶ check outputs (jobs at once) ─▶ report
 */
import { forgetTasks, resetMatcher } from './admin.js';
import type { Result } from './errors.js';
import { err, ok } from './errors.js';
import type { Emit, VerifyProblem } from './events.js';
import { parseTaskId } from './graph.js';
import { digestObject } from './io/fs/files.js';
import type { OutputRecord } from './io/state/markers.js';
import { readMarkerState, snapshotMarkers } from './io/state/markers.js';
import type { StageName, TaskId } from './model.js';
import { objectKey } from './model.js';
import type { MarkerRef } from './planner.js';
import type { Session } from './session.js';
import { orderedMap } from './util/ordered.js';

export type { VerifyProblem } from './events.js';

export interface VerifyOptions {
  /** Task ids, globs or stage names (as for `reset`); empty: every finished task. */
  targets: readonly string[];
  /** Hash every output, even where the store keeps a sha256 (S3: re-download). */
  deep: boolean;
  /** Outputs (and markers) read at once. */
  jobs: number;
  /** Reset the damaged tasks so the next run redoes them. */
  repair: boolean;
  emit: Emit;
}

/** A finished task with something wrong. */
export interface DamagedTask {
  task: TaskId;
  /** The marker whose outputs were checked. */
  marker: string;
  problems: VerifyProblem[];
}

export interface VerifyReport {
  /** Finished tasks (markers) checked. */
  tasks: number;
  outputs: number;
  /** Bytes of the outputs checked. */
  bytes: number;
  damaged: DamagedTask[];
  /** Tasks reset by `repair` (sorted); empty without it. */
  repaired: TaskId[];
}

/** Finished tasks per stage, for the progress display (before any is checked). */
export type VerifyPlan = { stage: StageName; total: number }[];

export async function verify(
  s: Session,
  opts: VerifyOptions,
  onPlan: (plan: VerifyPlan) => void = () => undefined,
): Promise<Result<VerifyReport>> {
  const snap = await snapshotMarkers(s.stores.state);
  if (!snap.ok) return snap;
  const match = opts.targets.length === 0 ? () => true : resetMatcher(opts.targets);
  const refs: { task: TaskId; ref: MarkerRef }[] = [];
  for (const [task, list] of snap.value) {
    if (match(task)) for (const ref of list) refs.push({ task, ref });
  }
  if (refs.length === 0 && opts.targets.length > 0) {
    return err({
      reason: 'invalid-input',
      message: `no finished task matches ${opts.targets.join(', ')} (use a stage name, a task id or a glob such as "pack:C++/*")`,
    });
  }
  refs.sort((a, b) => (a.ref.key < b.ref.key ? -1 : a.ref.key > b.ref.key ? 1 : 0));
  const perStage = new Map<StageName, number>();
  for (const r of refs) {
    const st = parseTaskId(r.task).stage as StageName;
    perStage.set(st, (perStage.get(st) ?? 0) + 1);
  }
  onPlan([...perStage].map(([stage, total]) => ({ stage, total })));

  const report: VerifyReport = { tasks: 0, outputs: 0, bytes: 0, damaged: [], repaired: [] };
  const bodies = orderedMap(refs, opts.jobs, async ({ task, ref }) => ({
    task,
    ref,
    read: await readMarkerState(s.stores.state, ref.key),
  }));
  // One item per output (or per damaged marker); a task's items are contiguous, so its last
  // one closes it.
  type Item =
    | { task: TaskId; ref: MarkerRef; output?: OutputRecord; last: boolean }
    | { task: TaskId; ref: MarkerRef; problem: VerifyProblem };
  const items = (async function* (): AsyncGenerator<Item> {
    for await (const b of bodies) {
      if (!b.read.ok) {
        yield {
          ...b,
          problem: {
            kind: 'unreadable',
            store: 'state',
            key: b.ref.key,
            detail: b.read.error.message,
          },
        };
      } else if (b.read.value.state === 'missing') {
        continue; // reset or rerun meanwhile: nothing finished to check
      } else if (b.read.value.state === 'damaged') {
        yield {
          ...b,
          problem: {
            kind: 'marker-damaged',
            store: 'state',
            key: b.ref.key,
            detail: b.read.value.why,
          },
        };
      } else {
        const outs = b.read.value.value.outputs;
        if (outs.length === 0) yield { task: b.task, ref: b.ref, last: true };
        for (const [i, output] of outs.entries()) {
          yield { task: b.task, ref: b.ref, output, last: i === outs.length - 1 };
        }
      }
    }
  })();
  let current: DamagedTask | undefined;
  let bytes = 0;
  const close = (task: TaskId, ref: MarkerRef, problems: VerifyProblem[]): void => {
    report.tasks++;
    if (problems.length > 0) report.damaged.push({ task, marker: ref.key, problems });
    opts.emit({
      type: 'verified',
      task,
      stage: parseTaskId(task).stage as StageName,
      bytes,
      problems,
    });
    bytes = 0;
  };
  for await (const r of orderedMap(items, opts.jobs, async (it) =>
    'problem' in it
      ? { it, problem: it.problem }
      : { it, problem: await checkOutput(s, it.output, opts.deep) },
  )) {
    const { it } = r;
    current ??= { task: it.task, marker: it.ref.key, problems: [] };
    if ('output' in it && it.output !== undefined) {
      report.outputs++;
      report.bytes += it.output.size;
      bytes += it.output.size;
      opts.emit({
        type: 'progress',
        task: it.task,
        stage: parseTaskId(it.task).stage as StageName,
        rows: 0,
        bytes: it.output.size,
      });
    }
    if (r.problem !== undefined) current.problems.push(r.problem);
    if (!('last' in it) || it.last) {
      close(it.task, it.ref, current.problems);
      current = undefined;
    }
  }
  if (opts.repair) {
    // Only what is known damaged: an output that could not be read (the store failing) may be
    // fine, and redoing it would cost work for nothing.
    const damaged = new Set(
      report.damaged
        .filter((d) => d.problems.some((p) => p.kind !== 'unreadable'))
        .map((d) => d.task),
    );
    if (damaged.size > 0) {
      const reset = await forgetTasks(s, (id) => damaged.has(id));
      if (!reset.ok) return reset;
      report.repaired = reset.value.tasks;
    }
  }
  return ok(report);
}

/** What is wrong with one output, or undefined when it holds exactly what the marker says. */
async function checkOutput(
  s: Session,
  o: OutputRecord | undefined,
  deep: boolean,
): Promise<VerifyProblem | undefined> {
  if (o === undefined) return undefined;
  const store = s.stores[o.store];
  const at = { store: o.store, key: o.key };
  const h = await store.head(objectKey(o.key));
  if (!h.ok) {
    return h.error.reason === 'not-found'
      ? { kind: 'missing', ...at }
      : { kind: 'unreadable', ...at, detail: h.error.message };
  }
  if (h.value.size !== o.size) {
    return { kind: 'size', ...at, expected: String(o.size), actual: String(h.value.size) };
  }
  let sha = deep ? undefined : h.value.sha256;
  if (sha === undefined) {
    const d = await digestObject(store, o.key);
    if (!d.ok) {
      return d.error.reason === 'not-found'
        ? { kind: 'missing', ...at }
        : { kind: 'unreadable', ...at, detail: d.error.message };
    }
    if (d.value.size !== o.size) {
      return { kind: 'size', ...at, expected: String(o.size), actual: String(d.value.size) };
    }
    sha = d.value.sha256;
  }
  return sha === o.sha256 ? undefined : { kind: 'sha256', ...at, expected: o.sha256, actual: sha };
}

/** The human report: one line per problem, then the totals. */
export function renderVerify(r: VerifyReport): string {
  const lines: string[] = [];
  if (r.damaged.length > 0) {
    const rows = r.damaged.flatMap((d) =>
      d.problems.map((p) => [d.task, p.store, p.key, problemText(p)] as const),
    );
    const w = [0, 1, 2].map((i) =>
      Math.max(['task', 'store', 'key'][i]?.length ?? 0, ...rows.map((x) => x[i]?.length ?? 0)),
    );
    const fmt = (c: readonly string[]): string =>
      c
        .map((x, i) => (i < 3 ? x.padEnd(w[i] ?? 0) : x))
        .join('  ')
        .trimEnd();
    lines.push(fmt(['task', 'store', 'key', 'problem']));
    for (const row of rows) lines.push(fmt(row));
    lines.push('');
  }
  const mb = (r.bytes / 1e6).toFixed(1);
  lines.push(
    `${String(r.tasks)} finished task${r.tasks === 1 ? '' : 's'} checked (${String(r.outputs)} outputs, ${mb} MB): ` +
      (r.damaged.length === 0 ? 'all outputs are intact' : `${String(r.damaged.length)} damaged`),
  );
  if (r.repaired.length > 0) {
    lines.push(
      `reset ${String(r.repaired.length)} task${r.repaired.length === 1 ? '' : 's'} (${r.repaired.join(', ')}): the next run redoes them`,
    );
  } else if (r.damaged.length > 0) {
    lines.push(
      '`stackflow verify --repair` resets exactly these tasks, so the next run redoes them',
    );
  }
  return lines.join('\n') + '\n';
}

function problemText(p: VerifyProblem): string {
  switch (p.kind) {
    case 'missing':
      return 'missing';
    case 'size':
      return `size ${p.actual ?? '?'} bytes, the marker says ${p.expected ?? '?'}`;
    case 'sha256':
      return `sha256 ${(p.actual ?? '').slice(0, 12)}…, the marker says ${(p.expected ?? '').slice(0, 12)}…`;
    case 'marker-damaged':
      return `marker damaged (${p.detail ?? ''})`;
    case 'unreadable':
      return `could not be read (${p.detail ?? ''})`;
  }
}
