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
import { heldKey, LeaseClaims, StoreClock } from '../../lib/leases.js';
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
  it('a finished claim stays: a late planner finds the marker, and never adds an epoch', async () => {
    const store = new MemoryStore();
    const fp = fingerprint('r1');
    const a = await won(claims(store, 'a').claim(task, fp));
    await store.put(objectKey(markerKey(task, fp, 'a')), '{}');
    await a.release('done');
    // Its view of the state (the round's listing) shows the marker: done, without a request.
    const late = claims(store, 'b');
    await late.held();
    expect(await late.claim(task, fp)).toEqual({ ok: true, value: { kind: 'done', seen: true } });
    // Once the record is stale too: still done, and no takeover epoch is written.
    advance(TTL + 2_000);
    expect(kind(await claims(store, 'c').claim(task, fp))).toBe('done');
    const fp16 = fp.hash.slice(0, 16);
    expect(await leaseKeys(store)).toEqual([`${fp16}/e00000000.json`]);
  });

  it('a marker the plan knew (outputs missing) does not make the task done: it is taken over once stale', async () => {
    const store = new MemoryStore();
    const fp = fingerprint('r1');
    const a = await won(claims(store, 'a').claim(task, fp));
    const marker = markerKey(task, fp, 'a');
    await store.put(objectKey(marker), '{}');
    await a.release('done');
    // The plan saw this marker and runs the task again (an output went missing).
    expect(kind(await claims(store, 'b').claim(task, fp, [marker]))).toBe('held');
    advance(TTL + 2_000);
    const b = await won(claims(store, 'b').claim(task, fp, [marker]));
    await b.release('done');
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

describe("a worker's view of the state", () => {
  /** Counts full listings of the leases and of the markers (the view's refreshes). */
  function counting(inner: MemoryStore): {
    store: MemoryStore;
    views: { n: number; markers: number };
  } {
    const views = { n: 0, markers: 0 };
    const store = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'list') {
          const list: MemoryStore['list'] = (prefix, opts) => {
            if (prefix === 'leases/') views.n++;
            if (prefix === 'markers/') views.markers++;
            return target.list(prefix, opts);
          };
          return list;
        }
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    return { store, views };
  }
  /** Lets background refreshes start (and a memory store answer them). */
  const settle = () => new Promise((r) => setTimeout(r, 10));

  it('is refreshed for lost claims, not by age alone; its markers every TTL/4 only', async () => {
    const ttl = 60_000;
    const inner = new MemoryStore();
    const { store, views } = counting(inner); // b's listings only
    const b = new LeaseClaims(store, { worker: 'b', host: 'h', ttlMs: ttl });
    const c = new LeaseClaims(inner, { worker: 'c', host: 'h', ttlMs: ttl });
    const t0 = performance.now();
    const at = (ms: number) => vi.spyOn(performance, 'now').mockReturnValue(t0 + ms);
    await b.held(); // the round's view
    expect(views).toEqual({ n: 1, markers: 1 });
    // 5 s later (older than the 2 s that used to refresh it), b wins every claim: the view
    // still answers right, so no listing.
    at(5_000);
    const held = [];
    for (let i = 0; i < 4; i++) held.push(await won(b.claim(task, fingerprint(`b${String(i)}`))));
    await settle();
    expect(views.n).toBe(1);
    // Claims c made since: each costs b a lost create. The leases' listing takes one page, so
    // a lost create starts one (the markers are not listed again: younger than TTL/4).
    for (let i = 0; i < 3; i++) held.push(await won(c.claim(task, fingerprint(`c${String(i)}`))));
    expect(kind(await b.claim(task, fingerprint('c0')))).toBe('held');
    await settle();
    expect(views).toEqual({ n: 2, markers: 1 });
    // The refreshed view shows c1 and c2 taken: no create, no loss, no listing.
    for (const fp of ['c1', 'c2']) {
      const seen = await b.claim(task, fingerprint(fp));
      expect(seen.ok && seen.value).toEqual({ kind: 'held', seen: true });
    }
    await settle();
    expect(views).toEqual({ n: 2, markers: 1 });
    // Without losses both are listed every TTL/4 (the view answers only while younger than TTL/2).
    at(5_000 + ttl / 4 + 1);
    held.push(await won(b.claim(task, fingerprint('b9'))));
    await settle();
    expect(views).toEqual({ n: 3, markers: 2 });
    vi.restoreAllMocks();
    for (const h of held) await h.release('failed');
  });
});

/**
 * The state store of a holder under load: its heartbeat puts (plain puts of an epoch, never the
 * create-only claims) hang while `hang` is set, as a request queued behind a starved server or
 * retried for minutes does.
 */
function stalling(inner: MemoryStore): { store: MemoryStore; hang: { on: boolean } } {
  const hang = { on: false };
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'put') {
        const put: MemoryStore['put'] = (key, body, opts) =>
          hang.on && opts?.ifNoneMatch === undefined && /\/e\d{8}\.json$/.test(key)
            ? new Promise(() => undefined)
            : target.put(key, body, opts);
        return put;
      }
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { store, hang };
}

describe('a holder under load', () => {
  it('a heartbeat that hangs does not hold the fence back: the holder stops at half a TTL, before a takeover', async () => {
    const inner = new MemoryStore();
    const { store, hang } = stalling(inner);
    const fp = fingerprint('r1');
    const ttl = 1_000;
    const lost: string[] = [];
    const a = new LeaseClaims(store, {
      worker: 'a',
      host: 'h',
      ttlMs: ttl,
      onEvent: (m) => lost.push(m),
    });
    const held = await won(a.claim(task, fp));
    hang.on = true; // every heartbeat from now on is sent and never answered
    const t0 = performance.now();
    // Half a TTL after the last heartbeat that landed (the create), whatever is in flight.
    await vi.waitFor(
      () => {
        expect(held.signal.aborted).toBe(true);
      },
      { timeout: 4 * ttl, interval: 20 },
    );
    expect(performance.now() - t0).toBeLessThan(ttl);
    expect(lost.join('\n')).toMatch(/lost the lease of .*: its heartbeats stopped landing/);
    expect((await held.confirm()).ok).toBe(false);
    // Only now may another worker take over: a TTL of silence by the store's clock.
    advance(ttl + 2_000);
    const b = await won(
      new LeaseClaims(inner, { worker: 'b', host: 'h', ttlMs: ttl }).claim(task, fp),
    );
    await b.release('done');
    await held.release('failed');
  });

  it('heartbeats that land late (but land) keep the lease: the holder neither fences itself nor gets taken over', async () => {
    // Each heartbeat put and each listing takes 30% of a TTL, as at load 20 in the fleet
    // rehearsal. A holder that waited for one heartbeat's put and listing before sending the
    // next sent one every 60% of a TTL and fenced itself at half a TTL, with its task running.
    const inner = new MemoryStore();
    const ttl = 4_000;
    let slow = false;
    const delay = () => new Promise((r) => setTimeout(r, 0.3 * ttl));
    const store = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'put') {
          const put: MemoryStore['put'] = async (key, body, opts) => {
            if (slow && opts?.ifNoneMatch === undefined) await delay();
            return target.put(key, body, opts);
          };
          return put;
        }
        if (prop === 'list') {
          const list: MemoryStore['list'] = async (prefix, opts) => {
            if (slow) await delay();
            return target.list(prefix, opts);
          };
          return list;
        }
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const lost: string[] = [];
    const fp = fingerprint('r1');
    const held = await won(
      new LeaseClaims(store, {
        worker: 'a',
        host: 'h',
        ttlMs: ttl,
        onEvent: (m) => lost.push(m),
      }).claim(task, fp),
    );
    slow = true;
    await new Promise((r) => setTimeout(r, 1.5 * ttl));
    expect(lost).toEqual([]);
    expect(held.signal.aborted).toBe(false);
    expect((await held.confirm()).ok).toBe(true);
    // Nobody may take it over either: its last heartbeat is recent by the store's clock.
    const other = await new LeaseClaims(inner, { worker: 'b', host: 'h', ttlMs: ttl }).claim(
      task,
      fp,
    );
    expect(other.ok && other.value.kind).toBe('held');
    slow = false;
    await held.release('failed');
  }, 20_000);

  it("the store's clock is never estimated ahead: a put the store took late makes leases look younger, not older", async () => {
    const inner = new MemoryStore();
    // The store takes each write 600 ms after it was sent (a queue under load) and answers at once.
    const late = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'put') {
          const put: MemoryStore['put'] = async (key, body, opts) => {
            await new Promise((r) => setTimeout(r, 600));
            return target.put(key, body, opts);
          };
          return put;
        }
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    // The memory store's clock is this process's: the estimate must not run ahead of it.
    const est = await new StoreClock(late).now();
    if (!est.ok) throw new Error(est.error.message);
    expect(est.value - Date.now()).toBeLessThanOrEqual(20);
  });
});
