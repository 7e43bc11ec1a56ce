/**
 * EFFECTS: the facts lib/sizing.ts decides from, read from this host: cores this process may use,
 * memory (its cgroup's limit when lower), free space on the disk holding the scratch dir, and the
 * open-file limit. Reading never fails: what cannot be read is left undefined, and the sizing
 * says so.
 */
import { readFile, statfs } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Pipeline } from './model.js';
import type { HostFacts, SizingDecision, SizingFlags } from './sizing.js';
import { applySizing, decideSizing, sizingConfigOf } from './sizing.js';

/** Free bytes for this user on the filesystem holding `dir` (or its nearest existing parent). */
async function freeBytes(dir: string): Promise<number | undefined> {
  for (let d = resolve(dir); ; d = dirname(d)) {
    try {
      const st = await statfs(d);
      return st.bavail * st.bsize;
    } catch {
      if (dirname(d) === d) return undefined;
    }
  }
}

/** The soft `Max open files` of this process (Linux /proc); undefined elsewhere. */
async function openFilesLimit(): Promise<number | undefined> {
  try {
    const text = await readFile('/proc/self/limits', 'utf8');
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(text);
    if (m?.[1] === undefined || m[1] === 'unlimited') return undefined;
    return Number(m[1]);
  } catch {
    return undefined;
  }
}

/** Memory this process may use: the machine's, or the cgroup's limit when it is lower. */
function memoryBytes(): number {
  const total = totalmem();
  // Node ≥ 19.6; 0 or undefined (or a huge sentinel) when there is no limit.
  const constrained = (
    process as { constrainedMemory?: () => number | undefined }
  ).constrainedMemory?.();
  return constrained !== undefined && constrained > 0 && constrained < total ? constrained : total;
}

export async function hostFacts(scratchDir: string): Promise<HostFacts> {
  const [freeDiskBytes, files] = await Promise.all([freeBytes(scratchDir), openFilesLimit()]);
  return {
    cores: availableParallelism(),
    memoryBytes: memoryBytes(),
    freeDiskBytes,
    openFilesLimit: files,
  };
}

/**
 * Sizes this process for the pipeline: the decision (undefined when there is no pack stage) and
 * the pipeline with it applied.
 */
export async function sizeForHost<P extends Pipeline>(
  pipeline: P,
  cacheDir: string,
  flags: SizingFlags,
): Promise<{ pipeline: P; decision: SizingDecision | undefined }> {
  const cfg = sizingConfigOf(pipeline, flags);
  if (cfg === undefined) return { pipeline, decision: undefined };
  const decision = decideSizing(await hostFacts(cacheDir), cfg);
  return { pipeline: applySizing(pipeline, decision, flags), decision };
}
