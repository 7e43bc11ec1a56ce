/**
 * pack's line builder (tasks/pack/lines.ts) on batches of fetched bytes and of local files: the
 * same lines either way, unreadable files answered UNREAD (never guessed at), and a batch of files
 * cut after the read that reaches `maxBytes`.
 */
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { LineBatch, LineBatchResult, ReadFile } from '../../tasks/pack/lines.js';
import { NOT_DECODED, UNREAD, buildLines } from '../../tasks/pack/lines.js';

const blobs: Record<string, Uint8Array> = {
  '/a': gzipSync('first'),
  '/b': gzipSync('second "quoted"\n'),
  '/bad': new Uint8Array([1, 2, 3]),
  '/c': gzipSync('third'),
};
const read: ReadFile = (path) => blobs[path];
const heads = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ row: i }));

function filesBatch(paths: string[], maxBytes = 1 << 20): LineBatch {
  return {
    contentKey: '"content"',
    heads: heads(paths.length),
    encodings: paths.map(() => 'UTF-8'),
    blobs: { kind: 'files', paths, maxBytes },
  };
}

function bytesBatch(parts: Uint8Array[]): LineBatch {
  const gz = Buffer.concat(parts);
  const gzEnds = new Uint32Array(parts.length);
  parts.reduce((end, p, i) => (gzEnds[i] = end + p.byteLength), 0);
  return {
    contentKey: '"content"',
    heads: heads(parts.length),
    encodings: parts.map(() => 'UTF-8'),
    blobs: { kind: 'bytes', gz, gzEnds },
  };
}

const text = (r: LineBatchResult) => Buffer.from(r.lines).toString('utf8');

describe('buildLines', () => {
  it('builds the same lines from files as from fetched bytes', () => {
    const paths = ['/a', '/bad', '/b'];
    const fromFiles = buildLines(filesBatch(paths), read);
    const fromBytes = buildLines(bytesBatch(paths.map((p) => blobs[p] ?? new Uint8Array())));
    expect(text(fromFiles)).toBe(
      '{"row":0,"content":"first"}\n{"row":2,"content":"second \\"quoted\\"\\n"}\n',
    );
    expect(text(fromFiles)).toBe(text(fromBytes));
    expect([...fromFiles.chars]).toEqual([...fromBytes.chars]);
    expect([...fromFiles.chars][1]).toBe(NOT_DECODED);
    expect(fromFiles.failed).toEqual(fromBytes.failed);
    expect(fromFiles.failed.map((f) => [f.at, f.error.reason])).toEqual([[1, 'corrupt-gzip']]);
    expect(fromFiles.answered).toBe(3);
  });

  it('answers a file it cannot read UNREAD, whatever the encoding says', () => {
    const batch = filesBatch(['/a', '/gone', '/c']);
    batch.encodings[1] = 'no-such-encoding';
    const r = buildLines(batch, read);
    expect([...r.chars]).toEqual([28, UNREAD, 28]);
    expect([...r.bytes]).toEqual([28, 0, 28]);
    expect(r.failed).toEqual([]);
    expect(text(r)).toBe('{"row":0,"content":"first"}\n{"row":2,"content":"third"}\n');
  });

  it('stops a batch of files after the read that reaches maxBytes', () => {
    const paths = ['/a', '/gone', '/b', '/c'];
    const size = (p: string) => blobs[p]?.byteLength ?? 0;
    const r = buildLines(filesBatch(paths, size('/a') + size('/b')), read);
    expect(r.answered).toBe(3);
    expect(r.chars).toHaveLength(3);
    expect(r.chars[1]).toBe(UNREAD);
    // The rest, sent again, gives the remaining row.
    const rest = buildLines(filesBatch(paths.slice(3), 1), read);
    expect(rest.answered).toBe(1);
    expect(text(rest)).toBe('{"row":0,"content":"third"}\n');
  });

  it('refuses a batch of files without a reader', () => {
    expect(() => buildLines(filesBatch(['/a']))).toThrow(/Internal error/);
  });
});
