/**
 * Fault injection and request statistics. The injector decides, before any handler runs, whether
 * a request fails and how; a faulted write therefore never reaches the store.
 */
import { randomInt } from 'node:crypto';
import type { FaultConfig, FaultKind, ServerStats } from './protocol.js';
import type { S3Request } from './ops.js';

/** mulberry32: a small seeded PRNG, so a seed replays the same fault sequence. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class FaultInjector {
  private config: FaultConfig | null = null;
  private random = mulberry32(0);

  get current(): FaultConfig | null {
    return this.config;
  }

  /** Replaces the configuration and restarts the PRNG from the seed (random if none). */
  set(config: FaultConfig | null): void {
    this.config = config;
    this.random = mulberry32(config?.seed ?? randomInt(2 ** 31));
  }

  /**
   * The fault for this request, or null. Only kinds that can apply are drawn from:
   * `reset-mid-body` needs a GetObject. Draws from the PRNG only for eligible requests.
   * `partNumber`: an UploadPart's, for `partNumbers`.
   */
  choose(
    method: string,
    req: S3Request,
    listPrefix: string | undefined,
    partNumber?: number,
  ): FaultKind | null {
    const c = this.config;
    if (c === null || c.rate <= 0) return null;
    if (c.methods !== undefined && !c.methods.includes(method)) return null;
    if (c.partNumbers !== undefined) {
      if (req.op !== 'UploadPart' || partNumber === undefined) return null;
      if (!c.partNumbers.includes(partNumber)) return null;
    }
    if (c.bucket !== undefined && req.bucket !== c.bucket) return null;
    if (c.keyPrefix !== undefined) {
      const subject = req.key ?? listPrefix;
      if (subject === undefined || !subject.startsWith(c.keyPrefix)) return null;
    }
    const kinds = c.kinds.filter((k) => k !== 'reset-mid-body' || req.op === 'GetObject');
    if (kinds.length === 0) return null;
    if (this.random() >= c.rate) return null;
    return kinds[Math.floor(this.random() * kinds.length)] ?? null;
  }
}

/** Caps the recorded ranges, so a long benchmark cannot grow the server without bound. */
const MAX_RANGES = 100_000;

export class Stats {
  private data: ServerStats = Stats.empty();

  private static empty(): ServerStats {
    return { requests: 0, byOp: {}, faults: {}, ranges: [] };
  }

  reset(): void {
    this.data = Stats.empty();
  }

  request(req: S3Request, range: string | undefined): void {
    this.data.requests++;
    this.data.byOp[req.op] = (this.data.byOp[req.op] ?? 0) + 1;
    if (
      req.op === 'GetObject' &&
      range !== undefined &&
      req.bucket !== undefined &&
      req.key !== undefined &&
      this.data.ranges.length < MAX_RANGES
    ) {
      this.data.ranges.push({ bucket: req.bucket, key: req.key, range });
    }
  }

  fault(kind: FaultKind): void {
    this.data.faults[kind] = (this.data.faults[kind] ?? 0) + 1;
  }

  snapshot(): ServerStats {
    return structuredClone(this.data);
  }
}
