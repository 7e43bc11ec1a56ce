/**
 * pack with `fetcher: s5cmd`, against the loopback S3 server holding the sample's contents.
 *
 * s5cmd itself cannot be installed here or in CI, so PATH starts with test/tools/s5cmd, whose
 * `s5cmd` is a stand-in speaking s5cmd's CLI and `--json` output (see its header).
 *
 *   - the fetcher on one part: bytes equal the sample's files, 404s come back as missing, the
 *     batch dir (blobs, logs, s5cmd temp files) is gone after close and after an abort
 *     mid-download, and a failure that is not a 404 fails the part as transient, quoting s5cmd;
 *   - the CLI: parts byte-identical to the sdk fetcher's (with 503s and resets injected on the
 *     S3 side), missing blobs in `.errors.jsonl`, nothing left in the scratch area, and a clear
 *     error when s5cmd is not installed.
 */
import { spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withDuckDB } from '../../lib/io/duckdb.js';
import { FsStore } from '../../lib/io/stores/fs-store.js';
import { makeShell } from '../../lib/io/process/shell.js';
import type { Failure, Result } from '../../lib/errors.js';
import { makeFetcher } from '../../tasks/pack/fetchers.js';
import type { FetcherContext } from '../../tasks/pack/fetchers.js';
import { BIN, Rig, SAMPLE, collect } from '../helpers/rig.js';
import type { CliResult } from '../helpers/rig.js';
import { startS3Server } from '../servers/s3/harness.js';
import type { S3TestServer } from '../servers/s3/harness.js';
import { loadDefects, parquetRows } from './verify.js';

const STAND_IN_DIR = join(import.meta.dirname, '../tools/s5cmd');
const CONTENT = join(SAMPLE, 'swh/content');
const PARQUET = join(SAMPLE, 'hf/data/C/train-00000-of-00001.parquet');
const defects = loadDefects(SAMPLE);
const missing = new Set(defects.missing);

/** PATH with the stand-in first. */
const withStandIn = `${STAND_IN_DIR}${delimiter}${process.env.PATH ?? ''}`;

describe('fetcher: s5cmd', () => {
  let s3: S3TestServer;
  beforeAll(async () => {
    // Git may not keep the mode bit of a file written by hand; the stand-in must be executable.
    chmodSync(join(STAND_IN_DIR, 's5cmd'), 0o755);
    s3 = await startS3Server({ buckets: ['swh'] });
    await s3.upload('swh', 'content/', CONTENT);
  }, 120_000);
  afterAll(async () => {
    await s3.stop();
  });

  describe('one part, through the fetcher', () => {
    const scratch = mkdtempSync(join(tmpdir(), 'pack-s5cmd-'));
    afterAll(() => {
      rmSync(scratch, { recursive: true, force: true });
    });
    const ctx = (contentSource: string, signal = new AbortController().signal): FetcherContext => ({
      $: makeShell({ cwd: scratch, env: { ...s3.env, PATH: withStandIn }, signal }),
      scratch,
      signal,
      content: new FsStore(CONTENT),
      pipeline: {
        dir: scratch,
        contentSource,
        // A region set for the bucket is passed to s5cmd as AWS_REGION.
        s3: {
          swh: { endpoint: s3.endpoint, region: 'us-east-1' },
          'no-such-bucket': { endpoint: s3.endpoint },
        },
      },
    });
    const opts = { fetcher: 's5cmd', s5cmdPath: 's5cmd', s5cmdWorkers: 16 } as const;

    it('downloads a part, serves it from disk in any order, and leaves nothing behind', async () => {
      const rows = await parquetRows(PARQUET);
      const ids = rows.slice(0, 300).map((r) => String(r.blob_id));
      expect(ids.some((id) => missing.has(id))).toBe(true);
      const f = makeFetcher(opts, ctx('s3://swh/content'));
      if (!f.ok) throw new Error(f.error.message);
      expect(await f.value.ready()).toEqual({ ok: true, value: undefined });
      // A temp file of an earlier, killed attempt of this part.
      const batch = join(scratch, 's5cmd-part-3');
      mkdirSync(batch, { recursive: true });
      writeFileSync(join(batch, `${ids[0] ?? ''}.gz2851923750`), 'partial');
      await withDuckDB(async (conn) => {
        const opened = await f.value.open({ conn, parquet: PARQUET, part: 3, from: 0, to: 300 });
        if (!opened.ok) throw new Error(opened.error.message);
        try {
          const names = readdirSync(batch);
          expect(names.filter((n) => /\.gz\d+$/.test(n))).toEqual([]);
          for (const id of ids) {
            const got = await opened.value.fetch(id);
            if (missing.has(id)) {
              expect(got).toMatchObject({ ok: false, error: { reason: 'not-found' } });
            } else {
              expect(got.ok).toBe(true);
              if (got.ok) expect(Buffer.from(got.value)).toEqual(readFileSync(join(CONTENT, id)));
            }
          }
          // Each blob's file goes after its last row: only the run file and logs are left.
          expect(readdirSync(batch).sort()).toEqual(['cmd.txt', 's5cmd.stderr', 's5cmd.stdout']);
        } finally {
          await opened.value.close();
        }
      });
      expect(existsSync(batch)).toBe(false);
    });

    it('fails the part as transient on errors that are not a missing key, quoting s5cmd', async () => {
      const f = makeFetcher(opts, ctx('s3://no-such-bucket/content'));
      if (!f.ok) throw new Error(f.error.message);
      let r: Result<unknown> | undefined;
      await withDuckDB(async (conn) => {
        r = await f.value.open({ conn, parquet: PARQUET, part: 0, from: 0, to: 20 });
      });
      expect(r).toMatchObject({ ok: false, error: { reason: 'transient' } });
      const message = (r as { error: Failure } | undefined)?.error.message ?? '';
      expect(message).toMatch(
        /^s5cmd: 20 download\(s\) failed \(not a missing key\); first:\n {2}"cp s3:\/\/no-such-bucket\/content\/[0-9a-f]{40} s5cmd-part-0\/[0-9a-f]{40}\.gz": NoSuchBucket: /,
      );
      expect(message.split('\n')).toHaveLength(4);
      expect(readdirSync(scratch)).toEqual([]);
    });

    it("stops on abort mid-download and removes s5cmd's temp files", async () => {
      // Slow GETs, so that the abort lands while downloads sit in s5cmd's temp files.
      await s3.setFaults({
        rate: 1,
        kinds: ['latency'],
        latencyMs: 3000,
        methods: ['GET'],
        bucket: 'swh',
      });
      try {
        const ac = new AbortController();
        const f = makeFetcher(opts, ctx('s3://swh/content', ac.signal));
        if (!f.ok) throw new Error(f.error.message);
        const batch = join(scratch, 's5cmd-part-1');
        let tempFiles: string[] = [];
        let r: Result<unknown> | undefined;
        await withDuckDB(async (conn) => {
          const p = f.value.open({ conn, parquet: PARQUET, part: 1, from: 0, to: 850 });
          for (let i = 0; i < 200 && tempFiles.length === 0; i++) {
            await sleep(50);
            tempFiles = existsSync(batch)
              ? readdirSync(batch).filter((n) => /\.gz\d+$/.test(n))
              : [];
          }
          ac.abort();
          r = await p;
        });
        expect(tempFiles.length).toBeGreaterThan(0);
        expect(r).toMatchObject({ ok: false, error: { reason: 'aborted' } });
        expect(readdirSync(scratch)).toEqual([]);
      } finally {
        await s3.setFaults(null);
      }
    });

    it('refuses a content source that is not s3://', () => {
      expect(makeFetcher(opts, ctx('file:///data/swh/content'))).toEqual({
        ok: false,
        error: {
          reason: 'invalid-input',
          message:
            'fetcher: s5cmd downloads from S3, but the content source is file:///data/swh/content; use an s3:// content source, or the default fetcher: sdk (which reads any content source)',
        },
      });
    });
  });

  describe('the CLI on the sample', () => {
    const pipelineYaml = (content: string, fetcher: 'sdk' | 's5cmd') => `version: 1
dataset:
  repo: bigcode/the-stack-v2
  revision: sample-v1
  source: file://hf
  languages: all
content:
  source: ${content}
s3:
  swh: { endpoint: '${s3.endpoint}' }
tasks:
  discover:
    kind: discover
  fetch:
    kind: fetch
    needs: [discover]
  pack:
    kind: pack
    needs: [fetch]
    params:
      rows_per_part: 250
      concurrency: 32
      fetcher: ${fetcher}
      s5cmd_workers: 32
`;
    const run = (rig: Rig, path: string): Promise<CliResult> =>
      collect(
        spawn(process.execPath, [BIN, 'run', '--cache-dir', 'cache'], {
          cwd: rig.dir,
          env: { ...process.env, ...s3.env, PATH: path, FORCE_COLOR: '0' },
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      );
    const sdk = new Rig();
    const s5 = new Rig();
    let base: CliResult;
    let viaS5cmd: CliResult;
    let faults: Record<string, number> = {};
    beforeAll(async () => {
      sdk.writePipeline(pipelineYaml('file://swh/content', 'sdk'));
      s5.writePipeline(pipelineYaml('s3://swh/content', 's5cmd'));
      // Throttling and broken connections on the s5cmd side: retried, never taken for a 404.
      await s3.resetStats();
      await s3.setFaults({
        rate: 0.05,
        kinds: ['503', 'reset', 'reset-mid-body'],
        seed: 7,
        methods: ['GET'],
        bucket: 'swh',
      });
      try {
        [base, viaS5cmd] = await Promise.all([run(sdk, withStandIn), run(s5, withStandIn)]);
      } finally {
        await s3.setFaults(null);
      }
      faults = (await s3.stats()).faults;
    }, 300_000);
    afterAll(() => {
      sdk.cleanup();
      s5.cleanup();
    });

    it('packs every parquet, with parts byte-identical to the sdk fetcher', () => {
      expect(base.code, base.stderr).toBe(0);
      expect(viaS5cmd.code, viaS5cmd.stderr).toBe(0);
      const a = sdk.outputs(['bucket']);
      const b = s5.outputs(['bucket']);
      expect([...a.keys()].filter((k) => k.endsWith('.jsonl.zst')).length).toBeGreaterThan(10);
      expect(b).toEqual(a);
      // The faults were there, and s5cmd's retries absorbed them: no task was rerun.
      expect(Object.values(faults).reduce((x, y) => x + y, 0)).toBeGreaterThan(10);
      expect(viaS5cmd.events.filter((e) => e.type === 'retry' && e.task !== undefined)).toEqual([]);
    });

    it('records missing blobs in the parts’ .errors.jsonl', () => {
      const recorded: string[] = [];
      const root = join(s5.cache, 'bucket/packed');
      for (const lang of readdirSync(root)) {
        for (const name of readdirSync(join(root, lang)).filter((n) =>
          n.endsWith('.errors.jsonl'),
        )) {
          for (const l of readFileSync(join(root, lang, name), 'utf8')
            .split('\n')
            .filter(Boolean)) {
            const e = JSON.parse(l) as { blob_id: string; reason: string; detail: string };
            if (e.reason === 'missing') recorded.push(e.blob_id);
          }
        }
      }
      expect(recorded.sort()).toEqual([...missing].sort());
    });

    it('leaves no batch dirs or s5cmd temp files in the scratch area', () => {
      const tmp = join(s5.cache, 'tmp');
      expect(existsSync(tmp) ? readdirSync(tmp) : []).toEqual([]);
    });

    it('says plainly when s5cmd is not installed, without retrying', async () => {
      const rig = new Rig();
      try {
        rig.writePipeline(pipelineYaml('s3://swh/content', 's5cmd'));
        // Only the system dirs: the shell and coreutils, no s5cmd (it is in no Debian package).
        const path = ['/usr/bin', '/bin'].join(delimiter);
        expect(['/usr/bin/s5cmd', '/bin/s5cmd'].some((p) => existsSync(p))).toBe(false);
        const r = await run(rig, path);
        expect(r.code).not.toBe(0);
        const failed = r.events.filter((e) => e.type === 'task-failed');
        expect(failed.length).toBeGreaterThan(0);
        for (const e of failed) {
          expect(e.failure).toEqual({
            reason: 'invalid-input',
            message:
              'fetcher: s5cmd, but s5cmd is not installed or not on PATH ("s5cmd" not found). Install it from https://github.com/peak/s5cmd/releases (a single static binary) and put it on PATH, set the pack param s5cmd_path, or use the default fetcher: sdk, which needs nothing outside npm.',
          });
        }
        expect(r.events.filter((e) => e.type === 'retry' && e.task !== undefined)).toEqual([]);
      } finally {
        rig.cleanup();
      }
    });
  });
});
