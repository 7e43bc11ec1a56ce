/**
 * Bad data is recorded or refused, never a crash and never a way out:
 *   - a NULL or malformed blob_id is a skipped row in cmds and a recorded bad row in pack;
 *   - a `file://` content store or mirror never reads through a symlink out of its root;
 *   - config strings have length caps and the pipeline file a size cap (exit 2, located);
 *   - failures say what happened (not a parquet, permission denied, network unreachable),
 *     with no stack trace in the events.
 */
import { spawn } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { parquetPathLiteral, withDuckDB } from '../../lib/io/duckdb.js';
import type { CliResult } from '../helpers/rig.js';
import { BIN, collect, Rig, SAMPLE } from '../helpers/rig.js';
import { loadDefects, parquetRows, unzstd } from './verify.js';

const C = 'hf/data/C/train-00000-of-00001.parquet';

const pipeline = (extra = '', revision = 'sample-v1') => `version: 1
dataset:
  repo: bigcode/the-stack-v2
  revision: ${revision}
  source: file://hf
  languages: [C]
content:
  source: file://swh/content
${extra}tasks:
  discover:
    kind: discover
  fetch:
    kind: fetch
    needs: [discover]
  cmds:
    kind: cmds
    needs: [fetch]
    retries: 0
  pack:
    kind: pack
    needs: [fetch]
    retries: 0
    params:
      max_missing_rate: 1
`;

const failures = (r: CliResult): Record<string, unknown>[] =>
  r.events
    .filter((e) => e.type === 'task-failed')
    .map((e) => ({ task: String(e.task), ...(e.failure as Record<string, unknown>) }));

/** Rows of the sample's C parquet whose blob is fine (present, gzip ok, decodable). */
async function goodRows(rig: Rig): Promise<{ index: number; id: string }[]> {
  const d = loadDefects(SAMPLE);
  const bad = new Set([...d.missing, ...d.corrupt_gzip]);
  for (const u of d.undecodable) bad.add(u.blob_id);
  const rows = await parquetRows(join(rig.dir, C));
  return rows.map((r, index) => ({ index, id: String(r.blob_id) })).filter((r) => !bad.has(r.id));
}

let rig: Rig | undefined;
afterEach(() => {
  rig?.cleanup();
  rig = undefined;
});

describe('NULL and malformed blob_ids', () => {
  it('are skipped rows in cmds and recorded bad rows in pack, never a failed task', async () => {
    rig = new Rig({ pipeline: pipeline() });
    const path = join(rig.dir, C);
    const tmp = join(rig.dir, 'with-nulls.parquet');
    await withDuckDB(async (conn) => {
      await conn.run(
        `COPY (SELECT * EXCLUDE (file_row_number) REPLACE (
           CASE WHEN file_row_number = 1 THEN NULL
                WHEN file_row_number = 3 THEN 'not-a-sha; rm -rf /'
                ELSE blob_id END AS blob_id)
         FROM read_parquet(${parquetPathLiteral(path)}, file_row_number = true)
         ORDER BY file_row_number) TO ${parquetPathLiteral(tmp)} (FORMAT parquet)`,
      );
    });
    unlinkSync(path);
    cpSync(tmp, path);
    rmSync(tmp);
    const res = await rig.run(['run', '--json']);
    expect(failures(res)).toEqual([]);
    expect(res.code).toBe(0);
    const cmd = readFileSync(join(rig.cache, 'work/cmds/C/train-00000-of-00001.cmd.txt'), 'utf8');
    const lines = cmd.split('\n');
    expect(lines[1]).toBe('# row 1: skipped NULL blob_id');
    expect(lines[3]).toBe('# row 3: skipped malformed blob_id "not-a-sha; rm -rf /"');
    expect(lines[0]).toMatch(/^cp \S+\/[0-9a-f]{40} blobs\/[0-9a-f]{40}\.gz$/);
    const packed = join(rig.cache, 'bucket/packed/C');
    const sidecar = readdirSync(packed).find((f) => f.endsWith('.errors.jsonl')) ?? '';
    const errors = readFileSync(join(packed, sidecar), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(errors).toContainEqual({
      row: 1,
      blob_id: null,
      reason: 'bad-row',
      detail: 'blob_id is NULL',
    });
    expect(errors).toContainEqual({
      row: 3,
      blob_id: 'not-a-sha; rm -rf /',
      reason: 'bad-row',
      detail: 'blob_id is not a 40-hex sha1',
    });
    const pack = res.events.find(
      (e) => e.type === 'task-succeeded' && e.task === 'pack:C/train-00000-of-00001',
    );
    expect((pack?.counts as Record<string, number>).bad_rows).toBe(2);
  }, 60_000);
});

describe('symlinks out of a file:// root', () => {
  it('are recorded as refused rows of pack and never read; links inside the root are read', async () => {
    rig = new Rig({ pipeline: pipeline() });
    const [out, inside, loop] = await goodRows(rig);
    if (out === undefined || inside === undefined || loop === undefined) {
      throw new Error('sample too small');
    }
    const content = join(rig.dir, 'swh/content');
    const secret = join(rig.dir, 'outside.gz');
    writeFileSync(secret, gzipSync('TOP SECRET: the contents of a file outside the store'));
    unlinkSync(join(content, out.id));
    symlinkSync(secret, join(content, out.id));
    // A link whose target stays inside the root is an ordinary object.
    mkdirSync(join(content, 'real'));
    cpSync(join(content, inside.id), join(content, 'real', inside.id));
    unlinkSync(join(content, inside.id));
    symlinkSync(join('real', inside.id), join(content, inside.id));
    // A link to itself: nothing to read, a refused row rather than a crash.
    unlinkSync(join(content, loop.id));
    symlinkSync(loop.id, join(content, loop.id));
    const res = await rig.run(['run', '--json']);
    expect(failures(res)).toEqual([]);
    expect(res.code).toBe(0);
    const packed = join(rig.cache, 'bucket/packed/C');
    const files = readdirSync(packed);
    const text = (
      await Promise.all(files.filter((f) => f.endsWith('.zst')).map((f) => unzstd(join(packed, f))))
    ).join('');
    expect(text).not.toContain('TOP SECRET');
    const ids = text
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { blob_id: string }).blob_id);
    expect(ids).toContain(inside.id);
    expect(ids).not.toContain(out.id);
    const sidecar = files.find((f) => f.endsWith('.errors.jsonl')) ?? '';
    const refused = readFileSync(join(packed, sidecar), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.reason === 'refused');
    expect(refused).toEqual(
      [
        {
          row: out.index,
          blob_id: out.id,
          reason: 'refused',
          detail: `file://${content}/${out.id}: refusing to read ${content}/${out.id}: a symbolic link leads out of the store (to ${secret})`,
        },
        {
          row: loop.index,
          blob_id: loop.id,
          reason: 'refused',
          detail: `file://${content}/${loop.id}: refusing to read ${content}/${loop.id}: a loop of symbolic links`,
        },
      ].sort((a, b) => a.row - b.row),
    );
  }, 60_000);

  it('refuse a mirror folder or parquet linked to outside the mirror', async () => {
    rig = new Rig({ pipeline: pipeline().replace('languages: [C]', 'languages: [C, Leak]') });
    const elsewhere = join(rig.dir, 'elsewhere');
    mkdirSync(elsewhere);
    cpSync(join(rig.dir, C), join(elsewhere, 'train-00000-of-00001.parquet'));
    symlinkSync(elsewhere, join(rig.dir, 'hf/data/Leak'));
    unlinkSync(join(rig.dir, C));
    symlinkSync(join(elsewhere, 'train-00000-of-00001.parquet'), join(rig.dir, C));
    const res = await rig.run(['run', 'discover', '--json']);
    expect(res.code).toBe(1);
    // The two discovers run at once: sorted, not in event order.
    const f = failures(res).sort((a, b) => String(a.task).localeCompare(String(b.task)));
    expect(f.map((x) => [x.task, x.reason])).toEqual([
      ['discover:C', 'unsafe-path'],
      ['discover:Leak', 'unsafe-path'],
    ]);
    expect(String(f[0]?.message)).toContain(
      `file://${join(rig.dir, 'hf')}/data/C/train-00000-of-00001.parquet is a symbolic link out of the mirror`,
    );
  }, 60_000);
});

describe('length caps', () => {
  it('refuses a huge pipeline file before parsing it', async () => {
    rig = new Rig({ pipeline: pipeline() + `# ${'x'.repeat(2 << 20)}\n` });
    const started = Date.now();
    const res = await rig.run(['run', '--dry-run']);
    expect(res.code).toBe(2);
    expect(res.stderr).toBe(
      '❌ pipeline file pipeline.yaml is 2.0 MiB; a pipeline file is at most 1 MiB (is -f pointing at the right file?)\n',
    );
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('refuses an over-long revision at its location, showing the line cut', async () => {
    rig = new Rig({ pipeline: pipeline('', 'a'.repeat(300_000)) });
    const res = await rig.run(['run', '--dry-run']);
    expect(res.code).toBe(2);
    const [head, line, squiggle] = res.stderr.split('\n');
    expect(head).toBe(
      '❌ pipeline.yaml:4:13 dataset.revision is 300000 characters long; at most 256 are allowed',
    );
    expect(line).toBe(`      revision: ${'a'.repeat(120)}…`);
    expect(squiggle).toBe(`${' '.repeat(16)}${'~'.repeat(120)}`);
  });

  it('caps a shell command and its lists', async () => {
    rig = new Rig({
      pipeline: `${pipeline()}  big:
    kind: shell
    params:
      command: "echo ${'y'.repeat(70_000)}"
      outputs: [${Array.from({ length: 1001 }, (_, i) => `o${String(i)}`).join(', ')}]
`,
    });
    const res = await rig.run(['run', '--dry-run']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(
      'tasks.big.params.command is 70005 characters long; at most 65536 are allowed',
    );
    expect(res.stderr).toContain(
      'tasks.big.params.outputs has 1001 items; at most 1000 are allowed',
    );
  });
});

describe('failures say what happened', () => {
  it('a file that is not a parquet: not-a-parquet, exit 1, no stack in the events', async () => {
    rig = new Rig({ pipeline: pipeline() });
    writeFileSync(join(rig.dir, C), Buffer.alloc(5000, 7));
    const res = await rig.run(['run', '--json']);
    expect(res.code).toBe(1);
    const f = failures(res).sort((a, b) => String(a.task).localeCompare(String(b.task)));
    expect(f.map((x) => [x.task, x.reason])).toEqual([
      ['cmds:C/train-00000-of-00001', 'not-a-parquet'],
      ['pack:C/train-00000-of-00001', 'not-a-parquet'],
    ]);
    expect(String(f[0]?.message)).toMatch(/^not a readable parquet file: Invalid Input Error: /);
    expect(res.stdout).not.toContain('"stack"');
    expect(res.stdout).not.toMatch(/\n\s+at /);
  }, 60_000);

  it('permission denied on the content store: permission-denied, exit 1', async () => {
    rig = new Rig({ pipeline: pipeline() });
    const r = rig;
    // Root reads anything: the CLI then runs as nobody, on a tree nobody may write.
    const asRoot = process.getuid?.() === 0;
    chmodAll(r.dir, 0o777);
    chmodSync(join(r.dir, 'swh/content'), asRoot ? 0o700 : 0o000);
    try {
      const child = spawn(process.execPath, [BIN, 'run', '--json'], {
        cwd: r.dir,
        env: { ...process.env, FORCE_COLOR: '0', HOME: r.dir },
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
      });
      const res = await collect(child);
      expect(res.code).toBe(1);
      const f = failures(res).find((x) => x.task === 'pack:C/train-00000-of-00001');
      expect(f?.reason).toBe('permission-denied');
      expect(String(f?.message)).toContain('permission denied (EACCES)');
    } finally {
      chmodSync(join(r.dir, 'swh/content'), 0o755);
    }
  }, 60_000);

  it('an unreachable S3 endpoint: network-unreachable, exit 1, not a config error', async () => {
    rig = new Rig({
      pipeline: pipeline(
        'bucket: s3://mybucket/x\ns3:\n  mybucket:\n    endpoint: http://nonexistent.invalid\n',
      ),
    });
    rig.env = { AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' };
    const res = await rig.run(['run', '--json']);
    expect(res.stderr).toMatch(
      /❌ list s3:\/\/mybucket\/x\/\S*: host not found \(ENOTFOUND\); check s3\.mybucket\.endpoint\n$/,
    );
    expect(res.code).toBe(1);
  }, 120_000);
});

/** chmod of a tree, directories included. */
function chmodAll(path: string, mode: number): void {
  chmodSync(path, mode);
  for (const d of readdirSync(path, { withFileTypes: true })) {
    if (d.isDirectory()) chmodAll(join(path, d.name), mode);
    else if (d.isFile()) chmodSync(join(path, d.name), mode);
  }
}
