/**
 * The real task list of bigcode/the-stack-v2 (test/fixtures/the-stack-v2-parquets.txt: 917
 * parquets in their language folders, 2024-11) with synthetic sizes, for estimates and the fleet
 * rehearsal. Sizes are deterministic (from a hash of the path): a shard of a multi-file language
 * is 2.3–2.9 GB (its last shard 0.2–2.9 GB), a single-file language lognormal around 20 MB (σ 2,
 * at most 2.9 GB). At ~312 bytes per row that is ~2.7B rows, as the dataset card says.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const STACK_V2_LIST = join(import.meta.dirname, '../fixtures/the-stack-v2-parquets.txt');

export interface SyntheticParquet {
  language: string;
  /** `train-00000-of-00001`. */
  stem: string;
  bytes: number;
}

/** Uniform in [0, 1) from a string. */
function unit(s: string): number {
  return createHash('sha256').update(s).digest().readUInt32BE(0) / 2 ** 32;
}

export function syntheticStackV2(): SyntheticParquet[] {
  const lines = readFileSync(STACK_V2_LIST, 'utf8').split('\n').filter(Boolean);
  return lines.map((line) => {
    const [language = '', file = ''] = line.split('/');
    const stem = file.replace(/\.parquet$/, '');
    const m = /^train-(\d+)-of-(\d+)$/.exec(stem);
    const index = Number(m?.[1] ?? 0);
    const count = Number(m?.[2] ?? 1);
    const u = unit(line);
    let bytes: number;
    if (count > 1) bytes = index === count - 1 ? 0.2e9 + u * 2.7e9 : 2.3e9 + u * 0.6e9;
    else {
      // Box-Muller from two hashes: lognormal, median 20 MB, σ 2.
      const v = unit(line + '#2');
      const z = Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * v);
      bytes = Math.min(2.9e9, 20e6 * Math.exp(2 * z));
    }
    return { language, stem, bytes: Math.max(4096, Math.round(bytes)) };
  });
}

/** The list as `estimate --listing` reads it: `<Language>/<file>.parquet <bytes>`. */
export function stackV2Listing(): string {
  return (
    syntheticStackV2()
      .map((p) => `${p.language}/${p.stem}.parquet ${p.bytes}`)
      .join('\n') + '\n'
  );
}
