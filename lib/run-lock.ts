/**
 * EFFECTS. The state lock of a plain `run`: two plain runs on one state never run the same tasks
 * twice; the second waits, saying who holds the state, and then finds the work done. (Workers
 * and shards share a state by design and take no lock; see lib/leases.ts.)
 *
 * It is the lease protocol of lib/leases.ts on one well-known key, `locks/run/e<epoch:8>.json`:
 * - acquire: a create-only put of epoch 0, or of epoch E+1 when the latest epoch E is stale
 *   (its heartbeat is older than its TTL by the store's clock), or when its holder is a process
 *   of this very host that no longer exists (a run killed with -9: no need to wait a TTL).
 *   Of any number of racers exactly one create succeeds.
 * - heartbeat: the holder rewrites its epoch every TTL/4 and checks that no later epoch exists;
 *   a holder that was taken over, or whose heartbeats stopped landing for half a TTL, aborts its
 *   run (self-fencing) before anyone may take over.
 * - release: the holder deletes its epoch, then the older ones, from the top down.
 * Cost per run: one listing and one put to take it, one delete per epoch to give it back.
 * Stores that ignore create-only puts (`stackflow doctor` says which) get a best-effort lock: the
 * holder reads its epoch back and stands aside if another process overwrote it.
 */
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Result } from './errors.js';
import { ok } from './errors.js';
import type { ObjectStore } from './io/stores/object-store.js';
import { EpochHolder } from './epoch-holder.js';
import { isStale, StoreClock } from './leases.js';
import type { ObjectKey } from './model.js';
import { objectKey } from './model.js';
import { parseRunLockKey, RUN_LOCK_PREFIX, runLockKey } from './io/state/keys.js';

/** Who holds the state: the body of a lock epoch (never anything secret). */
export interface LockHolder {
  worker: string;
  host: string;
  pid: number;
  /** When the holder took the lock, by its clock (display only). */
  since: string;
  /** How long the holder may stay silent before others may take over. */
  ttlMs: number;
  /** A random token: tells the holder's own epoch from an overwrite on stores without create-only. */
  token: string;
}

export interface RunLock {
  /** Aborts when the lock was lost (taken over, or heartbeats not landing): stop the run. */
  readonly signal: AbortSignal;
  release(): Promise<void>;
}

export interface LockOptions {
  worker: string;
  ttlMs: number;
  /** Pause between attempts while another run holds the state. */
  pollMs: number;
  signal: AbortSignal;
  /** Told each time a new holder is found in the way. */
  onWait: (holder: LockHolder) => void;
  /** Told when the lock is taken over from a dead or silent holder, or lost. */
  onEvent: (message: string) => void;
}

const epochKey = (e: number) => objectKey(runLockKey(e));

/** Whether `pid` is a live process on this host (EPERM: alive, someone else's). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the state lock, waiting while another live run holds it. Resolves to undefined when
 * `signal` aborts first.
 */
export async function acquireRunLock(
  state: ObjectStore,
  o: LockOptions,
): Promise<Result<RunLock | undefined>> {
  const clock = new StoreClock(state);
  const host = hostname();
  let lastHolder = '';
  for (;;) {
    if (o.signal.aborted) return ok(undefined);
    const page = await state.list(RUN_LOCK_PREFIX);
    if (!page.ok) return page;
    const epochs = page.value.objects
      .flatMap((x) => {
        const e = parseRunLockKey(x.key);
        return e === undefined ? [] : [{ epoch: e, key: x.key, modified: x.modified }];
      })
      .sort((a, b) => a.epoch - b.epoch);
    const latest = epochs.at(-1);
    let next = 0;
    if (latest !== undefined) {
      const holder = await readHolder(state, latest.key);
      const now = await clock.now();
      if (!now.ok) return now;
      const ttl = holder?.ttlMs ?? o.ttlMs;
      const entry = { ...latest, task: '', fingerprint: '' };
      const dead = holder !== undefined && holder.host === host && !alive(holder.pid);
      if (!dead && !isStale(entry, now.value, ttl) && holder !== undefined) {
        const who = `${holder.worker}@${holder.since}`;
        if (who !== lastHolder) o.onWait(holder);
        lastHolder = who;
        await pause(o.pollMs, o.signal);
        continue;
      }
      if (holder === undefined && !isStale(entry, now.value, ttl)) {
        // Being written this very moment (or unreadable): look again shortly.
        await pause(o.pollMs, o.signal);
        continue;
      }
      if (holder !== undefined) {
        o.onEvent(
          dead
            ? `took over the state lock of pid ${String(holder.pid)} on this host (${holder.worker}): that process no longer exists`
            : `took over the state lock of ${holder.worker} on ${holder.host}: it stopped heartbeating for over ${String(ttl / 1000)} s`,
        );
      }
      next = latest.epoch + 1;
    }
    const body: LockHolder = {
      worker: o.worker,
      host,
      pid: process.pid,
      since: new Date().toISOString(),
      ttlMs: o.ttlMs,
      token: Math.random().toString(36).slice(2),
    };
    const key = epochKey(next);
    const sentAt = performance.now();
    const put = await state.put(key, JSON.stringify(body) + '\n', { ifNoneMatch: '*' });
    if (!put.ok) {
      if (put.error.reason === 'precondition-failed') continue; // another run won the race
      return put;
    }
    const back = await readHolder(state, key);
    if (back?.token !== body.token) continue; // overwritten: a store without create-only puts
    const lock = new HeldLock(state, o, {
      key,
      body,
      older: epochs.map((e) => e.key),
      sentAt,
    });
    lock.start();
    return ok(lock);
  }
}

async function readHolder(state: ObjectStore, key: string): Promise<LockHolder | undefined> {
  const r = await state.get(objectKey(key));
  if (!r.ok) return undefined;
  try {
    const b = JSON.parse(r.value.toString('utf8')) as Partial<LockHolder>;
    return typeof b.worker === 'string' &&
      typeof b.host === 'string' &&
      typeof b.pid === 'number' &&
      typeof b.since === 'string' &&
      typeof b.ttlMs === 'number'
      ? {
          worker: b.worker,
          host: b.host,
          pid: b.pid,
          since: b.since,
          ttlMs: b.ttlMs,
          token: String(b.token),
        }
      : undefined;
  } catch {
    return undefined;
  }
}

async function pause(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await sleep(ms * (0.75 + Math.random() / 2), undefined, { signal });
  } catch {
    // interrupted: the caller sees signal.aborted
  }
}

/** The epoch a run just created. */
interface WonEpoch {
  key: ObjectKey;
  body: LockHolder;
  /** The older epochs this one replaced; deleted after it, top down. */
  older: string[];
  /** performance.now() when its create was sent (heartbeats are timed from there). */
  sentAt: number;
}

/** The held lock: an epoch holder (heartbeat, fence, release) with the lock's messages. */
class HeldLock implements RunLock {
  private readonly holder: EpochHolder;

  constructor(state: ObjectStore, o: LockOptions, won: WonEpoch) {
    const { key, body, older, sentAt } = won;
    this.holder = new EpochHolder({
      state,
      key,
      epoch: parseRunLockKey(key) ?? 0,
      dir: RUN_LOCK_PREFIX,
      parseEpoch: parseRunLockKey,
      ttlMs: o.ttlMs,
      sentAt,
      older,
      rival: 'run',
      body: () => JSON.stringify(body) + '\n',
      onLost: (why) => {
        o.onEvent(
          `lost the state lock: ${why}; stopping (no marker is written for unfinished tasks)`,
        );
      },
      abortReason: (why) => new Error(`state lock lost: ${why}`),
    });
  }

  get signal(): AbortSignal {
    return this.holder.signal;
  }

  start(): void {
    this.holder.start();
  }

  release(): Promise<void> {
    return this.holder.release(false);
  }
}
