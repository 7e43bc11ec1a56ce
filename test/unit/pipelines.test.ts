/** The pipeline files we ship parse cleanly and say what the README says they do. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePipeline } from '../../lib/config/parse.js';
import { REPO } from '../helpers/rig.js';

/** Parses a shipped pipeline file; any diagnostic fails the test with its text. */
function load(rel: string) {
  const path = join(REPO, rel);
  const r = parsePipeline(readFileSync(path, 'utf8'), {
    path,
    displayName: rel,
    cacheDir: '/tmp/cache',
  });
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  return r.value;
}

describe('shipped pipeline files', () => {
  it('pipeline.yaml is the real the-stack-v2 pipeline', () => {
    const p = load('pipeline.yaml');
    expect(p.dataset).toMatchObject({
      repo: 'bigcode/the-stack-v2',
      source: 'hf://datasets/bigcode/the-stack-v2',
      languages: 'all',
    });
    expect(p.content.source).toBe('s3://softwareheritage/content');
    expect(p.bucket.startsWith('s3://')).toBe(true);
    expect(p.stages.map((s) => s.kind)).toEqual([
      'discover',
      'fetch',
      'cmds',
      'sync',
      'pack',
      'stats',
      'stats-merge',
    ]);
  });
  it('examples/sample/pipeline.yaml runs the same tasks on local sources', () => {
    const p = load('examples/sample/pipeline.yaml');
    expect(p.dataset.source).toBe(`file://${join(REPO, 'examples/sample/hf')}`);
    expect(p.content.source).toBe(`file://${join(REPO, 'examples/sample/swh/content')}`);
    expect(p.bucket).toBe('file:///tmp/cache/bucket');
    expect(p.stages.map((s) => s.kind)).toEqual([
      'discover',
      'fetch',
      'cmds',
      'sync',
      'pack',
      'stats',
      'stats-merge',
      'shell',
    ]);
  });
});
