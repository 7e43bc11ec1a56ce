/** Fixture builders for the pure modules (changesets' FakeFullState shape). */
import type { KindIdentity } from '../../lib/fingerprint.js';
import { sha256Hex } from '../../lib/fingerprint.js';
import type { Manifest, Pipeline, StageConfig, TaskKind } from '../../lib/model.js';
import { stageName } from '../../lib/model.js';
import { kindNames } from '../../lib/kinds.js';

const loc = { file: 'pipeline.yaml', line: 1, column: 1, length: 1 };

export function stage(
  name: string,
  kind: TaskKind,
  needs: string[] = [],
  extra: Partial<StageConfig> = {},
): StageConfig {
  const foreach = kind === 'discover' ? 'language' : kind === 'shell' ? 'once' : 'parquet';
  return {
    name: stageName(name),
    kind,
    needs: needs.map(stageName),
    foreach,
    params: {},
    retries: 0,
    location: loc,
    ...extra,
  };
}

/** The-stack-v2 pipeline: discover → fetch → cmds → sync, fetch → pack. */
export function pipeline(
  extraStages: StageConfig[] = [],
  params: Record<string, Record<string, unknown>> = {},
): Pipeline {
  const stages = [
    stage('discover', 'discover'),
    stage('fetch', 'fetch', ['discover']),
    stage('cmds', 'cmds', ['fetch'], { params: { dest: 'blobs/{blob_id}.gz', ...params.cmds } }),
    stage('sync', 'sync', ['fetch', 'cmds'], { params: { prefix: '', ...params.sync } }),
    stage('pack', 'pack', ['fetch'], {
      params: { rows_per_part: 100, prefix: 'packed/', ...params.pack },
    }),
    ...extraStages,
  ];
  return {
    file: '/p/pipeline.yaml',
    dataset: {
      repo: 'bigcode/the-stack-v2',
      revision: 'rev1',
      source: 'file:///p/hf',
      languages: ['C++', 'Python'],
    },
    content: { source: 'file:///p/swh/content' },
    bucket: 'file:///p/bucket',
    work: 'file:///p/cache/work',
    s3: {},
    state: 'file:///p/state',
    stages,
  };
}

export function manifest(language: string, shards: number, salt = ''): Manifest {
  return {
    language,
    revision: 'rev1',
    files: Array.from({ length: shards }, (_, i) => {
      const stem = `train-${String(i).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}`;
      return {
        path: `data/${language}/${stem}.parquet`,
        stem,
        size: 1000 + i,
        // A real sha256 (hex): manifests are checked when read (lib/io/state/state-checks.ts).
        sha256: sha256Hex(`${salt}${language}${String(i)}`),
      };
    }),
  };
}

/** Every task kind at one implementation version, no tools and no runtime params. */
export function uniformKinds(version = '1'): { readonly [K in TaskKind]: KindIdentity } {
  return Object.fromEntries(kindNames().map((k) => [k, { version, tools: {} }])) as {
    [K in TaskKind]: KindIdentity;
  };
}
