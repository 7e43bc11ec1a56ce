/**
 * lib/io/s5cmd.ts: classifying s5cmd's `--json` lines (shapes from peak/s5cmd log/message.go and
 * its e2e tests), judging a batch, and writing run files that s5cmd's line splitter reads back.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeShell } from '../../lib/io/process/shell.js';
import {
  addLine,
  checkS5cmd,
  copyLine,
  emptyReport,
  globalArgs,
  judgeBatch,
  parseS5cmdLine,
  quoteRunArg,
  writeRunFile,
} from '../../lib/io/s5cmd.js';
import { shellSplit } from '../tools/s5cmd/shellquote.js';

const ID = '0039d5ad29b1faaa7270f924780399025d01e010';
const SRC = `s3://softwareheritage/content/${ID}`;
const DST = `s5cmd-part-0/${ID}.gz`;
const errorLine = (error: string, command = `cp ${SRC} ${DST}`) =>
  JSON.stringify({ operation: 'cp', command, error });

describe('parseS5cmdLine', () => {
  it('reads a download that worked', () => {
    const line = `{"operation":"cp","success":true,"source":"${SRC}","destination":"${DST}","object":{"type":"file","size":1364}}`;
    expect(parseS5cmdLine(line)).toEqual({
      kind: 'copied',
      source: SRC,
      destination: DST,
      size: 1364,
    });
    // storage.Object.size is omitempty: an empty blob has no size.
    const empty = `{"operation":"cp","success":true,"source":"${SRC}","destination":"${DST}","object":{"type":"file"}}`;
    expect(parseS5cmdLine(empty)).toMatchObject({ kind: 'copied', size: 0 });
  });

  it('reads NoSuchKey as missing, with or without a message, and NotFound', () => {
    for (const error of [
      'NoSuchKey: The specified key does not exist. status code: 404, request id: 7Q5Z, host id: AbC=',
      'NoSuchKey: status code: 404, request id: , host id:',
      'NotFound: Not Found status code: 404, request id: 1, host id: 2',
    ]) {
      expect(parseS5cmdLine(errorLine(error))).toEqual({ kind: 'missing', source: SRC, error });
    }
  });

  it('does not take a missing bucket (also a 404) for a missing blob', () => {
    const error =
      'NoSuchBucket: The specified bucket does not exist status code: 404, request id: , host id:';
    expect(parseS5cmdLine(errorLine(error))).toEqual({
      kind: 'failed',
      source: SRC,
      code: 'NoSuchBucket',
      status: 404,
      error: `"cp ${SRC} ${DST}": ${error}`,
    });
  });

  it('reads 403 and 503 SlowDown as failures, with code and status', () => {
    expect(
      parseS5cmdLine(
        errorLine('AccessDenied: Access Denied status code: 403, request id: R, host id: H'),
      ),
    ).toMatchObject({ kind: 'failed', code: 'AccessDenied', status: 403, source: SRC });
    expect(
      parseS5cmdLine(
        errorLine(
          'SlowDown: Please reduce your request rate. status code: 503, request id: R, host id: H',
        ),
      ),
    ).toMatchObject({ kind: 'failed', code: 'SlowDown', status: 503 });
  });

  it('reads network errors and errors without a command as failures', () => {
    expect(
      parseS5cmdLine(
        errorLine(
          'RequestError: send request failed caused by: Get "https://x/y": dial tcp: connection refused',
        ),
      ),
    ).toMatchObject({ kind: 'failed', code: 'RequestError', status: undefined, source: SRC });
    expect(parseS5cmdLine('{"error":"expected only 1 file"}')).toEqual({
      kind: 'failed',
      source: undefined,
      code: undefined,
      status: undefined,
      error: 'expected only 1 file',
    });
  });

  it('keeps garbage apart, and skips blank lines', () => {
    expect(parseS5cmdLine('')).toBeUndefined();
    expect(parseS5cmdLine('   ')).toBeUndefined();
    for (const text of [
      'ERROR too many open files',
      '[1,2]',
      'null',
      '{"key":"s3://b/k","size":3}', // an ls line
      '{"operation":"cp","success":true}', // a success without source
      '{"operation":"cp","comm',
    ]) {
      expect(parseS5cmdLine(text)).toEqual({ kind: 'unrecognized', text });
    }
  });
});

describe('judgeBatch', () => {
  const sources = [SRC, 's3://softwareheritage/content/b', 's3://softwareheritage/content/c'];
  const report = (lines: string[]) => {
    const r = emptyReport();
    for (const l of lines) addLine(r, l);
    return r;
  };
  const copied = (s: string) =>
    JSON.stringify({ operation: 'cp', success: true, source: s, destination: 'd', object: {} });
  const failed = (s: string, e: string) =>
    JSON.stringify({ operation: 'cp', command: `cp ${s} d`, error: e });
  const nsk =
    'NoSuchKey: The specified key does not exist. status code: 404, request id: , host id:';

  it('accepts exit code 1 when the only failures are missing keys', () => {
    const r = report([copied(SRC), failed(sources[1] ?? '', nsk), copied(sources[2] ?? '')]);
    const j = judgeBatch(1, r, sources);
    expect(j).toEqual({ ok: true, value: new Set([sources[1]]) });
  });

  it('accepts a clean run', () => {
    expect(judgeBatch(0, report(sources.map(copied)), sources)).toEqual({
      ok: true,
      value: new Set(),
    });
  });

  it('fails as transient on any other error, quoting the first three', () => {
    const lines = [
      ...sources.map((s) =>
        failed(s, 'SlowDown: Please reduce your request rate. status code: 503'),
      ),
      failed(SRC, 'AccessDenied: Access Denied status code: 403'),
    ];
    const j = judgeBatch(1, report(lines), sources);
    expect(j.ok).toBe(false);
    if (j.ok) return;
    expect(j.error.reason).toBe('transient');
    expect(j.error.message).toBe(
      [
        's5cmd: 4 download(s) failed (not a missing key); first:',
        `  "cp ${SRC} d": SlowDown: Please reduce your request rate. status code: 503`,
        `  "cp ${sources[1] ?? ''} d": SlowDown: Please reduce your request rate. status code: 503`,
        `  "cp ${sources[2] ?? ''} d": SlowDown: Please reduce your request rate. status code: 503`,
      ].join('\n'),
    );
  });

  it('fails when a download is not accounted for (a crash, "too many open files")', () => {
    const r = report([copied(SRC), 'ERROR too many open files']);
    const j = judgeBatch(1, r, sources);
    expect(j).toEqual({
      ok: false,
      error: {
        reason: 'transient',
        message: `s5cmd exited with code 1 without reporting 2 download(s) (first: ${sources[1] ?? ''}); its other output:\n  ERROR too many open files`,
      },
    });
  });

  it('fails on an unexpected exit code even when every line is fine', () => {
    expect(judgeBatch(2, report(sources.map(copied)), sources)).toMatchObject({
      ok: false,
      error: { reason: 'transient', message: 's5cmd exited with code 2' },
    });
    expect(judgeBatch(1, report(sources.map(copied)), sources).ok).toBe(false);
    expect(judgeBatch(null, report(sources.map(copied)), sources).ok).toBe(false);
  });
});

describe('run files', () => {
  const dir = mkdtempSync(join(tmpdir(), 's5cmd-unit-'));
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('quotes only what needs it, so that go-shellquote reads the same words back', () => {
    expect(quoteRunArg(SRC)).toBe(SRC);
    expect(quoteRunArg(DST)).toBe(DST);
    for (const s of [
      's3://b/with space/k',
      "s3://b/it's/k",
      's3://b/"dq"/k',
      's3://b/back\\slash/k',
      's3://b/$HOME/`x`/k',
      's3://b/tab\there/k',
      "''",
      '',
    ]) {
      expect(shellSplit(`cp ${quoteRunArg(s)} ${quoteRunArg(DST)}`)).toEqual(['cp', s, DST]);
    }
  });

  it('writes one cp line per copy, with --raw only for glob characters', () => {
    expect(copyLine({ source: SRC, dest: DST })).toEqual({ ok: true, value: `cp ${SRC} ${DST}\n` });
    expect(copyLine({ source: 's3://b/a*b/k', dest: DST })).toEqual({
      ok: true,
      value: `cp --raw 's3://b/a*b/k' ${DST}\n`,
    });
  });

  it('refuses paths a run file cannot hold', () => {
    for (const [source, why] of [
      ['s3://b/x #y/k', 'contains " #", which s5cmd run files treat as a comment'],
      ['s3://b/x\ny/k', 'contains a line break or NUL'],
      ['s3://b/x://y/k', 'contains "://" more than once'],
    ] as const) {
      expect(copyLine({ source, dest: DST })).toEqual({
        ok: false,
        error: {
          reason: 'invalid-input',
          message: `s5cmd source ${JSON.stringify(source)} ${why}`,
        },
      });
    }
  });

  it('streams a run file', async () => {
    const path = join(dir, 'cmd.txt');
    const copies = ['a', 'b b'].map((n) => ({ source: `s3://b/${n}`, dest: `d/${n}.gz` }));
    expect(await writeRunFile(path, copies)).toEqual({ ok: true, value: 2 });
    expect(readFileSync(path, 'utf8')).toBe("cp s3://b/a d/a.gz\ncp 's3://b/b b' 'd/b b.gz'\n");
  });

  it('puts flags before run, and never credentials', () => {
    expect(
      globalArgs({ workers: 256, retryCount: 10, unsigned: true, endpoint: 'http://127.0.0.1:9' }),
    ).toEqual([
      '--json',
      '--numworkers',
      '256',
      '--retry-count',
      '10',
      '--no-sign-request',
      '--endpoint-url',
      'http://127.0.0.1:9',
    ]);
    expect(globalArgs({ workers: 8, retryCount: 0, unsigned: false, endpoint: undefined })).toEqual(
      ['--json', '--numworkers', '8', '--retry-count', '0'],
    );
  });
});

describe('checkS5cmd', () => {
  const signal = new AbortController().signal;
  const $ = makeShell({ cwd: tmpdir(), signal });

  it('says plainly when s5cmd is not installed, and how to get it', async () => {
    const r = await checkS5cmd($, 's5cmd-not-installed-anywhere');
    expect(r).toEqual({
      ok: false,
      error: {
        reason: 'invalid-input',
        message:
          'fetcher: s5cmd, but s5cmd is not installed or not on PATH ("s5cmd-not-installed-anywhere" not found). Install it from https://github.com/peak/s5cmd/releases (a single static binary) and put it on PATH, set the pack param s5cmd_path, or use the default fetcher: sdk, which needs nothing outside npm.',
      },
    });
  });

  it('returns the version of an installed s5cmd (the stand-in)', async () => {
    const bin = join(import.meta.dirname, '../tools/s5cmd/s5cmd');
    expect(await checkS5cmd($, bin)).toEqual({ ok: true, value: 'v2.2.2-stand-in' });
  });
});
