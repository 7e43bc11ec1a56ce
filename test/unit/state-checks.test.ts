/**
 * Shape checks of state objects: torn, foreign or mismatched objects are errors (with a reason
 * for the note), intact ones pass through unchanged.
 */
import { describe, expect, it } from 'vitest';
import {
  checkManifest,
  checkMarkerBody,
  checkPartRecord,
} from '../../lib/io/state/state-checks.js';

const sha = 'ab'.repeat(32);
const out = { store: 'bucket', key: 'packed/x.jsonl.zst', size: 3, sha256: sha };
const body = {
  schema: 1,
  task: 'pack:C/train-00000-of-00001',
  fingerprint: sha,
  fingerprintData: { v: 1 },
  outputs: [out],
  counts: { rows: 3 },
  host: 'h',
  worker: 'w',
  startedAt: '',
  finishedAt: '',
  stackflowVersion: '0.1.0',
};
const expectKey = { task: body.task, fingerprint: sha };

describe('checkMarkerBody', () => {
  it('accepts an intact marker that matches its key', () => {
    expect(checkMarkerBody(JSON.stringify(body), expectKey)).toEqual({ ok: true, value: body });
  });
  it.each([
    ['', 'empty'],
    [JSON.stringify(body).slice(0, 40), 'not valid JSON'],
    ['[]', 'not an object'],
    [JSON.stringify({ ...body, schema: 2 }), 'unknown schema'],
    [JSON.stringify({ ...body, task: 'pack:C/other' }), 'task is pack:C/other'],
    [JSON.stringify({ ...body, fingerprint: 'cd'.repeat(32) }), 'fingerprint differs from its key'],
    [JSON.stringify({ ...body, outputs: {} }), 'outputs is not a list'],
    [JSON.stringify({ ...body, outputs: [{ ...out, size: -1 }] }), 'outputs[0].size is not a size'],
    [
      JSON.stringify({ ...body, outputs: [{ ...out, sha256: 'x' }] }),
      'outputs[0].sha256 is not a sha256',
    ],
    [
      JSON.stringify({ ...body, outputs: [{ ...out, store: 'disk' }] }),
      'outputs[0].store is not work/bucket/state',
    ],
    [JSON.stringify({ ...body, counts: { rows: '3' } }), 'counts are not numbers'],
  ])('refuses %j: %s', (text, why) => {
    expect(checkMarkerBody(text, expectKey)).toEqual({ ok: false, error: why });
  });
});

describe('checkPartRecord', () => {
  const rec = { part: 2, total: 4, outputs: [out], counts: { rows: 250 } };
  it('accepts an intact record for its part', () => {
    expect(checkPartRecord(JSON.stringify(rec), 2)).toEqual({ ok: true, value: rec });
  });
  it.each([
    ['{"part":2,"tot', 2, 'not valid JSON'],
    [JSON.stringify(rec), 3, 'part is 2, its key says 3'],
    [JSON.stringify({ ...rec, total: 2 }), 2, 'total is not a part count above part'],
    [JSON.stringify({ ...rec, outputs: [] }), 2, 'no outputs'],
  ])('refuses %j as part %d: %s', (text, part, why) => {
    expect(checkPartRecord(text, part)).toEqual({ ok: false, error: why });
  });
});

describe('checkManifest', () => {
  const m = {
    language: 'C++',
    revision: 'r',
    files: [{ path: 'data/C++/a.parquet', stem: 'a', size: 1, sha256: sha }],
  };
  it('accepts an intact manifest of its language', () => {
    expect(checkManifest(JSON.stringify(m), 'C++')).toEqual({ ok: true, value: m });
  });
  it('refuses another language, a torn file list, a bad entry', () => {
    expect(checkManifest(JSON.stringify(m), 'C')).toEqual({ ok: false, error: 'language differs' });
    expect(checkManifest(JSON.stringify(m).slice(0, 50), 'C++').ok).toBe(false);
    expect(checkManifest(JSON.stringify({ ...m, files: [{ path: 'x' }] }), 'C++')).toEqual({
      ok: false,
      error: 'files[0] is not a file entry',
    });
  });
});
