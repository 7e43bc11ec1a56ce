import { describe, expect, it } from 'vitest';
import { checkRemoteName, checkRepoPath, parseParquetPath } from '../../lib/io/hub/hub.js';

const reason = (r: { ok: boolean; error?: { reason: string } }) => (r.ok ? 'ok' : r.error?.reason);

describe('checkRemoteName', () => {
  it('accepts the names the dataset really uses', () => {
    for (const name of [
      'C++',
      'Graphviz_(DOT)',
      'ASN.1',
      'F#',
      'Objective-C++',
      'HTML+ERB',
      'robots.txt',
      'Visual_Basic_.NET',
      '1C_Enterprise',
      'train-00000-of-00001.parquet',
      'Emacs Lisp',
    ]) {
      expect(checkRemoteName(name, 'language folder'), name).toEqual({ ok: true, value: name });
    }
  });

  it('refuses names that escape, hide or confuse, and says why', () => {
    const cases: [string, string][] = [
      ['', 'empty'],
      ['.', 'directory itself'],
      ['..', 'directory itself'],
      ['a/b', 'path separator'],
      ['/abs', 'path separator'],
      ['a\\b', 'path separator'],
      ['nul\0', 'control character'],
      ['bell\u0007', 'control character'],
      ['new\nline', 'control character'],
      ['del\u007f', 'control character'],
      ['csi\u009b', 'control character'],
      [' C', 'whitespace'],
      ['C ', 'whitespace'],
      ['C\u00a0', 'whitespace'],
    ];
    for (const [name, why] of cases) {
      const r = checkRemoteName(name, 'language folder');
      expect(reason(r), JSON.stringify(name)).toBe('invalid-input');
      if (!r.ok) {
        expect(r.error.message).toContain(JSON.stringify(name));
        expect(r.error.message).toContain(why);
      }
    }
  });
});

describe('checkRepoPath', () => {
  it('accepts relative paths of safe segments', () => {
    expect(checkRepoPath('data/C++/train-00000-of-00002.parquet', 'x').ok).toBe(true);
    expect(checkRepoPath('data/Graphviz_(DOT)', 'x').ok).toBe(true);
  });

  it('refuses absolute paths, dot segments, empty segments and backslashes, naming the path', () => {
    for (const path of [
      'data/../../x.parquet',
      'data/..',
      'data/./x.parquet',
      '/etc/x.parquet',
      'data//x.parquet',
      'data/a\\b/x.parquet',
      'data/x/',
      '',
    ]) {
      const r = checkRepoPath(path, 'the listing of hf://datasets/o/n');
      expect(reason(r), path).toBe('invalid-input');
      if (!r.ok) {
        expect(r.error.message).toContain(JSON.stringify(path));
        expect(r.error.message).toContain('the listing of hf://datasets/o/n');
      }
    }
  });
});

describe('parseParquetPath', () => {
  it('takes data/<lang>/<stem>.parquet only', () => {
    expect(parseParquetPath('data/C++/train-00001-of-00002.parquet')).toEqual({
      language: 'C++',
      stem: 'train-00001-of-00002',
    });
    expect(parseParquetPath('data/C++/sub/x.parquet')).toBeUndefined();
    expect(parseParquetPath('data/C++/README.md')).toBeUndefined();
  });
});
