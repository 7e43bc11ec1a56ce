/**
 * A user's data is never code: language folders named like shell code run the whole pipeline
 * (discover, fetch, cmds, pack and a shell stage) and every stage sees the literal name; nothing
 * in a name is executed. Names that are merely unusual (`C++`, `Graphviz_(DOT)`, `ASN.1`, spaces,
 * unicode, `Ren'Py`) are valid data and run end to end.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliResult } from '../helpers/rig.js';
import { Rig, walk } from '../helpers/rig.js';

const HOSTILE = ['x;cd $HOME;id>pwned;#', '$(touch pwned)', '`touch pwned`', 'a"b', "Ren'Py"];
const UNUSUAL = ['C++', 'Graphviz_(DOT)', 'ASN.1', 'Visual Basic .NET', 'Ünïcödé 日本語'];
const NAMES = [...HOSTILE, ...UNUSUAL];

const PIPELINE = `version: 1
dataset:
  repo: bigcode/the-stack-v2
  revision: sample-v1
  source: file://hf
  languages: all
content:
  source: file://swh/content
tasks:
  discover:
    kind: discover
  fetch:
    kind: fetch
    needs: [discover]
  cmds:
    kind: cmds
    needs: [fetch]
    params:
      source: s3://softwareheritage/content
      dest: 'blobs/{language}/{shard}/{blob_id}.gz'
  pack:
    kind: pack
    needs: [fetch]
  hello:
    kind: shell
    foreach: language
    needs: [pack]
    params:
      command: |
        printf '%s\\n' {language} "{language}" '{language}' "<{language}>" > {outputs}
        printf '%s\\n' {inputs} | grep -c '[.]parquet$' >> {outputs}
        printf '%s\\n' "$STACKFLOW_LANGUAGE" >> {outputs}
      inputs: ['hf/data/{language}/*.parquet']
      outputs: ['hello/{language}.txt']
`;

describe('hostile and unusual language names', () => {
  const rig = new Rig({ pipeline: PIPELINE });
  const home = join(rig.dir, 'home');
  let res: CliResult;
  beforeAll(async () => {
    // One small language of the sample, copied under every name (the folder name is the data).
    const data = join(rig.dir, 'hf/data');
    const c = join(data, 'C');
    for (const n of readdirSync(data)) if (n !== 'C') rmSync(join(data, n), { recursive: true });
    for (const n of NAMES) cpSync(c, join(data, n), { recursive: true });
    rmSync(c, { recursive: true });
    mkdirSync(home);
    rig.env = { HOME: home };
    res = await rig.run(['run', '--json', '-j', '4']);
  }, 120_000);
  afterAll(() => {
    rig.cleanup();
  });

  it('runs every stage of every language', () => {
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const done = res.events.filter((e) => e.type === 'task-succeeded').map((e) => String(e.task));
    for (const n of NAMES) {
      for (const stage of ['discover', 'hello']) expect(done).toContain(`${stage}:${n}`);
      for (const stage of ['fetch', 'cmds', 'pack'])
        expect(done).toContain(`${stage}:${n}/train-00000-of-00001`);
    }
  });

  it('executes nothing a name holds', () => {
    expect(walk(rig.dir).filter((f) => f.endsWith('/pwned'))).toEqual([]);
    expect(existsSync(join(home, 'pwned'))).toBe(false);
  });

  it('gives the shell stage the literal name in every quoting context, and as a literal glob', () => {
    for (const n of NAMES) {
      const text = readFileSync(join(rig.cache, 'work/hello', `${n}.txt`), 'utf8');
      expect(text, n).toBe(`${n}\n${n}\n${n}\n<${n}>\n1\n${n}\n`);
    }
  });

  it('writes cmd files whose paths s5cmd splits back into the name', () => {
    const cmd = (n: string) =>
      readFileSync(join(rig.cache, 'work/cmds', n, 'train-00000-of-00001.cmd.txt'), 'utf8');
    const first = (n: string) => cmd(n).split('\n')[0] ?? '';
    expect(first("Ren'Py")).toMatch(
      /^cp s3:\/\/softwareheritage\/content\/([0-9a-f]{40}) 'blobs\/Ren'\\''Py\/00000\/\1\.gz'$/,
    );
    expect(first('a"b')).toMatch(/^cp s3:\/\/\S+ 'blobs\/a"b\/00000\/[0-9a-f]{40}\.gz'$/);
    expect(first('C++')).toMatch(/^cp s3:\/\/\S+ blobs\/C\+\+\/00000\/[0-9a-f]{40}\.gz$/);
    expect(first('x;cd $HOME;id>pwned;#')).toMatch(
      /^cp s3:\/\/\S+ 'blobs\/x;cd \$HOME;id>pwned;#\/00000\/[0-9a-f]{40}\.gz'$/,
    );
  });

  it('packs every language under its own name', () => {
    for (const n of NAMES) {
      const dir = join(rig.cache, 'bucket/packed', n);
      expect(
        readdirSync(dir).some((f) => f.startsWith(`${n}-00000-`)),
        n,
      ).toBe(true);
    }
  });
});

describe('names the listing check refuses', () => {
  it('refuses a folder whose name holds a newline, naming it, and runs nothing', async () => {
    const rig = new Rig({ pipeline: PIPELINE });
    try {
      cpSync(join(rig.dir, 'hf/data/C'), join(rig.dir, 'hf/data', 'two\nlines; touch pwned'), {
        recursive: true,
      });
      const res = await rig.run(['run', '--json']);
      expect(res.code).toBe(2);
      expect(res.stderr).toContain(
        'refusing unsafe language folder name "two\\nlines; touch pwned": it contains a control character',
      );
      expect(res.events.filter((e) => e.type === 'task-started')).toEqual([]);
      expect(walk(rig.dir).filter((f) => f.endsWith('/pwned'))).toEqual([]);
    } finally {
      rig.cleanup();
    }
  });
});
