/**
 * What bench/fleet.ts and bench/fleet-rehearsal.ts set up and count alike: an HF-shaped mirror of
 * links to one small sample parquet, the pipeline of a `discover` stage and one `shell` stage per
 * parquet on S3 state, the CPU the machine and the S3 server spent around a run, and duplicates
 * (tasks started by two workers, or finished twice) from the workers' events.
 */
import { copyFileSync, linkSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { childPidRunning, machineCpuS, processCpuS } from './fleet-run.js';
import type { WorkerResult } from './fleet-run.js';

const REPO = resolve(import.meta.dirname, '../..');

/** The sample parquet every mirror file is a link to (no task of these benches reads it). */
export const SAMPLE_PARQUET = join(
  REPO,
  'examples/sample/hf/data/Graphviz_(DOT)/train-00000-of-00001.parquet',
);

/** `data/<language>/<stem>.parquet` under `root` for each file: hard links (copies across devices). */
export function linkMirror(
  root: string,
  files: readonly { language: string; stem: string }[],
): void {
  for (const f of files) {
    const dir = join(root, 'data', f.language);
    mkdirSync(dir, { recursive: true });
    const to = join(dir, `${f.stem}.parquet`);
    try {
      linkSync(SAMPLE_PARQUET, to);
    } catch {
      copyFileSync(SAMPLE_PARQUET, to);
    }
  }
}

export interface ShellPipeline {
  /** The dataset's repo id (a label). */
  repo: string;
  /** The mirror's directory. */
  mirror: string;
  /** S3 bucket holding state, work and outputs. */
  bucket: string;
  /** The S3 endpoint; absent: each worker takes AWS_ENDPOINT_URL_S3 (its proxy listener). */
  endpoint?: string;
  /** The per-parquet shell stage. */
  stage: string;
  /** Its bash command (`{outputs}` is the output's path). */
  command: string;
  /** Its environment (placeholders reach bash as data). */
  env?: Record<string, string>;
}

/** pipeline.yaml: `discover`, then `<stage>` (a shell task per parquet writing one output). */
export function shellPipelineYaml(p: ShellPipeline): string {
  return [
    'version: 1',
    `dataset: { repo: ${p.repo}, revision: bench, source: 'file://${p.mirror}', languages: all }`,
    `content: { source: 'file://${p.mirror}' }`,
    `state: s3://${p.bucket}/state`,
    `work: s3://${p.bucket}/work`,
    `bucket: s3://${p.bucket}/out`,
    ...(p.endpoint !== undefined ? ['s3:', `  ${p.bucket}: { endpoint: '${p.endpoint}' }`] : []),
    'tasks:',
    '  discover: { kind: discover }',
    `  ${p.stage}:`,
    '    kind: shell',
    '    foreach: parquet',
    '    needs: [discover]',
    '    params:',
    ...(p.env !== undefined
      ? [
          `      env: { ${Object.entries(p.env)
            .map(([k, v]) => `${k}: '${v}'`)
            .join(', ')} }`,
        ]
      : []),
    `      command: '${p.command}'`,
    `      outputs: ['${p.stage}/{language}/{stem}.txt']`,
    '',
  ].join('\n');
}

/** CPU spent between `meter()` and `read()`: the whole machine's and the S3 test server's. */
export function cpuMeter(): () => {
  machineBusyS: number;
  machineBusyShare: number;
  serverCpuS: number;
} {
  const serverPid = childPidRunning('test/servers/s3/server.ts');
  const m0 = machineCpuS();
  const s0 = serverPid === undefined ? undefined : processCpuS(serverPid);
  return () => {
    const m1 = machineCpuS();
    const s1 = serverPid === undefined ? undefined : processCpuS(serverPid);
    return {
      machineBusyS: m0 && m1 ? m1.busy - m0.busy : NaN,
      machineBusyShare: m0 && m1 ? (m1.busy - m0.busy) / (m1.total - m0.total) : NaN,
      serverCpuS: s0 !== undefined && s1 !== undefined ? s1 - s0 : NaN,
    };
  };
}

export interface Duplicates {
  /** Tasks started by more than one worker. */
  startedByTwoWorkers: number;
  /** Tasks finished more than once. */
  completedTwice: number;
  /** Both: the figure that must be 0. */
  duplicates: number;
  /** Same-worker restarts after a transient failure (attempt > 1): not duplicates. */
  retries: number;
  /** Every worker's events about each duplicated task, in time order (at most 20 tasks). */
  traces: string[][];
}

/** Duplicates from the workers' events. */
export function duplicatesOf(workers: readonly WorkerResult[]): Duplicates {
  const all = workers.flatMap((w) => w.events.map((e) => ({ ...e, worker: w.index })));
  const startedBy = new Map<string, Set<number>>();
  const completions = new Map<string, number>();
  let retries = 0;
  for (const e of all) {
    if (e.task === undefined) continue;
    if (e.type === 'task-started') {
      startedBy.set(e.task, (startedBy.get(e.task) ?? new Set()).add(e.worker));
      if ((e.attempt ?? 1) > 1) retries++;
    }
    if (e.type === 'task-succeeded') completions.set(e.task, (completions.get(e.task) ?? 0) + 1);
  }
  const twice = [...startedBy].filter(([, w]) => w.size > 1).map(([t]) => t);
  const doneTwice = [...completions].filter(([, n]) => n > 1).map(([t]) => t);
  const traces = [...new Set([...twice, ...doneTwice])].slice(0, 20).map((task) =>
    all
      .filter((e) => e.task === task || e.message?.includes(task) === true)
      .sort((a, b) => a.at - b.at)
      .map(
        (e) =>
          `${new Date(e.at).toISOString().slice(11, 23)} w${String(e.worker)} ${e.type}${e.message !== undefined ? `: ${e.message}` : ''}`,
      ),
  );
  return {
    startedByTwoWorkers: twice.length,
    completedTwice: doneTwice.length,
    duplicates: twice.length + doneTwice.length,
    retries,
    traces,
  };
}
