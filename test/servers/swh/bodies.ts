/**
 * The pool of pre-compressed bodies the synthetic Software Heritage serves: one gzip per
 * (size class, variant), made on first use and kept (so a run that never draws a multi-MB blob
 * never pays for compressing one). Texts look like source code (indented statements with
 * identifiers and numbers) so that gzip and zstd see ratios of the order of real code, and each
 * variant differs, so consecutive rows of a part are not byte-identical.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { SizeModel } from './model.js';
import { Rng, classBytes, sizeClass, variantsOf } from './model.js';

export interface PooledBody {
  gz: Buffer;
  /** `"<md5 hex>"`, as S3 sends it for a single-part object. */
  etag: string;
  /** Length of the text before gzip. */
  textBytes: number;
}

const WORDS = (
  'alpha beta gamma delta value index count buffer result state node item key data parse ' +
  'render stream token config error handler request response cache length offset'
).split(' ');

function codeText(bytes: number, seed: number): string {
  const rng = new Rng(seed);
  const pick = () => WORDS[Math.floor(rng.float() * WORDS.length)] ?? 'x';
  const lines: string[] = [];
  let n = 0;
  while (n < bytes) {
    const indent = '    '.repeat(Math.floor(rng.float() * 4));
    const line =
      rng.float() < 0.15
        ? `${indent}// ${pick()} ${pick()} ${pick()}: ${String(Math.floor(rng.float() * 1e6))}`
        : `${indent}const ${pick()}_${String(Math.floor(rng.float() * 4096))} = ${pick()}(${pick()}, ${String(Math.floor(rng.float() * 99_999))});`;
    lines.push(line);
    n += line.length + 1;
  }
  return (lines.join('\n') + '\n').slice(0, Math.max(1, bytes));
}

/** Texts above this are made of 64 KB chunks drawn from a set of 16 (gzip's window is 32 KB). */
const CHUNK = 64 << 10;
const CHUNKS = 16;

export class BodyPool {
  private readonly bodies = new Map<number, PooledBody>();
  private chunks: Buffer[] | undefined;

  private text(bytes: number, seed: number): Buffer {
    if (bytes <= CHUNK) return Buffer.from(codeText(bytes, seed));
    this.chunks ??= Array.from({ length: CHUNKS }, (_, i) =>
      Buffer.from(codeText(CHUNK, (this.seed * 31 + i) >>> 0)),
    );
    const rng = new Rng(seed);
    const parts: Buffer[] = [];
    for (let n = 0; n < bytes; n += CHUNK) {
      parts.push(this.chunks[Math.floor(rng.float() * CHUNKS)] ?? Buffer.alloc(0));
    }
    return Buffer.concat(parts).subarray(0, bytes);
  }

  constructor(
    private readonly size: SizeModel,
    private readonly seed: number,
    /** gzip level (Software Heritage stores level-6-like gzip). */
    private readonly level = 6,
  ) {}

  get(cls: number, variant: number): PooledBody {
    const k = cls * 64 + variant;
    let b = this.bodies.get(k);
    if (b === undefined) {
      const bytes = classBytes(this.size, cls);
      const text = this.text(bytes, (this.seed * 7919 + k) >>> 0);
      // Level 1 above 256 KB: the pool's warm-up is seconds instead of tens of seconds, and a
      // reader's gunzip costs about the same at any level.
      const gz = gzipSync(text, { level: bytes > 256 << 10 ? 1 : this.level });
      b = {
        gz,
        etag: `"${createHash('md5').update(gz).digest('hex')}"`,
        textBytes: text.length,
      };
      this.bodies.set(k, b);
    }
    return b;
  }

  /** Makes every body the size model can draw (seconds of CPU: for benchmarks, before timing). */
  warm(): void {
    const top = sizeClass(this.size, this.size.maxBytes);
    for (let cls = 0; cls <= top; cls++) {
      for (let v = 0; v < variantsOf(this.size, cls); v++) this.get(cls, v);
    }
  }

  /** Bodies made so far and their gzip bytes. */
  stats(): { bodies: number; gzBytes: number } {
    let gzBytes = 0;
    for (const b of this.bodies.values()) gzBytes += b.gz.length;
    return { bodies: this.bodies.size, gzBytes };
  }
}
