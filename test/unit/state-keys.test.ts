/**
 * lib/io/state/keys.ts: every state key's shape, written out literally (a state written by an
 * older stackflow must still be found), and each parser the inverse of its builder.
 */
import { describe, expect, it } from 'vitest';
import type { Fingerprint } from '../../lib/fingerprint.js';
import { taskId } from '../../lib/graph.js';
import {
  epochName,
  failureKey,
  isFailureKey,
  leaseDir,
  leaseDirId,
  manifestKey,
  markerKey,
  markerPrefix,
  paramsKey,
  parseFailureKey,
  parseLeaseKey,
  parseMarkerKey,
  parsePartRecordKey,
  parseRunLockKey,
  partRecordKey,
  partRecordsPrefix,
  partsPrefix,
  revisionKey,
  runLockKey,
  taskFailureKey,
  taskIdFromPath,
  taskLeasePrefix,
  taskPath,
} from '../../lib/io/state/keys.js';
import type { TaskInstance } from '../../lib/model.js';

const H = 'ab'.repeat(32);
const fp = {
  hash: H,
  components: { code: '11111111', params: '22222222', inputs: '33333333' },
} as unknown as Fingerprint;
const task = {
  id: 'pack:C++/train-00000-of-00002',
  stage: 'pack',
  kind: 'pack',
  language: 'C++',
  file: { path: 'data/C++/train-00000-of-00002.parquet', stem: 'train-00000-of-00002' },
  params: {},
  deps: [],
} as unknown as TaskInstance;
const noLang = {
  stage: 'stats-merge',
  language: undefined,
  file: undefined,
} as unknown as TaskInstance;

describe('state keys', () => {
  it('names a task by its URI-encoded path, `@` for no language, and reads it back', () => {
    expect(taskPath('pack', 'C++', 'train-00000-of-00002')).toBe(
      'pack/C%2B%2B/train-00000-of-00002',
    );
    expect(taskPath('stats-merge')).toBe('stats-merge/@');
    expect(taskIdFromPath('pack/C%2B%2B/train-00000-of-00002')).toBe(
      taskId('pack', 'C++', 'train-00000-of-00002'),
    );
    expect(taskIdFromPath('stats-merge/@')).toBe(taskId('stats-merge'));
    expect(taskIdFromPath('a/b/c/d')).toBeUndefined();
  });

  it('markers: shape, prefix and parse', () => {
    const outputs = [{ store: 'bucket', key: 'packed/x.jsonl.zst', size: 5 }];
    const key = markerKey(task, fp, 'w 1', outputs);
    expect(key).toMatch(
      new RegExp(
        `^markers/pack/C%2B%2B/train-00000-of-00002@${H}\\.c11111111\\.p22222222\\.i33333333\\.o1-[0-9a-f]{8}\\.ww%201\\.json$`,
      ),
    );
    expect(key.startsWith(markerPrefix(task, fp))).toBe(true);
    const p = parseMarkerKey(key);
    expect(p?.task).toBe(task.id);
    expect(p?.ref).toMatchObject({ fingerprint: H, code: '11111111', worker: 'w 1' });
    expect(markerKey(task, fp)).toBe(
      `markers/pack/C%2B%2B/train-00000-of-00002@${H}.c11111111.p22222222.i33333333.json`,
    );
    // the layout before markers were grouped per stage and language is still read
    expect(
      parseMarkerKey(`markers/pack/@/${H}.c11111111.p22222222.i33333333.wa.json`)?.ref.worker,
    ).toBe('a');
    expect(parseMarkerKey('markers/nonsense.json')).toBeUndefined();
    expect(parseMarkerKey('parts/pack/@/x.json')).toBeUndefined();
  });

  it('failure records sit beside the markers', () => {
    expect(failureKey({ stage: 'pack', language: 'Go', stem: 's' })).toBe(
      'markers/pack/Go/s@failed.json',
    );
    expect(taskFailureKey(noLang)).toBe('markers/stats-merge/@@failed.json');
    expect(isFailureKey('markers/stats-merge/@@failed.json')).toBe(true);
    expect(isFailureKey(markerKey(task, fp))).toBe(false);
    expect(parseFailureKey(taskFailureKey(task))).toBe(task.id);
    expect(parseFailureKey(markerKey(task, fp))).toBeUndefined();
  });

  it('part records: per task, per fingerprint, six-digit part numbers', () => {
    expect(partsPrefix(task)).toBe('parts/pack/C%2B%2B/train-00000-of-00002/');
    expect(partRecordsPrefix(task, fp)).toBe(`parts/pack/C%2B%2B/train-00000-of-00002/${H}/`);
    expect(partRecordKey(task, fp, 7)).toBe(
      `parts/pack/C%2B%2B/train-00000-of-00002/${H}/000007.json`,
    );
    expect(parsePartRecordKey(partRecordKey(task, fp, 7))).toEqual({
      task: task.id,
      fingerprint: H,
      part: 7,
    });
    // a stray file under a task's records still names its task (reset drops it), without a part
    expect(parsePartRecordKey(`${partRecordsPrefix(task, fp)}junk`)?.part).toBeUndefined();
    expect(parsePartRecordKey(`${partRecordsPrefix(task, fp)}junk`)?.task).toBe(task.id);
    expect(parsePartRecordKey('parts/pack/Go/not-a-hash/000001.json')).toBeUndefined();
  });

  it('params, manifests and revisions', () => {
    expect(paramsKey('my stage', 'deadbeef')).toBe('params/my%20stage/deadbeef.json');
    expect(manifestKey('C#', H)).toBe(`manifests/C%23/${H}.json`);
    expect(revisionKey('bigcode/the-stack-v2', 'refs/pr/1')).toBe(
      'revisions/bigcode/the-stack-v2/refs%2Fpr%2F1.json',
    );
    expect(revisionKey('a/..', '.')).toBe('revisions/a/%2E%2E/%2E.json');
  });

  it('leases: a directory per task and 16-digit fingerprint, epochs inside', () => {
    const dir = leaseDir(task, fp);
    expect(dir).toBe(`leases/pack/C%2B%2B/train-00000-of-00002/${H.slice(0, 16)}/`);
    expect(dir.startsWith(taskLeasePrefix({ stage: 'pack', language: 'C++' }))).toBe(true);
    expect(leaseDirId(dir)).toBe(`pack/C%2B%2B/train-00000-of-00002/${H.slice(0, 16)}`);
    expect(epochName(3)).toBe('e00000003.json');
    expect(parseLeaseKey(dir + epochName(3))).toEqual({
      task: 'pack/C%2B%2B/train-00000-of-00002',
      fingerprint: H.slice(0, 16),
      epoch: 3,
    });
    expect(parseLeaseKey(`${dir}e3.json`)).toBeUndefined();
  });

  it('the run lock', () => {
    expect(runLockKey(12)).toBe('locks/run/e00000012.json');
    expect(parseRunLockKey(runLockKey(12))).toBe(12);
    expect(parseRunLockKey('locks/run/other.json')).toBeUndefined();
  });
});
