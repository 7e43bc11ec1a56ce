/**
 * The probe's reading of odd answers, and the verdict and table built from a report: memory-store
 * fixtures that answer the way stores in the field do (radosgw's quoted-etag If-Match, a server
 * that answers 501 to If-None-Match, one that refuses but writes anyway).
 */
import { describe, expect, it } from 'vitest';
import { renderReport } from '../../lib/doctor.js';
import { err } from '../../lib/errors.js';
import type { Result } from '../../lib/errors.js';
import { MemoryStore } from '../../lib/io/stores/memory-store.js';
import type {
  Body,
  DeleteOptions,
  ObjectInfo,
  PutOptions,
} from '../../lib/io/stores/object-store.js';
import { leaseSupport, probeStore } from '../../lib/io/stores/probe.js';
import type { ProbeReport } from '../../lib/io/stores/probe.js';
import type { ObjectKey } from '../../lib/model.js';

function must<T>(r: Result<T>): T {
  if (!r.ok) throw new Error(`expected ok, got ${r.error.reason}: ${r.error.message}`);
  return r.value;
}

/** A memory store whose conditional answers a test rewrites. */
class OddStore extends MemoryStore {
  constructor(
    private readonly odd: {
      put?: (key: ObjectKey, body: Body, opts: PutOptions) => Promise<Result<ObjectInfo>> | null;
      delete?: (key: ObjectKey, opts: DeleteOptions) => Promise<Result<void>> | null;
    },
  ) {
    super('memory://odd');
  }
  override put(key: ObjectKey, body: Body, opts: PutOptions = {}): Promise<Result<ObjectInfo>> {
    return this.odd.put?.(key, body, opts) ?? super.put(key, body, opts);
  }
  override delete(key: ObjectKey, opts: DeleteOptions = {}): Promise<Result<void>> {
    return this.odd.delete?.(key, opts) ?? super.delete(key, opts);
  }
}

const refused = (key: string) =>
  Promise.resolve(err({ reason: 'precondition-failed' as const, key, message: `${key}: 412` }));

describe('probeStore on odd stores', () => {
  it('a store refusing even its own etags (radosgw and quoted etags) does not have If-Match', async () => {
    const store = new OddStore({
      put: (key, _b, o) => (o.ifMatch !== undefined ? refused(key) : null),
      delete: (key, o) => (o.ifMatch !== undefined ? refused(key) : null),
    });
    const report = must(await probeStore(store));
    expect(report).toMatchObject({ createOnly: true, ifMatch: false, conditionalDelete: false });
    expect(report.notes).toEqual([
      'PUT If-Match with the etag the store returned was refused (some stores, e.g. Ceph radosgw, match only unquoted etags)',
      'DELETE If-Match with the etag the store returned was refused (some stores, e.g. Ceph radosgw, match only unquoted etags)',
    ]);
    expect(must(await store.list('')).objects).toEqual([]);
  });

  it('a store answering If-None-Match with an error does not have create-only puts', async () => {
    const store = new OddStore({
      put: (_k, _b, o) =>
        o.ifNoneMatch !== undefined
          ? Promise.resolve(
              err({ reason: 'invalid-input' as const, message: 'put x: 501 NotImplemented' }),
            )
          : null,
    });
    const report = must(await probeStore(store));
    expect(report).toMatchObject({ createOnly: false, ifMatch: true, conditionalDelete: true });
    expect(report.notes).toEqual([
      'PUT If-None-Match: * was answered with an error: put x: 501 NotImplemented',
    ]);
    expect(leaseSupport(report).dynamic).toBe(false);
  });

  it('a refusal that wrote anyway counts as not enforced', async () => {
    const store: OddStore = new OddStore({
      put: (key, body, o) =>
        o.ifNoneMatch !== undefined && key.endsWith('create-only') && body === 'second'
          ? MemoryStore.prototype.put.call(store, key, body, {}).then(() => refused(key))
          : null,
    });
    const report = must(await probeStore(store));
    expect(report.createOnly).toBe(false);
    expect(report.notes).toEqual(['a refused create-only put replaced the object anyway']);
  });

  it('a network failure mid-probe is a failure, not a verdict, and the probe still cleans up', async () => {
    let puts = 0;
    const store = new OddStore({
      put: () =>
        ++puts === 4
          ? Promise.resolve(err({ reason: 'transient' as const, message: 'reset' }))
          : null,
    });
    const r = await probeStore(store);
    expect(r.ok ? 'ok' : r.error).toEqual({ reason: 'transient', message: 'reset' });
    expect(must(await store.list('')).objects).toEqual([]);
  });
});

const report = (over: Partial<ProbeReport> = {}): ProbeReport => ({
  url: 's3://bucket/state',
  createOnly: true,
  ifMatch: true,
  conditionalDelete: false,
  clock: { storeNowMs: 1_700_000_000_000, localNowMs: 1_700_000_001_260, skewMs: -1260 },
  probedAt: '2023-11-14T22:13:21.260Z',
  notes: [],
  ...over,
});

describe('leaseSupport', () => {
  it('needs create-only puts and nothing else', () => {
    for (const ifMatch of [true, false]) {
      for (const conditionalDelete of [true, false]) {
        expect(leaseSupport(report({ ifMatch, conditionalDelete }))).toEqual({
          dynamic: true,
          protocol: 'create-only-epochs',
        });
      }
    }
    const no = leaseSupport(report({ createOnly: false }));
    expect(no.dynamic).toBe(false);
    expect(!no.dynamic && no.reason).toContain('run host i of N with --shard i/N (0-based');
  });
});

describe('renderReport', () => {
  it('prints the capabilities, the skew, the notes and the verdict', () => {
    const r = report({ ifMatch: false, notes: ['PUT If-Match with the etag … was refused'] });
    expect(renderReport(r, leaseSupport(r))).toBe(
      [
        'stackflow doctor s3://bucket/state (probed 2023-11-14T22:13:21.260Z)',
        '',
        '  create-only puts      enforced  a lease claim is a create-only put: exactly one host wins each task',
        '  replace-if-etag puts  ignored   not needed: leases use create-only puts only',
        '  conditional deletes   ignored   not needed: a lease holder deletes only its own epochs',
        "  clock skew            -1.3 s    store minus this host, ±1 s: S3 times are whole seconds; lease ages use only the store's clock",
        '',
        '  note: PUT If-Match with the etag … was refused',
        '',
        '✅ dynamic claiming works: stackflow run --worker uses the create-only-epochs lease protocol',
        '',
      ].join('\n'),
    );
  });

  it('says why dynamic claiming is refused', () => {
    const r = report({
      url: 'file:///srv/state',
      createOnly: false,
      clock: { storeNowMs: 5, localNowMs: 5, skewMs: -20 },
    });
    const out = renderReport(r, leaseSupport(r)).split('\n');
    expect(out[2]).toBe(
      '  create-only puts      ignored   two hosts could win the same claim: dynamic claiming needs this',
    );
    expect(out[5]).toBe(
      "  clock skew            +0.0 s    store minus this host; lease ages use only the store's clock",
    );
    expect(out.at(-2)).toBe(
      '❌ dynamic claiming is refused: file:///srv/state does not enforce create-only puts (PUT If-None-Match: *), so two hosts could claim the same task: dynamic claiming (--worker) needs them. Split the work statically instead: run host i of N with --shard i/N (0-based: --shard 0/4 … --shard 3/4).',
    );
  });
});
