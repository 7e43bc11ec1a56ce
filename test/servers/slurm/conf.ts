/**
 * PURE parts of the Slurm test harness: the private slurm.conf, and `scontrol show job -o` output
 * read into per-array-task states.
 */

/** What a private one-node cluster needs to know about its machine and its temp dir. */
export interface ClusterLayout {
  /** Private dir holding state, spool, logs, pid files and the munge socket. */
  dir: string;
  /** The short hostname, as `slurmd -C` reports it: slurmctld and slurmd look themselves up by it. */
  host: string;
  /** Non-default ports, so a second cluster (or a real one) on this machine never clashes. */
  ctldPort: number;
  slurmdPort: number;
  /** Declared CPUs: more than exist is fine (config_overrides), so several array tasks run at once. */
  cpus: number;
  /** Declared memory in MB; at least cpus × DefMemPerCPU so every CPU can be handed out. */
  memoryMb: number;
}

/** Memory per allocated CPU when a job asks for none (MB). */
export const DEF_MEM_PER_CPU = 512;

export function slurmConf(l: ClusterLayout): string {
  const at = (name: string): string => `${l.dir}/${name}`;
  return [
    '# Private single-node test cluster (test/servers/slurm): nothing here is shared with',
    '# another cluster on this machine: own ports, own state, own munge socket.',
    'ClusterName=stackflowtest',
    `SlurmctldHost=${l.host}(127.0.0.1)`,
    `SlurmctldPort=${String(l.ctldPort)}`,
    `SlurmdPort=${String(l.slurmdPort)}`,
    'SlurmUser=root',
    'SlurmdUser=root',
    // Our own munged, so tests neither need nor disturb the machine's.
    'AuthType=auth/munge',
    'CredType=cred/munge',
    `AuthInfo=socket=${at('munge.sock')}`,
    `StateSaveLocation=${at('state')}`,
    `SlurmdSpoolDir=${at('spool')}`,
    `SlurmctldPidFile=${at('slurmctld.pid')}`,
    `SlurmdPidFile=${at('slurmd.pid')}`,
    `SlurmctldLogFile=${at('slurmctld.log')}`,
    `SlurmdLogFile=${at('slurmd.log')}`,
    // No cgroups: tracking by process tree is enough for short test jobs.
    'ProctrackType=proctrack/linuxproc',
    'TaskPlugin=task/none',
    'JobAcctGatherType=jobacct_gather/none',
    'AccountingStorageType=accounting_storage/none',
    'MpiDefault=none',
    'SelectType=select/cons_tres',
    'SelectTypeParameters=CR_Core_Memory',
    `DefMemPerCPU=${String(DEF_MEM_PER_CPU)}`,
    'ReturnToService=2',
    // Without these, array tasks wait ~3 s between scheduling rounds.
    'SchedulerParameters=batch_sched_delay=0,sched_min_interval=0',
    'MaxArraySize=10001',
    // Finished jobs stay visible to `scontrol show job` for 10 min: there is no accounting (sacct)
    // to ask afterwards.
    'MinJobAge=600',
    // Lets the node declare more CPUs and memory than the machine has.
    'SlurmdParameters=config_overrides',
    `NodeName=${l.host} NodeAddr=127.0.0.1 CPUs=${String(l.cpus)} Boards=1 SocketsPerBoard=1 ` +
      `CoresPerSocket=${String(l.cpus)} ThreadsPerCore=1 RealMemory=${String(l.memoryMb)} State=UNKNOWN`,
    'PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP',
    '',
  ].join('\n');
}

/** States after which a job never runs again (without a requeue). */
const TERMINAL = new Set([
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'TIMEOUT',
  'NODE_FAIL',
  'OUT_OF_MEMORY',
  'PREEMPTED',
  'BOOT_FAIL',
  'DEADLINE',
]);

/** One array task (or a plain job, as task 0) as `scontrol show job -o` reports it. */
export interface JobTask {
  /** The array index; 0 for a job that is not an array. */
  task: number;
  /** JobState, e.g. COMPLETED, FAILED, RUNNING, PENDING. */
  state: string;
  /** The batch script's exit code (the first half of ExitCode=code:signal). */
  exitCode: number;
  /** The signal that ended it, 0 if none. */
  signal: number;
}

/**
 * Reads `scontrol show job -o <id>` output. `pending` counts array tasks still folded into the
 * array's meta record (`ArrayTaskId=1-2`), which has no state of its own yet.
 */
export function parseJobRecords(text: string): { tasks: JobTask[]; pending: number } {
  const tasks: JobTask[] = [];
  let pending = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('JobId=')) continue;
    const field = (k: string): string | undefined =>
      new RegExp(`(?:^| )${k}=(\\S*)`).exec(line)?.[1];
    const taskField = field('ArrayTaskId');
    const [code, sig] = (field('ExitCode') ?? '0:0').split(':').map(Number);
    if (taskField !== undefined && !/^\d+$/.test(taskField)) {
      pending += countRange(taskField);
      continue;
    }
    tasks.push({
      task: taskField === undefined ? 0 : Number(taskField),
      state: field('JobState') ?? 'UNKNOWN',
      exitCode: code ?? 0,
      signal: sig ?? 0,
    });
  }
  tasks.sort((a, b) => a.task - b.task);
  return { tasks, pending };
}

export const isTerminal = (state: string): boolean => TERMINAL.has(state);

/** Size of an index expression like `1-3,5,7-9%2` (the `%` suffix is a concurrency limit). */
function countRange(expr: string): number {
  let n = 0;
  for (const part of (expr.split('%')[0] ?? '').split(',')) {
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || Number.isNaN(a)) continue;
    n += b === undefined || Number.isNaN(b) ? 1 : b - a + 1;
  }
  return Math.max(n, 1);
}
