/**
 * The lease protocol's decisions on one store (the in-memory one; the S3 races are in
 * test/integration/workers.test.ts): a finished claim stays as the record of its fingerprint, so a
 * worker whose plan predates the marker cannot run the task again; a takeover checks the marker;
 * a failed claim is dropped; another fingerprint is another claim.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Fingerprint } from '../../lib/fingerprint.js';
import { computeFingerprint } from '../../lib/fingerprint.js';
import { MemoryStore } from '../../lib/io/stores/memory-store.js';
import type { ClaimOutcome } from '../../lib/leases.js';
import { heldKey, LeaseClaims } from '../../lib/leases.js';
import type { TaskInstance } from '../../lib/model.js';
import { objectKey } from '../../lib/model.js';
import type { Result } from '../../lib/errors.js';
import { markerKey } from '../../lib/io/state/keys.js';

const task = {
  id: 'pack:Go/train-00000-of-00001',
  stage: 'pack',
  kind: 'pack',
  language: 'Go',
  file: {
    path: 'data/Go/train-00000-of-00001.parquet',
    stem: 'train-00000-of-00001',
    size: 1,
    sha256: 'a'.repeat(64),
  },
  params: {},
  deps: [],
} as unknown as TaskInstance;

const fingerprint = (revision: string): Fingerprint =>
  computeFingerprint({
    task,
    implVersion: '1',
    tools: {},
    revision,
    stageParams: {},
    inputs: [],
    upstream: new Map(),
  });

const TTL = 10_000;
const claims = (store: MemoryStore, worker: string) =>
  new LeaseClaims(store, { worker, host: 'h', ttlMs: TTL });

function kind(r: Result<ClaimOutcome>): string {
  if (!r.ok) throw new Error(r.error.message);
  return r.value.kind;
}

async function won(r: Promise<Result<ClaimOutcome>>) {
  const c = await r;
  if (!c.ok || c.value.kind !== 'won') throw new Error(`expected a win, got ${JSON.stringify(c)}`);
  return c.value.claim;
}

const leaseKeys = async (store: MemoryStore): Promise<string[]> => {
  const page = await store.list('leases/');
  if (!page.ok) throw new Error(page.error.message);
  return page.value.objects.map((o) => o.key.split('/').slice(-2).join('/'));
};

/** Moves every clock (local and the memory store's) forward. */
function advance(ms: number): void {
  const now = Date.now();
  vi.spyOn(Date, 'now').mockReturnValue(now + ms);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('lease protocol', () => {
  it('a finished claim stays: a late planner loses epoch 0 and, once it is stale, finds the marker', async () => {
    const store = new MemoryStore();
    const fp = fingerprint('r1');
    const a = await won(claims(store, 'a').claim(task, fp));
    await store.put(objectKey(markerKey(task, fp, 'a')), '{}');
    await a.release('done');
    const late = claims(store, 'b');
    expect(kind(await late.claim(task, fp))).toBe('held');
    // It stays held by the record until the TTL passes, then the takeover sees the marker.
    advance(TTL + 2_000);
    expect(kind(await late.claim(task, fp))).toBe('done');
    const fp16 = fp.hash.slice(0, 16);
    expect(await leaseKeys(store)).toEqual([`${fp16}/e00000000.json`, `${fp16}/e00000001.json`]);
    // And again: every later takeover stands down too; nothing is ever run twice.
    advance(3 * TTL);
    expect(kind(await claims(store, 'c').claim(task, fp))).toBe('done');
  });

  it('a failed claim is dropped, so the task can be claimed again at once', async () => {
    const store = new MemoryStore();
    const fp = fingerprint('r1');
    const a = await won(claims(store, 'a').claim(task, fp));
    expect(kind(await claims(store, 'b').claim(task, fp))).toBe('held');
    await a.release('failed');
    expect(await leaseKeys(store)).toEqual([]);
    const b = await won(claims(store, 'b').claim(task, fp));
    await b.release('failed');
  });

  it('another fingerprint is another claim; held() names the fingerprint', async () => {
    const store = new MemoryStore();
    const [fp1, fp2] = [fingerprint('r1'), fingerprint('r2')];
    const a = await won(claims(store, 'a').claim(task, fp1));
    const held = await claims(store, 'b').held();
    expect(held.ok && [...held.value]).toEqual([heldKey(task.id, fp1.hash)]);
    await store.put(objectKey(markerKey(task, fp1, 'a')), '{}');
    await a.release('done');
    const b = await won(claims(store, 'b').claim(task, fp2));
    await b.release('done');
  });

  it('a takeover of a silent holder that never finished runs the task', async () => {
    const store = new MemoryStore();
    const fp = fingerprint('r1');
    const dead = await won(claims(store, 'dead').claim(task, fp));
    // The holder stops heartbeating (its process died): no release, no marker.
    advance(TTL + 2_000);
    const events: string[] = [];
    const rescuer = new LeaseClaims(store, {
      worker: 'rescuer',
      host: 'h',
      ttlMs: TTL,
      onEvent: (m) => events.push(m),
    });
    const claim = await won(rescuer.claim(task, fp));
    expect(events.join('\n')).toMatch(/took over .* \(epoch 1\)/);
    await dead.release('done'); // (only stops its heartbeat timer in this process)
    await claim.release('done');
  });

  it('a recent listing answers for leases it shows; a lease newer than it is live', async () => {
    const store = new MemoryStore();
    const [fp1, fp2] = [fingerprint('r1'), fingerprint('r2')];
    const a = await won(claims(store, 'a').claim(task, fp1));
    const b = claims(store, 'b');
    await b.held(); // the round's listing: shows a's lease of fp1
    const fromListing = await b.claim(task, fp1);
    expect(fromListing.ok && fromListing.value).toEqual({ kind: 'held', seen: true });
    // fp2 is claimed after b's listing: b loses the create and needs no look at the lease.
    const c = await won(claims(store, 'c').claim(task, fp2));
    const lost = await b.claim(task, fp2);
    expect(lost.ok && lost.value).toEqual({ kind: 'held' });
    await a.release('failed');
    await c.release('failed');
  });
});
