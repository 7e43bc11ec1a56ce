/**
 * Content blobs for bench/fetch.ts, shaped like Software Heritage's: source-code-like text of a
 * log-normal size (median ~4 KB, long tail capped at 256 KiB), gzip-compressed, keyed by the
 * 40-hex sha1 of the uncompressed bytes. Deterministic for a seed.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export interface Blob {
  /** 40-hex sha1 of the uncompressed content. */
  id: string;
  gz: Buffer;
  rawBytes: number;
}

/** mulberry32: a small seeded PRNG, enough for test data. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEYWORDS = [
  'const',
  'let',
  'return',
  'if',
  'else',
  'for',
  'while',
  'function',
  'import',
  'from',
  'class',
  'def',
  'self',
  'int',
  'void',
  'static',
  'public',
  'new',
  'null',
  'true',
  'false',
];
const PUNCT = ['(', ')', '{', '}', ';', ',', '=', '==', '+', '-', '.', '[', ']', ':', '->'];
const SYLLABLES = ['get', 'set', 'data', 'item', 'buf', 'node', 'list', 'idx', 'val', 'key'];

/** `count` blobs; about `count × 4 KB` of text is generated and gzipped. */
export function makeBlobs(count: number, seed = 1): Blob[] {
  const rand = prng(seed);
  // Identifiers of this "repository": reused across files, as in real code.
  const idents = Array.from({ length: 400 }, () => {
    const n = 1 + Math.floor(rand() * 3);
    let s = '';
    for (let i = 0; i < n; i++) s += SYLLABLES[Math.floor(rand() * SYLLABLES.length)] ?? 'x';
    return rand() < 0.3 ? `${s}${String(Math.floor(rand() * 100))}` : s;
  });
  const token = (): string => {
    const r = rand();
    const pick = (xs: readonly string[]) => xs[Math.floor(rand() * xs.length)] ?? '';
    if (r < 0.2) return pick(KEYWORDS);
    if (r < 0.5) return pick(PUNCT);
    if (r < 0.55) return `"${pick(idents)} ${pick(idents)}"`;
    if (r < 0.6) return String(Math.floor(rand() * 1000));
    return pick(idents);
  };
  const out: Blob[] = [];
  for (let b = 0; b < count; b++) {
    // Log-normal: median 4096 bytes, sigma 1.1 (Box-Muller).
    const z = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    const size = Math.min(256 * 1024, Math.max(64, Math.round(4096 * Math.exp(1.1 * z))));
    const lines: string[] = [];
    let len = 0;
    let depth = 0;
    while (len < size) {
      const words = 2 + Math.floor(rand() * 10);
      let line = '    '.repeat(depth);
      for (let w = 0; w < words; w++) line += (w === 0 ? '' : ' ') + token();
      const step = rand();
      if (step < 0.15) depth = Math.min(6, depth + 1);
      else if (step < 0.28) depth = Math.max(0, depth - 1);
      lines.push(line);
      len += line.length + 1;
    }
    const raw = Buffer.from(`// file ${String(b)}\n${lines.join('\n')}\n`, 'utf8');
    out.push({
      id: createHash('sha1').update(raw).digest('hex'),
      gz: gzipSync(raw, { level: 6 }),
      rawBytes: raw.length,
    });
  }
  return out;
}

/** The same items in a seeded random order (row order in a parquet is unrelated to blob ids). */
export function shuffled<T>(items: readonly T[], seed = 2): T[] {
  const rand = prng(seed);
  const a = [...items];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = a[i] as T;
    a[i] = a[j] as T;
    a[j] = t;
  }
  return a;
}
