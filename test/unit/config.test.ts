/**
 * The config layer: pipeline.yaml -> Pipeline | Diagnostic[], and how diagnostics render.
 *
 * Bad fixtures live in test/fixtures/pipelines/bad/NN-name.yaml, each next to the exact text it
 * must render (NN-name.expected.txt); good ones in test/fixtures/pipelines/good/.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Diagnostic } from '../../lib/errors.js';
import { didYouMean, renderDiagnostics } from '../../lib/config/diagnostics.js';
import { normalizeUrl, paramDefaults, parsePipeline } from '../../lib/config/parse.js';
import type { ParseOptions } from '../../lib/config/parse.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/pipelines/', import.meta.url));

const options = (displayName = 'pipeline.yaml'): ParseOptions => ({
  path: '/work/proj/pipeline.yaml',
  displayName,
  cacheDir: '/work/proj/cache',
});

/** The rendered diagnostics, or 'OK'. */
function render(text: string, name = 'pipeline.yaml'): string {
  const result = parsePipeline(text, options(name));
  return result.ok ? 'OK' : renderDiagnostics(result.error, new Map([[name, text]]));
}

function diagnostics(text: string): Diagnostic[] {
  const result = parsePipeline(text, options());
  return result.ok ? [] : result.error;
}

const HEADER = `version: 1
dataset:
  repo: bigcode/the-stack-v2
  revision: 6a3c1f0e2b4d5a6978c1e0f2a3b4c5d6e7f80912
  source: hf://datasets/bigcode/the-stack-v2
  languages: [Python]
content:
  source: s3://softwareheritage/content
`;

const GOOD = `${HEADER}tasks:
  discover: { kind: discover }
  fetch:   { kind: fetch, needs: [discover] }
  cmds:    { kind: cmds, needs: [fetch], params: { dest: "blobs/{blob_id}.gz" } }
  sync:    { kind: sync, needs: [fetch, cmds] }
  pack:
    kind: pack
    needs: [fetch]
    limit: 1
    retries: 2
    params: { rows_per_part: 16384 }
  stats:
    kind: shell
    foreach: language
    needs: [pack]
    params:
      command: "cat {inputs} > {outputs}"
      outputs: ["stats/{language}.txt"]
`;

const at = (line: number, column: number, length: number) => ({
  file: 'pipeline.yaml',
  line,
  column,
  length,
});

/** A normalized stage with the default retries and no limit. */
const stage = (
  name: string,
  kind: string,
  needs: string[],
  foreach: string,
  params: Record<string, unknown>,
  location: ReturnType<typeof at>,
) => ({ name, kind, needs, foreach, params, retries: 2, location, ...DEFAULT_LIMITS_MS[kind] });

/** The documented default time limits per kind (README, lib/config/limits.ts), in ms. */
const DEFAULT_LIMITS_MS: Record<string, { timeoutMs?: number; stallTimeoutMs?: number }> = {
  discover: { timeoutMs: 3_600_000 },
  fetch: { timeoutMs: 7_200_000, stallTimeoutMs: 900_000 },
  cmds: { timeoutMs: 3_600_000, stallTimeoutMs: 900_000 },
  sync: { timeoutMs: 7_200_000, stallTimeoutMs: 1_800_000 },
  pack: { stallTimeoutMs: 900_000 },
  shell: {},
};

describe('parsePipeline: good pipelines', () => {
  it('normalizes the documented example: defaults applied, URLs resolved', () => {
    const result = parsePipeline(GOOD, options());
    expect(result).toStrictEqual({
      ok: true,
      value: {
        file: '/work/proj/pipeline.yaml',
        dataset: {
          repo: 'bigcode/the-stack-v2',
          revision: '6a3c1f0e2b4d5a6978c1e0f2a3b4c5d6e7f80912',
          source: 'hf://datasets/bigcode/the-stack-v2',
          languages: ['Python'],
        },
        content: { source: 's3://softwareheritage/content' },
        bucket: 'file:///work/proj/cache/bucket',
        state: 'file:///work/proj/cache/state',
        work: 'file:///work/proj/cache/work',
        s3: {},
        stages: [
          stage('discover', 'discover', [], 'language', {}, at(10, 3, 8)),
          stage('fetch', 'fetch', ['discover'], 'parquet', {}, at(11, 3, 5)),
          stage(
            'cmds',
            'cmds',
            ['fetch'],
            'parquet',
            {
              dest: 'blobs/{blob_id}.gz',
              source: 's3://softwareheritage/content',
            },
            at(12, 3, 4),
          ),
          stage('sync', 'sync', ['fetch', 'cmds'], 'parquet', { prefix: '' }, at(13, 3, 4)),
          {
            ...stage(
              'pack',
              'pack',
              ['fetch'],
              'parquet',
              {
                rows_per_part: 16384,
                content_field: 'content',
                max_missing_rate: 0.01,
                zstd_level: 3,
                frame_bytes: 8388608,
                prefix: 'packed/',
                fetcher: 'sdk',
                s5cmd_path: 's5cmd',
                s5cmd_workers: 256,
                window: 'adaptive',
              },
              at(14, 3, 4),
            ),
            limit: 1,
          },
          stage(
            'stats',
            'shell',
            ['pack'],
            'language',
            {
              command: 'cat {inputs} > {outputs}',
              inputs: [],
              outputs: ['stats/{language}.txt'],
              env: {},
            },
            at(20, 3, 5),
          ),
        ],
      },
    });
  });

  it('resolves file:// URLs against the pipeline directory and strips trailing slashes', () => {
    const text = GOOD.replace('hf://datasets/bigcode/the-stack-v2', 'file://./hf/')
      .replace('s3://softwareheritage/content', 'file://swh/content')
      .replace('tasks:', 'bucket: file:///data/bucket/\nstate: s3://my-state/runs/\ntasks:');
    const result = parsePipeline(text, options());
    if (!result.ok) throw new Error(render(text));
    expect(result.value.dataset.source).toBe('file:///work/proj/hf');
    expect(result.value.content.source).toBe('file:///work/proj/swh/content');
    expect(result.value.bucket).toBe('file:///data/bucket');
    expect(result.value.state).toBe('s3://my-state/runs');
    expect(result.value.stages[2]?.params['source']).toBe('file:///work/proj/swh/content');
  });

  it('follows anchors and aliases', () => {
    const text = GOOD.replace('needs: [fetch, cmds]', 'needs: &both [fetch, cmds]').replace(
      'foreach: language\n    needs: [pack]',
      'foreach: language\n    needs: *both',
    );
    const result = parsePipeline(text, options());
    expect(result.ok && result.value.stages[5]?.needs).toEqual(['fetch', 'cmds']);
  });

  it.each(readdirSync(`${FIXTURES}good`).filter((f) => f.endsWith('.yaml')))('%s', (file) => {
    expect(render(readFileSync(`${FIXTURES}good/${file}`, 'utf8'), file)).toBe('OK');
  });

  it('takes param defaults from schema.json', () => {
    expect(paramDefaults('cmds')).toEqual({ dest: 'blobs/{blob_id}.gz' });
    expect(paramDefaults('sync')).toEqual({ prefix: '' });
    expect(paramDefaults('shell')).toEqual({ inputs: [], outputs: [], env: {} });
    expect(paramDefaults('fetch')).toEqual({});
  });
});

const BAD = `${FIXTURES}bad/`;
const badFixtures = readdirSync(BAD).filter((f) => f.endsWith('.yaml'));

describe('parsePipeline: bad pipelines render exactly as expected', () => {
  it('has enough fixtures', () => {
    expect(badFixtures.length).toBeGreaterThanOrEqual(22);
  });

  it.each(badFixtures)('%s', (file) => {
    const text = readFileSync(BAD + file, 'utf8');
    const expected = readFileSync(BAD + file.replace(/\.yaml$/, '.expected.txt'), 'utf8');
    expect(render(text, file)).toBe(expected);
  });

  it('reports every error of a file at once, in source order', () => {
    const text = readFileSync(`${BAD}26-many-errors.yaml`, 'utf8');
    const lines = diagnostics(text).map((d) => d.location.line);
    expect(lines.length).toBeGreaterThanOrEqual(6);
    expect(lines).toEqual([...lines].sort((a, b) => a - b));
  });
});

describe('parsePipeline: more rules', () => {
  const withStages = (yaml: string) => `${HEADER}tasks:
  discover: { kind: discover }
  fetch: { kind: fetch, needs: [discover] }
${yaml}`;
  const messages = (text: string) => diagnostics(text).map((d) => d.message);

  it('leaves ${VAR} and {{...}} to the shell', () => {
    const text = withStages(
      '  s: { kind: shell, params: { command: "echo ${HOME} {{x}} {stage}" } }',
    );
    expect(messages(text)).toEqual([]);
  });

  it('accepts a stage named like an Object.prototype member', () => {
    const text = withStages('  constructor: { kind: pack, needs: [fetch] }');
    const result = parsePipeline(text, options());
    expect(result.ok && result.value.stages.map((s) => s.name)).toEqual([
      'discover',
      'fetch',
      'constructor',
    ]);
  });
});

describe('normalizeUrl', () => {
  it.each([
    ['file://./hf', ['file'], 'file:///base/hf'],
    ['file://hf/', ['file'], 'file:///base/hf'],
    ['file:///abs/dir/', ['file'], 'file:///abs/dir'],
    ['file://../up', ['file'], 'file:///up'],
    ['s3://bucket', ['s3'], 's3://bucket'],
    ['s3://my-bucket/a/b/', ['s3'], 's3://my-bucket/a/b'],
    ['hf://datasets/bigcode/the-stack-v2/', ['hf'], 'hf://datasets/bigcode/the-stack-v2'],
  ] as const)('%s -> %s', (raw, schemes, expected) => {
    expect(normalizeUrl(raw, schemes, '/base')).toEqual({ ok: true, value: expected });
  });

  it.each([
    ['ftp://x/y', ['s3', 'file']],
    ['hf://datasets/bigcode', ['hf']],
    ['hf://models/a/b', ['hf']],
    ['s3://', ['s3']],
    ['s3://b//double', ['s3']],
    ['/abs/path', ['file']],
  ] as const)('rejects %s', (raw, schemes) => {
    expect(normalizeUrl(raw, schemes, '/base').ok).toBe(false);
  });
});

describe('didYouMean', () => {
  it('suggests within two edits or a unique abbreviation', () => {
    expect(didYouMean('pakc', ['fetch', 'pack'])).toBe('pack');
    expect(didYouMean('Pack', ['fetch', 'pack'])).toBe('pack');
    expect(didYouMean('lang', ['language', 'stage'])).toBe('language');
    expect(didYouMean('zzzzzz', ['fetch', 'pack'])).toBeUndefined();
    expect(didYouMean('x', ['a', 'b'])).toBeUndefined();
  });
});

describe('renderDiagnostics', () => {
  const source = 'a:\n\tb: [x, y]\n';
  const sources = new Map([['f.yaml', source]]);
  const loc = (line: number, column: number, length: number) => ({
    file: 'f.yaml',
    line,
    column,
    length,
  });

  it('keeps tabs in the underline margin and draws at least one ~', () => {
    const text = renderDiagnostics(
      [{ severity: 'error', message: 'm', location: loc(2, 6, 0) }],
      sources,
    );
    expect(text).toBe('❌ f.yaml:2:6 m\n    \tb: [x, y]\n    \t    ~\n');
  });

  it('indents supplemental locations and separates diagnostics with a blank line', () => {
    const d: Diagnostic = {
      severity: 'error',
      message: 'one',
      location: loc(1, 1, 1),
      supplemental: [{ message: 'see', location: loc(2, 7, 1) }],
    };
    expect(renderDiagnostics([d, { ...d, supplemental: [] }], sources)).toBe(
      [
        '❌ f.yaml:1:1 one',
        '    a:',
        '    ~',
        '    f.yaml:2:7 see',
        '        \tb: [x, y]',
        '        \t     ~',
        '',
        '❌ f.yaml:1:1 one',
        '    a:',
        '    ~',
        '',
      ].join('\n'),
    );
  });

  it('prints only the header when the source is unknown', () => {
    const d: Diagnostic = { severity: 'error', message: 'm', location: loc(1, 1, 1) };
    expect(renderDiagnostics([d], new Map())).toBe('❌ f.yaml:1:1 m\n');
    expect(renderDiagnostics([], sources)).toBe('');
  });
});

describe('parsePipeline never throws', () => {
  /** mulberry32: a tiny seeded PRNG, so a failure reproduces. */
  function random(seed: number): () => number {
    let a = seed;
    return () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const JUNK = [
    ':',
    '-',
    '[',
    ']',
    '{',
    '}',
    '\t',
    '&a',
    '*a',
    '!!',
    '\0',
    '"',
    "'",
    '#',
    '\n',
    ' ',
    '|',
    '>',
    '1e999',
    '~',
    '? ',
    '%',
  ];

  function mutate(text: string, rnd: () => number): string {
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
    const lines = text.split('\n');
    const i = Math.floor(rnd() * lines.length);
    const c = Math.floor(rnd() * text.length);
    switch (Math.floor(rnd() * 6)) {
      case 0:
        lines.splice(i, 1);
        return lines.join('\n');
      case 1:
        lines.splice(i, 0, lines[i] ?? '');
        return lines.join('\n');
      case 2:
        return text.slice(0, c) + (text[c + 1] ?? '') + (text[c] ?? '') + text.slice(c + 2);
      case 3:
        return text.slice(0, c) + pick(JUNK) + text.slice(c);
      case 4:
        return text.slice(0, c) + text.slice(c + 1 + Math.floor(rnd() * 5));
      default:
        lines[i] = (rnd() < 0.5 ? '  ' : '') + (lines[i] ?? '').replace(/^ {2}/, '');
        return lines.join('\n');
    }
  }

  function check(text: string): void {
    const result = parsePipeline(text, options());
    if (result.ok) return;
    expect(result.error.length).toBeGreaterThanOrEqual(1);
    for (const d of result.error) {
      expect(d.location.line).toBeGreaterThanOrEqual(1);
      expect(d.location.column).toBeGreaterThanOrEqual(1);
      expect(d.location.length).toBeGreaterThanOrEqual(1);
      expect(d.message).not.toContain('\n');
    }
    expect(() => renderDiagnostics(result.error, new Map([['pipeline.yaml', text]]))).not.toThrow();
  }

  it('on 200 random mutations of a good pipeline', () => {
    const rnd = random(20240501);
    for (let n = 0; n < 200; n++) {
      let text = GOOD;
      const times = 1 + Math.floor(rnd() * 3);
      for (let k = 0; k < times; k++) text = mutate(text, rnd);
      check(text);
    }
  });

  it.each([
    ['empty', ''],
    ['a scalar', 'hello'],
    ['a list', '- 1\n- 2\n'],
    ['binary junk', '\u0000\u0001\uFFFD\u0007\r\n\u001b[31m'],
    ['tabs', '\t\tversion:\t1\n\t- x'],
    ['CRLF', GOOD.replace(/\n/g, '\r\n')],
    ['lone CRs', GOOD.replace(/\n/g, '\r')],
    [
      'billion laughs',
      'a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n',
    ],
    [
      'huge numbers',
      `${HEADER}tasks:\n  discover: { kind: discover, retries: 1e308, limit: 99999999999999999999999 }\n`,
    ],
    ['many documents', 'a: 1\n---\nb: 2\n'],
    ['unknown tag', 'version: !custom 1\n'],
    ['deep nesting', `${'['.repeat(500)}${']'.repeat(500)}`],
    ['only a comment', '# nothing\n'],
    [
      'stage names from Object.prototype',
      `${HEADER}tasks:\n  toString: { kind: discover, needs: [hasOwnProperty, __proto__] }\n`,
    ],
  ])('on %s', (_name, text) => {
    check(text);
  });
});
