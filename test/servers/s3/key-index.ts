/**
 * A bucket's keys in memory, in UTF-8 byte order (S3's listing order), so that a listing costs a
 * binary search and a slice instead of a walk of the bucket's directories. Each bucket's list is
 * built by one walk the first time it is listed, then kept by the server's own writes and
 * deletes (store.ts `ObjectFiles`): every object change goes through that one process.
 *
 * Why: the fleet rehearsal (bench/fleet-rehearsal.ts) has 16 workers list 1,500 markers and
 * 900 leases several times a second at the end of a run. Walking ~700 directories per page and
 * reading each key's metadata files made the one-process server the slowest part of the run
 * (a 1,575-key listing ~100 ms, requests queued behind them for up to 17 s).
 */
export class KeyIndex {
  private readonly buckets = new Map<string, string[]>();

  /**
   * The keys of `bucket` under `prefix`, sorted; `walk` lists the whole bucket the first time.
   * The array is a copy: the caller may keep it while writes go on.
   */
  keys(bucket: string, prefix: string, walk: () => string[]): string[] {
    let all = this.buckets.get(bucket);
    if (all === undefined) {
      all = walk();
      this.buckets.set(bucket, all);
    }
    const from = lowerBound(all, prefix);
    let to = from;
    while (to < all.length && (all[to] as string).startsWith(prefix)) to++;
    return all.slice(from, to);
  }

  /** A key now exists (a PUT, a copy, a completed upload): kept only once the bucket is indexed. */
  added(bucket: string, key: string): void {
    const all = this.buckets.get(bucket);
    if (all === undefined) return;
    const at = lowerBound(all, key);
    if (all[at] !== key) all.splice(at, 0, key);
  }

  /** A key is gone. */
  removed(bucket: string, key: string): void {
    const all = this.buckets.get(bucket);
    if (all === undefined) return;
    const at = lowerBound(all, key);
    if (all[at] === key) all.splice(at, 1);
  }

  /** Forgets a bucket (it was found missing): the next listing walks again. */
  forget(bucket: string): void {
    this.buckets.delete(bucket);
  }
}

/** The first index whose key is not below `key` in byte order. */
function lowerBound(sorted: readonly string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(sorted[mid] as string, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Sorts strings by their UTF-8 bytes (not UTF-16 code units, which differ above U+FFFF). */
export function sortByBytes(keys: string[]): string[] {
  return keys
    .map((k) => ({ k, b: Buffer.from(k) }))
    .sort((x, y) => Buffer.compare(x.b, y.b))
    .map((x) => x.k);
}

export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
