/**
 * State → report model, on memory stores: a partially finished run (one language discovered,
 * one not), a running pack with finished parts, a failure, a stale marker, a takeover recorded
 * in the leases, a stale lease; and the pure parts (lanes' slots, throughput buckets, escaping).
 */
import { describe, expect, it } from 'vitest';
import { registry } from '../../tasks/index.js';
import type { Fingerprint } from '../../lib/fingerprint.js';
import { MirrorHub } from '../../lib/io/hub/hub-mirror.js';
import type { MarkerBody, OutputRecord } from '../../lib/io/state/markers.js';
import { PartLedger, writeManifest, writeMarker } from '../../lib/io/state/markers.js';
import { MemoryStore } from '../../lib/io/stores/memory-store.js';
import type { ListOptions, ListPage } from '../../lib/io/stores/object-store.js';
import type { Result } from '../../lib/errors.js';
import { ok } from '../../lib/errors.js';
import type { TaskId, TaskInstance } from '../../lib/model.js';
import { objectKey } from '../../lib/model.js';
import type { Session } from '../../lib/session.js';
import { snapshot } from '../../lib/session.js';
import { gatherReport } from '../../lib/report-html/gather.js';
import type { MarkerCache } from '../../lib/report-html/gather.js';
import { assignSlots, buildReport, throughput } from '../../lib/report-html/model.js';
import { renderHtml, scriptJson } from '../../lib/report-html/render.js';
import type { Lane, TaskView } from '../../lib/report-html/types.js';
import { manifest, pipeline } from '../helpers/fixtures.js';
import { epochName, failureKey, leaseDir } from '../../lib/io/state/keys.js';

/** A state store whose listing shows some keys as last written ten minutes ago (stale leases). */
class AgingStore extends MemoryStore {
  readonly aged = new Set<string>();
  override async list(prefix: string, opts?: ListOptions): Promise<Result<ListPage>> {
    const r = await super.list(prefix, opts);
    if (!r.ok) return r;
    return ok({
      ...r.value,
      objects: r.value.objects.map((o) =>
        this.aged.has(o.key) ? { ...o, modified: (o.modified ?? Date.now()) - 600_000 } : o,
      ),
    });
  }
}

function session(): Session & { stores: { state: AgingStore } } {
  return {
    pipeline: pipeline(),
    cacheDir: '/nonexistent-cache',
    stores: {
      work: new MemoryStore('memory://work'),
      bucket: new MemoryStore('memory://bucket'),
      state: new AgingStore('memory://state'),
    },
    hub: new MirrorHub('/nonexistent-mirror'),
    content: new MemoryStore('memory://content'),
    registry,
    requestRetries: { count: 0 },
    manifests: new Map(),
  };
}

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const iso = (ms: number): string => new Date(T0 + ms).toISOString();

function body(
  t: TaskInstance,
  fp: Fingerprint,
  o: {
    host: string;
    worker: string;
    from: number;
    to: number;
    counts?: Record<string, number>;
    outputs?: OutputRecord[];
    attempts?: number;
  },
): MarkerBody {
  return {
    schema: 1,
    task: t.id,
    fingerprint: fp.hash,
    fingerprintData: fp.data,
    outputs: o.outputs ?? [],
    counts: o.counts ?? {},
    host: o.host,
    worker: o.worker,
    startedAt: iso(o.from),
    finishedAt: iso(o.to),
    ...(o.attempts !== undefined ? { attempts: o.attempts } : {}),
    stackflowVersion: '0.1.0',
  };
}

async function snap(s: Session) {
  const r = await snapshot(s, ['C++', 'Python'], ['discover', 'fetch', 'cmds', 'sync', 'pack'], {
    preview: false,
  });
  if (!r.ok) throw new Error(r.error.message);
  const at = (id: string): { t: TaskInstance; fp: Fingerprint } => {
    const t = r.value.graph.tasks.get(id as TaskId);
    const fp = r.value.fingerprints.get(id as TaskId);
    if (t === undefined || fp === undefined) throw new Error(`no task ${id}`);
    return { t, fp };
  };
  return { ...r.value, at };
}

const must = <T>(r: Result<T>): T => {
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
};

const leaseBody = (task: string, worker: string, host: string, epoch: number, claimedMs: number) =>
  JSON.stringify({
    task,
    fingerprint: '',
    worker,
    host,
    epoch,
    ttlMs: 60_000,
    claimedAt: iso(claimedMs),
    heartbeat: 1,
    heartbeatAt: iso(claimedMs),
  });

/**
 * C++ discovered (two parquets), Python not yet. fetch both done on two hosts; pack 0 done after
 * a takeover, with rows left out; pack 1 running with one part of three finished; cmds 0 failed;
 * cmds 1 has only a marker of an older fingerprint; sync 1 has a lease whose holder went silent.
 */
async function partialRun() {
  const s = session();
  const state = s.stores.state;
  const s0 = await snap(s);
  const dC = s0.at('discover:C++');
  must(await writeManifest(state, dC.fp.hash, manifest('C++', 2)));
  must(
    await writeMarker(
      state,
      dC.t,
      dC.fp,
      body(dC.t, dC.fp, { host: 'h1', worker: 'w1', from: 0, to: 1000 }),
    ),
  );
  const g = await snap(s);
  const f0 = g.at('fetch:C++/train-00000-of-00002');
  const f1 = g.at('fetch:C++/train-00001-of-00002');
  must(
    await writeMarker(
      state,
      f0.t,
      f0.fp,
      body(f0.t, f0.fp, {
        host: 'h1',
        worker: 'w1',
        from: 1000,
        to: 5000,
        counts: { bytes: 4_000_000 },
        attempts: 2,
      }),
    ),
  );
  must(
    await writeMarker(
      state,
      f1.t,
      f1.fp,
      body(f1.t, f1.fp, {
        host: 'h2',
        worker: 'w2',
        from: 1000,
        to: 3000,
        counts: { bytes: 2_000_000 },
      }),
    ),
  );
  const p0 = g.at('pack:C++/train-00000-of-00002');
  const errorsKey = 'packed/C++/C++-00000-000000-of-000001.errors.jsonl';
  must(
    await writeMarker(
      state,
      p0.t,
      p0.fp,
      body(p0.t, p0.fp, {
        host: 'h2',
        worker: 'w2',
        from: 5000,
        to: 15000,
        counts: {
          rows: 100,
          written: 97,
          missing: 2,
          corrupt_gzip: 0,
          undecodable: 1,
          raw_bytes: 50_000,
          zst_bytes: 9_000,
        },
        outputs: [
          {
            store: 'bucket',
            key: 'packed/C++/C++-00000-000000-of-000001.jsonl.zst',
            size: 9000,
            sha256: 'a',
          },
          { store: 'bucket', key: errorsKey, size: 300, sha256: 'b' },
        ],
      }),
    ),
  );
  // The takeover: epoch 0 by w1 went silent, w2 took epoch 1 and finished.
  const lease = (t: TaskInstance, fp: Fingerprint, epoch: number) =>
    objectKey(leaseDir(t, fp) + epochName(epoch));
  must(await state.put(lease(p0.t, p0.fp, 0), leaseBody(p0.t.id, 'w1', 'h1', 0, 4000)));
  must(await state.put(lease(p0.t, p0.fp, 1), leaseBody(p0.t.id, 'w2', 'h2', 1, 5000)));
  // Running: pack 1, a live lease and one finished part of three.
  const p1 = g.at('pack:C++/train-00001-of-00002');
  must(await state.put(lease(p1.t, p1.fp, 0), leaseBody(p1.t.id, 'w1', 'h1', 0, 5000)));
  must(
    await new PartLedger(state, p1.t, p1.fp).record({
      part: 0,
      total: 3,
      outputs: [
        {
          store: 'bucket',
          key: 'packed/C++/C++-00001-000000-of-000003.errors.jsonl',
          size: 10,
          sha256: 'c',
        },
      ],
      counts: {
        rows: 40,
        written: 39,
        missing: 1,
        corrupt_gzip: 0,
        undecodable: 0,
        raw_bytes: 20_000,
        zst_bytes: 4_000,
      },
    }),
  );
  // Failed: cmds 0.
  const c0 = g.at('cmds:C++/train-00000-of-00002');
  must(
    await state.put(
      objectKey(failureKey({ stage: 'cmds', language: 'C++', stem: 'train-00000-of-00002' })),
      JSON.stringify({
        task: c0.t.id,
        failure: { reason: 'invalid-input', message: 'blob_id column is missing' },
        at: iso(6000),
        host: 'h1',
        worker: 'w1',
        startedAt: iso(5500),
        attempts: 3,
      }),
    ),
  );
  // Stale: cmds 1 has a marker of another fingerprint.
  const c1 = g.at('cmds:C++/train-00001-of-00002');
  const older = { ...c1.fp, hash: 'f'.repeat(64) as Fingerprint['hash'] };
  must(
    await writeMarker(
      state,
      c1.t,
      older,
      body(c1.t, older, { host: 'h1', worker: 'w0', from: 0, to: 1 }),
    ),
  );
  // A silent holder on sync 1.
  const y1 = g.at('sync:C++/train-00001-of-00002');
  const silent = lease(y1.t, y1.fp, 0);
  must(await state.put(silent, leaseBody(y1.t.id, 'w3', 'h3', 0, 2000)));
  state.aged.add(silent);
  return s;
}

describe('gatherReport (state → model)', () => {
  it('counts a partially finished run as status does, with rows, bytes and reasons', async () => {
    const s = await partialRun();
    const m = must(await gatherReport(s, new Map(), () => T0 + 20_000));
    // C++: discover + 2 × (fetch, cmds, sync, pack) = 9, Python: discover = 1.
    expect(m.totals).toMatchObject({
      tasks: 10,
      done: 4,
      running: 1,
      failed: 1,
      stale: 1,
      pending: 3,
      // Python's fetch, cmds, sync and pack wait for its listing.
      blocked: 4,
      rowsIn: 140,
      rowsOut: 136,
      bytesIn: 6_000_000,
      bytesOut: 13_000,
      notPacked: { missing: 3, undecodable: 1 },
    });
    const row = (stage: string, language: string) =>
      m.progress.find((r) => m.stages[r.stage]?.name === stage && r.language === language);
    expect(row('pack', 'C++')).toMatchObject({ tasks: 2, done: 1, running: 1, rowsIn: 140 });
    expect(row('fetch', 'Python')).toMatchObject({ tasks: 0, blocked: 1 });
    expect(row('discover', 'Python')).toMatchObject({ tasks: 1, pending: 1 });
  });

  it('puts each task that ran on its worker lane, with takeovers, attempts and parts', async () => {
    const s = await partialRun();
    const m = must(await gatherReport(s, new Map(), () => T0 + 20_000));
    const task = (id: string): TaskView | undefined => m.tasks.find((t) => t.id === id);
    const laneOf = (t: TaskView | undefined) =>
      t?.lane === undefined ? undefined : m.lanes[t.lane];
    const p0 = task('pack:C++/train-00000-of-00002');
    expect(p0).toMatchObject({
      state: 'done',
      epoch: 1,
      rows: 100,
      bytes: 50_000,
      start: T0 + 5000,
      end: T0 + 15000,
    });
    expect(laneOf(p0)).toMatchObject({ host: 'h2', worker: 'w2' });
    const f0 = task('fetch:C++/train-00000-of-00002');
    expect(f0).toMatchObject({ attempts: 2, bytes: 4_000_000 });
    expect(f0?.epoch).toBeUndefined();
    const p1 = task('pack:C++/train-00001-of-00002');
    expect(p1).toMatchObject({
      state: 'running',
      parts: [1, 3],
      rows: 40,
      start: T0 + 5000,
      epoch: 0,
    });
    expect(p1?.end).toBeUndefined();
    expect(laneOf(p1)).toMatchObject({ host: 'h1', worker: 'w1' });
    expect(task('cmds:C++/train-00001-of-00002')?.state).toBe('stale');
    expect(task('sync:C++/train-00000-of-00002')?.lane).toBeUndefined();
    expect(m.lanes.map((l) => `${l.host}/${l.worker}`).sort()).toEqual(['h1/w1', 'h2/w2']);
    // The silent holder is listed, its task is not running.
    expect(m.staleLeases).toEqual([
      { task: 'sync:C++/train-00001-of-00002', worker: 'w3', host: 'h3' },
    ]);
    expect(task('sync:C++/train-00001-of-00002')?.state).toBe('pending');
  });

  it('lists failures with their last error and how to retry, and rows not packed with their files', async () => {
    const s = await partialRun();
    const m = must(await gatherReport(s, new Map(), () => T0 + 20_000));
    expect(m.errors.failed).toEqual([
      {
        task: 'cmds:C++/train-00000-of-00002',
        stage: 'cmds',
        language: 'C++',
        reason: 'invalid-input',
        message: 'blob_id column is missing',
        at: T0 + 6000,
        host: 'h1',
        worker: 'w1',
        attempts: 3,
      },
    ]);
    expect(m.errors.retry).toEqual(['npx stackflow run cmds -f /p/pipeline.yaml']);
    expect(m.errors.notPacked).toEqual([
      {
        language: 'C++',
        counts: { missing: 3, undecodable: 1 },
        files: [
          'file:///p/bucket/packed/C++/C++-00000-000000-of-000001.errors.jsonl',
          'file:///p/bucket/packed/C++/C++-00001-000000-of-000003.errors.jsonl',
        ],
      },
    ]);
  });

  it('charts throughput per host and draws the stage and task graphs', async () => {
    const s = await partialRun();
    const m = must(await gatherReport(s, new Map(), () => T0 + 20_000));
    const tp = m.throughput;
    expect(tp.stepMs).toBe(1000);
    expect(tp.t[0]).toBe(T0);
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    // Rows: pack 0's 100 over 10 s, plus the running pack's 40 over 15 s (claim to now).
    expect(sum(tp.fleet.rowsPerS)).toBeCloseTo(140, 0);
    expect(sum(tp.hosts.h2?.rowsPerS ?? [])).toBeCloseTo(100, 0);
    expect(sum(tp.hosts.h1?.rowsPerS ?? [])).toBeCloseTo(40, 0);
    // Finished: discover, two fetches, pack 0 (the running one does not count).
    expect(sum(tp.fleet.finished)).toBe(4);
    expect(sum(tp.fleet.getsPerS)).toBeCloseTo(2 + 140, 0);
    expect(m.dag.stages.nodes.map((n) => [n.id, n.done, n.total])).toEqual([
      ['discover', 1, 2],
      ['fetch', 2, 2],
      ['cmds', 0, 2],
      ['sync', 0, 2],
      ['pack', 1, 2],
    ]);
    expect(m.dag.stages.edges).toContainEqual(['fetch', 'pack']);
    expect(m.dag.tasks?.nodes).toHaveLength(10);
    expect(m.dag.tasks?.edges).toContainEqual([
      'fetch:C++/train-00000-of-00002',
      'pack:C++/train-00000-of-00002',
    ]);
  });

  it('reads each marker once across rounds (the --watch cache)', async () => {
    const s = await partialRun();
    const cache: MarkerCache = new Map();
    must(await gatherReport(s, cache, () => T0));
    expect(cache.size).toBe(4);
    let gets = 0;
    const get = s.stores.state.get.bind(s.stores.state);
    s.stores.state.get = (k) => {
      if (k.startsWith('markers/') && !k.endsWith('@failed.json')) gets++;
      return get(k);
    };
    must(await gatherReport(s, cache, () => T0));
    expect(gets).toBe(0);
  });
});

describe('model pieces', () => {
  it('stacks overlapping tasks of one worker into rows', () => {
    const lanes: Lane[] = [{ host: 'h', worker: 'w', slots: 1 }];
    const t = (id: string, start: number, end?: number): TaskView => ({
      id,
      stage: 0,
      state: end === undefined ? 'running' : 'done',
      lane: 0,
      start,
      ...(end !== undefined ? { end } : {}),
    });
    const tasks = [t('a', 0, 10), t('b', 5, 20), t('c', 10, 12), t('d', 11)];
    assignSlots(tasks, lanes, 30);
    expect(tasks.map((x) => x.slot)).toEqual([0, 1, 0, 2]);
    expect(lanes[0]?.slots).toBe(3);
  });

  it('spreads a task over the buckets it spans', () => {
    const m = {
      rowsIn: 0,
      rowsOut: 0,
      bytesIn: 0,
      bytesOut: 0,
      rows: 100,
      bytes: 10_000_000,
      gets: 100,
    };
    const tp = throughput([{ host: 'h', start: 0, end: 10_000, m, finished: true }], 10_000);
    expect(tp.stepMs).toBe(1000);
    expect(tp.t).toHaveLength(11);
    expect(tp.fleet.rowsPerS.slice(0, 10)).toEqual(new Array(10).fill(10));
    expect(tp.fleet.mbPerS[3]).toBe(1);
    expect(tp.fleet.finished[10]).toBe(1);
  });

  it('keeps user data out of the markup', () => {
    const model = buildReport({
      now: T0,
      pipeline: {
        file: '/p/pipeline.yaml',
        repo: 'o/r',
        revision: 'x',
        source: 's',
        state: 'st',
        bucket: 'b',
        stages: [],
      },
      graph: { tasks: new Map(), order: [], pending: [], stageOrder: [] },
      fingerprints: new Map(),
      markers: new Map(),
      bodies: new Map(),
      failures: new Map(),
      parts: new Map(),
      leases: [],
    });
    model.pipeline.repo = '</script><script>alert(1)</script>';
    const html = renderHtml(model, { js: 'void 0', css: '' });
    expect(html).not.toContain('<script>alert(1)');
    expect(scriptJson('</script>\u2028')).toBe('"\\u003c/script>\\u2028"');
    expect(JSON.parse(scriptJson({ a: '</x>' }))).toEqual({ a: '</x>' });
  });
});
