/** The pipeline files we ship parse cleanly and say what the README says they do. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePipeline } from '../../lib/config/parse.js';
import { REPO } from '../helpers/rig.js';

const load = (rel: string) => {
  const path = join(REPO, rel);
  return parsePipeline(readFileSync(path, 'utf8'), {
    path,
    displayName: rel,
    cacheDir: '/tmp/cache',
  });
};

describe('shipped pipeline files', () => {
  it('pipeline.yaml is the real the-stack-v2 pipeline', () => {
    const r = load('pipeline.yaml');
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    expect(r.value.dataset).toMatchObject({
      repo: 'bigcode/the-stack-v2',
      source: 'hf://datasets/bigcode/the-stack-v2',
      languages: 'all',
    });
    expect(r.value.content.source).toBe('s3://softwareheritage/content');
    expect(r.value.bucket.startsWith('s3://')).toBe(true);
    expect(r.value.stages.map((s) => s.kind)).toEqual([
      'discover',
      'fetch',
      'cmds',
      'sync',
      'pack',
    ]);
  });
  it('examples/sample/pipeline.yaml runs the same tasks on local sources', () => {
    const r = load('examples/sample/pipeline.yaml');
    if (!r.ok) throw new Error(JSON.stringify(r.error));
    expect(r.value.dataset.source).toBe(`file://${join(REPO, 'examples/sample/hf')}`);
    expect(r.value.content.source).toBe(`file://${join(REPO, 'examples/sample/swh/content')}`);
    expect(r.value.bucket).toBe('file:///tmp/cache/bucket');
    expect(r.value.stages.map((s) => s.kind)).toEqual([
      'discover',
      'fetch',
      'cmds',
      'sync',
      'pack',
      'shell',
    ]);
  });
});
