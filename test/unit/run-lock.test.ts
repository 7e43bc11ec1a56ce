/**
 * The state lock holds its epoch the way a task's lease does (lib/epoch-holder.ts): a released
 * lock leaves nothing, a second run waits while the first holds it, and a holder whose
 * heartbeats hang stops itself at half its TTL, before anyone may take the state over.
 */
import { describe, expect, it, vi } from 'vitest';
import { MemoryStore } from '../../lib/io/stores/memory-store.js';
import type { LockHolder, RunLock } from '../../lib/run-lock.js';
import { acquireRunLock } from '../../lib/run-lock.js';

const options = (ttlMs: number, events: string[], waits: LockHolder[] = []) => ({
  worker: 'w',
  ttlMs,
  pollMs: 20,
  signal: new AbortController().signal,
  onWait: (h: LockHolder) => waits.push(h),
  onEvent: (m: string) => events.push(m),
});

async function take(store: MemoryStore, o: ReturnType<typeof options>): Promise<RunLock> {
  const r = await acquireRunLock(store, o);
  if (!r.ok || r.value === undefined) throw new Error('no lock');
  return r.value;
}

describe('the state lock', () => {
  it('a second run waits for the first, then takes the lock; a release leaves nothing', async () => {
    const store = new MemoryStore();
    const first = await take(store, options(10_000, []));
    const waits: LockHolder[] = [];
    const second = take(store, options(10_000, [], waits));
    await vi.waitFor(() => {
      expect(waits).toHaveLength(1);
    });
    await first.release();
    await (await second).release();
    const left = await store.list('locks/');
    expect(left.ok && left.value.objects).toEqual([]);
  });

  it('a holder whose heartbeats hang stops itself at half its TTL', async () => {
    const inner = new MemoryStore();
    let hang = false;
    const store = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'put') {
          const put: MemoryStore['put'] = (key, body, opts) =>
            hang && opts?.ifNoneMatch === undefined && key.startsWith('locks/')
              ? new Promise(() => undefined)
              : target.put(key, body, opts);
          return put;
        }
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const events: string[] = [];
    const lock = await take(store, options(1_000, events));
    hang = true;
    const t0 = performance.now();
    await vi.waitFor(
      () => {
        expect(lock.signal.aborted).toBe(true);
      },
      { timeout: 4_000, interval: 20 },
    );
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(events.join('\n')).toMatch(/lost the state lock: its heartbeats stopped landing/);
    await lock.release();
  });
});
