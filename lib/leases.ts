/**
 * EFFECTS. Who runs which task when several processes (on one host or forty) work on one graph.
 *
 * Two ways to claim, one interface (`Claims`):
 * - `LeaseClaims`: dynamic claiming through lease objects in the shared state store. The protocol
 *   needs only create-only puts (If-None-Match: *), which AWS S3, MinIO, R2, Ceph radosgw and the
 *   fs store all enforce; it never relies on If-Match or conditional deletes (which some stores
 *   ignore, see `stackflow doctor`).
 * - `ShardClaims`: static sharding (`--shard i/N`): a task belongs to one shard by a hash of its
 *   id, no store writes at all.
 *
 * The lease protocol. The leases of one task at one fingerprint live under
 * `leases/<task path>/<fingerprint:16>/` as epoch-numbered objects `e<epoch:8>.json` (the holder's
 * TTL is in the body: concurrent claimants with different TTLs must still race for the same key).
 * - claim: create-only put of epoch 0, or of epoch E+1 when the latest epoch E is stale. Of any
 *   number of concurrent claimers exactly one create succeeds.
 * - heartbeat: the holder rewrites its own epoch object (nobody else ever writes that key), which
 *   moves its last-modified time; after each heartbeat it lists the task's leases and stops the
 *   task if a later epoch exists (it was taken over).
 * - stale: the latest epoch's last-modified time, by the STORE's clock, is older than its TTL
 *   against the store's current time (measured by writing an object). Hosts' clocks are never
 *   compared with each other, so skew between hosts cannot make a lease look stale; only the
 *   rate of the local clock matters, over one TTL.
 * - self-fencing: a holder whose heartbeats have not landed for half a TTL stops its task before
 *   anyone may take it over, so two holders never run one task at once, and the marker of a task
 *   whose lease was lost is never written (`confirm()` is checked just before the marker).
 * - done: after the marker is written the holder only stops heartbeating. Its epochs stay, as a
 *   record that this fingerprint was claimed: a worker whose plan predates the marker loses the
 *   create of epoch 0 instead of running the task twice, without a marker read per claim. A
 *   takeover (epoch > 0) may follow a finished holder whose epoch went stale, so it checks the
 *   marker after winning and stands down if it exists. Nothing ever deletes an epoch of a
 *   fingerprint that has a marker, except `stackflow reset` together with the marker.
 * - failed: a holder whose task failed deletes its epochs (top down), so the task can be claimed
 *   again at once.
 * Per task that is one request (the create) beyond the outputs and the marker.
 */
import { randomUUID } from 'node:crypto';
import type { Result } from './errors.js';
import { err, ok } from './errors.js';
import type { Fingerprint } from './fingerprint.js';
import { sha256Hex } from './fingerprint.js';
import type { ObjectInfo, ObjectStore } from './io/stores/object-store.js';
import { forEachListed, readStoreClock } from './io/stores/object-store.js';
import { snapshotMarkers } from './io/state/markers.js';
import { EpochHolder } from './epoch-holder.js';
import type { TaskId, TaskInstance } from './model.js';
import { objectKey } from './model.js';
import {
  epochName,
  LEASE_FP_DIGITS,
  leaseDir,
  leaseDirId,
  LEASES_PREFIX,
  markerPrefix,
  parseLeaseKey,
  taskIdFromPath,
} from './io/state/keys.js';

/** A claim that was won: run the task under `signal`, `confirm()` before the marker, `release()`. */
export interface HeldClaim {
  /** Aborts when the claim is lost (taken over, or heartbeats failing past the safety margin). */
  readonly signal: AbortSignal;
  /** Ok while the claim is still ours; checked right before the marker is written. */
  confirm(): Promise<Result<void>>;
  /**
   * Ends the claim: `done` after the task's marker was written (the lease stays as the record
   * of the claim), `failed` otherwise (the lease is dropped so the task can be claimed again).
   */
  release(outcome: 'done' | 'failed'): Promise<void>;
}

export type ClaimOutcome =
  | { kind: 'won'; claim: HeldClaim }
  /**
   * Someone else is running it (or it is another shard's). `seen`: known from a recent listing
   * of the leases, without a request for this task.
   */
  | { kind: 'held'; by?: string; seen?: boolean }
  /** It was completed meanwhile (its marker exists). `seen`: known from a recent listing. */
  | { kind: 'done'; seen?: boolean };

export interface Claims {
  /** Short description for messages (`leases in s3://…`, `shard 2/8`). */
  readonly describe: string;
  /**
   * @param planned keys of the task's markers the plan knew (its run replaces them); any other
   *   marker at this fingerprint means the task was finished since the plan.
   */
  claim(
    task: TaskInstance,
    fp: Fingerprint,
    planned?: readonly string[],
  ): Promise<Result<ClaimOutcome>>;
  /**
   * Tasks that others visibly hold right now at a fingerprint, as `heldKey`s (one listing), so a
   * worker does not spend requests racing for them. A hint only: a claim is what decides.
   */
  held?(): Promise<Result<Set<string>>>;
}

/** The `held()` key of a task at a fingerprint (full hash or its 16-digit prefix). */
export const heldKey = (task: TaskId | string, fingerprint: string): string =>
  `${task}@${fingerprint.slice(0, LEASE_FP_DIGITS)}`;

/** One lease object as a listing shows it. */
export interface LeaseEntry {
  /** The task's path (layout.ts `taskPath`). */
  task: string;
  /** The first LEASE_FP_DIGITS hex digits of the fingerprint the lease was claimed at. */
  fingerprint: string;
  key: string;
  epoch: number;
  /** Last heartbeat by the store's clock, when the store reports it. */
  modified: number | undefined;
}

/** A listed lease object as a LeaseEntry (keys.ts parses the key); undefined for other keys. */
export function leaseEntry(info: ObjectInfo): LeaseEntry | undefined {
  const l = parseLeaseKey(info.key);
  return l === undefined ? undefined : { ...l, key: info.key, modified: info.modified };
}

/** The holder's TTL from a lease body (the reader's own as a fallback for unreadable bodies). */
export async function leaseTtl(
  state: ObjectStore,
  l: LeaseEntry,
  fallbackMs: number,
): Promise<{ ttlMs: number; body: Partial<LeaseBody> }> {
  const r = await state.get(objectKey(l.key));
  if (!r.ok) return { ttlMs: fallbackMs, body: {} };
  try {
    const body = JSON.parse(r.value.toString('utf8')) as Partial<LeaseBody>;
    return { ttlMs: typeof body.ttlMs === 'number' ? body.ttlMs : fallbackMs, body };
  } catch {
    return { ttlMs: fallbackMs, body: {} };
  }
}

/** The body of a lease object: who holds it (for `status`), never anything secret. */
export interface LeaseBody {
  task: string;
  fingerprint: string;
  worker: string;
  host: string;
  epoch: number;
  /** How long the holder may stay silent before others may take over. */
  ttlMs: number;
  /** Holder's clock, for display only. */
  claimedAt: string;
  heartbeat: number;
  heartbeatAt: string;
}

/**
 * The store's clock, estimated as local time plus an offset measured by writing an object.
 * Re-measured every few minutes; S3 stamps whole seconds, hence the margin in `isStale`.
 *
 * The estimate errs early, never late: the store stamped the write at some moment while the put
 * was in flight, so the offset is taken against the put's END (a slow put, a server queueing
 * requests under load, can only make the store look behind, which makes leases look younger).
 * Taking the middle instead would let a put that the store took late make every lease look
 * older by up to half that put's round trip, and a live holder's lease look stale early.
 */
export class StoreClock {
  private offset: number | undefined;
  private measuredAt = 0;
  constructor(
    private readonly store: ObjectStore,
    private readonly localNow: () => number = () => Date.now(),
  ) {}

  async now(): Promise<Result<number>> {
    const local = this.localNow();
    if (this.offset === undefined || local - this.measuredAt > 300_000) {
      const t = await readStoreClock(this.store, this.localNow);
      if (!t.ok) return t;
      const putEnd = t.value.localMs + t.value.roundTripMs / 2;
      this.offset = t.value.storeMs - putEnd;
      this.measuredAt = putEnd;
    }
    return ok(this.localNow() + this.offset);
  }
}

/** Stale: the last heartbeat is older than the TTL by the store's clock (+1 s of granularity). */
export const isStale = (l: LeaseEntry, storeNowMs: number, ttlMs: number): boolean =>
  l.modified !== undefined && storeNowMs - l.modified > ttlMs + 1000;

/**
 * Every lease in the state store, grouped by task path and fingerprint (one paginated listing),
 * each group's epochs in order. Keyed by `<task path>/<fingerprint:16>`.
 */
export async function listLeases(state: ObjectStore): Promise<Result<Map<string, LeaseEntry[]>>> {
  const out = new Map<string, LeaseEntry[]>();
  const listed = await forEachListed(state, LEASES_PREFIX, (o) => {
    const l = leaseEntry(o);
    if (l === undefined) return;
    const group = `${l.task}/${l.fingerprint}`;
    const list = out.get(group);
    if (list === undefined) out.set(group, [l]);
    else list.push(l);
  });
  if (!listed.ok) return listed;
  for (const list of out.values()) list.sort((a, b) => a.epoch - b.epoch);
  return ok(out);
}

export interface LeaseOptions {
  worker: string;
  host: string;
  /** How long a silent holder keeps its claim. */
  ttlMs: number;
  /** Told when this worker takes over a stale lease or loses one. */
  onEvent?: (message: string) => void;
}

/**
 * When the worker's view of the state (every lease and every marker, listed in the background)
 * is refreshed. A claim the view answers costs no request; one it cannot answer costs a create
 * that others may have won since (a lost claim: one request).
 * - The leases are listed again only when claims are being lost: once the creates lost since
 *   the last listing are at least as many as its pages (so these listings never cost more
 *   requests than the lost claims that prompted them), and no sooner than REFRESH_MS after it.
 *   Without losses, every TTL/4, so the view stays usable (it answers only while younger than
 *   half a TTL).
 * - The markers are listed every TTL/4, never for a lost claim. They answer only for a task
 *   whose lease looks stale (a live lease already says "not yours", finished or not), and a
 *   finished holder's lease stays live for most of a TTL after its last heartbeat (one every
 *   TTL/8 while it ran), so a markers listing younger than TTL/4 already shows it finished.
 *
 * Measured on the fleet rehearsal before this rule (both listings whenever the view was 2 s old,
 * or 0.5 s after a lost create): at the end of the run, where only small tasks are left, every
 * worker listed every lease and marker every ~1.4 s (a quarter of the store's requests, the
 * costliest ones), and the store's answers slowed from ~3 ms to 250–480 ms for every request.
 */
const REFRESH_MS = 500;

/** What the last listings of the state showed: every lease and every marker. */
interface View {
  /** performance.now() when the leases' listing was started: the view's age. */
  at: number;
  /** The pages the leases' listing took (see REFRESH_MS). */
  pages: number;
  /** performance.now() when the markers' listing was started (see REFRESH_MS). */
  markersAt: number;
  /** By `<task path>/<fingerprint:16>`, each group's epochs in order. */
  leases: Map<string, LeaseEntry[]>;
  /** Marker keys by `<task id>@<fingerprint>`. */
  markers: Map<string, string[]>;
}

export class LeaseClaims implements Claims {
  readonly describe: string;
  private readonly clock: StoreClock;
  /**
   * The last view of the state. While it is younger than half a TTL it answers three questions
   * without a request: a task it shows finished (a marker at this fingerprint the plan did not
   * know) is done; a task it shows with a live lease is held; a lease it does not show was
   * created after it, so it cannot be stale yet.
   */
  private seen: View | undefined;
  private refreshing: Promise<Result<View>> | undefined;
  /** Creates lost since the last refresh started (see REFRESH_MS). */
  private lostSinceView = 0;

  constructor(
    private readonly state: ObjectStore,
    private readonly o: LeaseOptions,
  ) {
    this.describe = `leases in ${state.url}`;
    this.clock = new StoreClock(state);
  }

  /**
   * @param planned keys of the task's markers the plan already knew (and its run replaces:
   *   outputs missing, state damaged). Any other marker at this fingerprint means another
   *   worker finished the task since the plan.
   */
  async claim(
    task: TaskInstance,
    fp: Fingerprint,
    planned: readonly string[] = [],
  ): Promise<Result<ClaimOutcome>> {
    const dir = leaseDir(task, fp);
    const view = this.view();
    if (view !== undefined && finished(view.markers.get(`${task.id}@${fp.hash}`), planned)) {
      return ok({ kind: 'done', seen: true });
    }
    const known = view?.leases.get(leaseDirId(dir))?.at(-1);
    if (known !== undefined) {
      const now = await this.clock.now();
      if (!now.ok) return now;
      if (!isStale(known, now.value, this.o.ttlMs)) return ok({ kind: 'held', seen: true });
    }
    // Epochs exist as a prefix 0..E (created in order, deleted from the top down, never by a
    // holder that lost), so an absent epoch 0 means no claim at this fingerprint, or only a
    // failed one: try it first, and list only when it exists.
    const first = await this.tryEpoch(task, fp, { dir, epoch: 0, older: [], planned });
    if (!first.ok || first.value !== undefined)
      return first.ok ? ok(first.value ?? { kind: 'held' }) : first;
    if (view !== undefined && known === undefined) {
      // Created since the view: live. Enough of these and the view is worth refreshing.
      this.lostSinceView++;
      this.refreshIfWorth();
      return ok({ kind: 'held' });
    }
    const current = await this.entries(dir);
    if (!current.ok) return current;
    const latest = current.value.at(-1);
    if (latest === undefined) return ok({ kind: 'held' }); // released meanwhile: next round
    const now = await this.clock.now();
    if (!now.ok) return now;
    // Cheap first: a heartbeat younger than the shortest possible TTL (1 s) is alive whatever
    // its holder's TTL; only older ones cost a read of the holder's own TTL.
    if (!isStale(latest, now.value, 1000)) return ok({ kind: 'held' });
    const { ttlMs } = await leaseTtl(this.state, latest, this.o.ttlMs);
    if (!isStale(latest, now.value, ttlMs)) return ok({ kind: 'held' });
    // Silent for a TTL: most often a holder that finished (its epochs stay as the record). One
    // look at the markers says so without adding an epoch.
    const done = await this.markerSince(task, fp, planned);
    if (!done.ok) return done;
    if (done.value) return ok({ kind: 'done' });
    const next = await this.tryEpoch(task, fp, {
      dir,
      epoch: latest.epoch + 1,
      older: current.value.map((l) => l.key),
      planned,
    });
    if (!next.ok) return next;
    if (next.value?.kind === 'won') {
      this.o.onEvent?.(
        `took over ${task.id} (epoch ${String(latest.epoch + 1)}): the previous holder stopped heartbeating for over ${String(ttlMs / 1000)} s`,
      );
    }
    return ok(next.value ?? { kind: 'held' });
  }

  /** Creates epoch `at.epoch`; undefined when it already exists (someone else created it). */
  private async tryEpoch(
    task: TaskInstance,
    fp: Fingerprint,
    at: {
      /** The lease dir of this task and fingerprint. */
      dir: string;
      epoch: number;
      /** Keys of the epochs it replaces (a takeover): deleted with it if the task fails. */
      older: string[];
      /** The markers the plan knew (see `claim`). */
      planned: readonly string[];
    },
  ): Promise<Result<ClaimOutcome | undefined>> {
    const { dir, epoch, older, planned } = at;
    const key = objectKey(dir + epochName(epoch));
    const body: LeaseBody = {
      task: task.id,
      fingerprint: fp.hash,
      worker: this.o.worker,
      host: this.o.host,
      epoch,
      ttlMs: this.o.ttlMs,
      claimedAt: new Date().toISOString(),
      heartbeat: 0,
      heartbeatAt: new Date().toISOString(),
    };
    const sentAt = performance.now();
    const put = await this.state.put(key, JSON.stringify(body), { ifNoneMatch: '*' });
    if (!put.ok) {
      return put.error.reason === 'precondition-failed' ? ok(undefined) : put;
    }
    const claim = new Lease(this.state, this.o, { dir, body, sentAt, older });
    // Epoch 0 is won only where nobody finished this fingerprint (a finished holder's epochs
    // stay). A takeover may follow a holder that finished and then went silent: check.
    if (epoch > 0) {
      const done = await this.markerSince(task, fp, planned);
      // Finished (or unknown): stand down keeping every epoch, ours included. Deleting the
      // older ones would let a late planner win epoch 0 and run a finished task again.
      if (!done.ok || done.value) await claim.release('done');
      if (!done.ok) return done;
      if (done.value) return ok({ kind: 'done' });
    }
    claim.start();
    return ok({ kind: 'won', claim });
  }

  /** Whether a marker at this fingerprint exists that the plan did not know (one listing). */
  private async markerSince(
    task: TaskInstance,
    fp: Fingerprint,
    planned: readonly string[],
  ): Promise<Result<boolean>> {
    const page = await this.state.list(markerPrefix(task, fp));
    if (!page.ok) return page;
    return ok(
      finished(
        page.value.objects.map((o) => o.key),
        planned,
      ),
    );
  }

  async held(): Promise<Result<Set<string>>> {
    const view = await this.refresh();
    if (!view.ok) return view;
    const out = new Set<string>();
    if (view.value.leases.size === 0) return ok(out);
    const now = await this.clock.now();
    if (!now.ok) return now;
    for (const entries of view.value.leases.values()) {
      const latest = entries.at(-1);
      const id = latest === undefined ? undefined : taskIdFromPath(latest.task);
      // Our own TTL as the yardstick: a lease that looks stale by it gets a real claim attempt.
      // (Finished tasks' leases are here too; the plan does not run those.)
      if (latest !== undefined && id !== undefined && !isStale(latest, now.value, this.o.ttlMs)) {
        out.add(heldKey(id, latest.fingerprint));
      }
    }
    return ok(out);
  }

  /**
   * Lists every lease, and every marker when the last markers' listing is TTL/4 old (both
   * paginated listings at once): the new view.
   */
  private refresh(): Promise<Result<View>> {
    if (this.refreshing !== undefined) return this.refreshing;
    const at = performance.now();
    this.lostSinceView = 0;
    const old = this.seen;
    const keep = old !== undefined && at - old.markersAt < this.o.ttlMs / 4 ? old : undefined;
    this.refreshing = Promise.all([
      listLeases(this.state),
      keep === undefined ? snapshotMarkers(this.state) : undefined,
    ])
      .then(([leases, markers]): Result<View> => {
        if (!leases.ok) return leases;
        if (markers !== undefined && !markers.ok) return markers;
        const byFp = keep?.markers ?? new Map<string, string[]>();
        for (const [id, refs] of markers?.value ?? []) {
          for (const r of refs) {
            const k = `${id}@${r.fingerprint}`;
            byFp.set(k, [...(byFp.get(k) ?? []), r.key]);
          }
        }
        const view = {
          at,
          leases: leases.value,
          markers: byFp,
          markersAt: keep?.markersAt ?? at,
          pages: pagesOf(leases.value),
        };
        if (this.seen === undefined || this.seen.at < at) this.seen = view;
        return ok(view);
      })
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  /**
   * Starts a refresh (in the background; a failed one only leaves the older view in place)
   * unless one is running, when the view is older than TTL/4, or when the creates lost since
   * the last one are at least its pages and it is older than REFRESH_MS (see REFRESH_MS).
   * (The markers' own TTL/4 is checked by `refresh`; the leases' TTL/4 comes first.)
   */
  private refreshIfWorth(): void {
    if (this.refreshing !== undefined) return;
    const v = this.seen;
    const age = v === undefined ? Infinity : performance.now() - v.at;
    const worth =
      age >= this.o.ttlMs / 4 ||
      (age >= REFRESH_MS && v !== undefined && this.lostSinceView >= v.pages);
    if (worth) this.refresh().catch(() => undefined);
  }

  /**
   * The last view, if younger than half a TTL (a lease it does not show must be too young to be
   * stale). A claim never waits for a listing: an outdated view only costs a create that loses
   * (then `held`), and enough of those refresh it.
   */
  private view(): View | undefined {
    this.refreshIfWorth();
    const v = this.seen;
    const age = v === undefined ? Infinity : performance.now() - v.at;
    return age < this.o.ttlMs / 2 ? v : undefined;
  }

  private async entries(dir: string): Promise<Result<LeaseEntry[]>> {
    const page = await this.state.list(dir);
    if (!page.ok) return page;
    const list = page.value.objects.flatMap((o) => leaseEntry(o) ?? []);
    return ok(list.sort((a, b) => a.epoch - b.epoch));
  }
}

/** The pages a listing of these leases took: one per 1,000 (at least one). */
function pagesOf(leases: ReadonlyMap<string, readonly LeaseEntry[]>): number {
  let n = 0;
  for (const l of leases.values()) n += l.length;
  return Math.max(1, Math.ceil(n / 1000));
}

/** A marker among `keys` that is not one the plan knew: the task was finished since. */
const finished = (keys: readonly string[] | undefined, planned: readonly string[]): boolean =>
  keys?.some((k) => !planned.includes(k)) === true;

/** One held lease: an epoch holder (heartbeat, fence, release) with the task's messages. */
class Lease implements HeldClaim {
  private readonly holder: EpochHolder;

  private readonly body: LeaseBody;

  constructor(
    state: ObjectStore,
    o: LeaseOptions,
    won: {
      /** The lease dir of its task and fingerprint. */
      dir: string;
      body: LeaseBody;
      /** performance.now() when its create was sent (heartbeats are timed from there). */
      sentAt: number;
      /** Keys of the older epochs this lease replaced; deleted with it when the task failed. */
      older: string[];
    },
  ) {
    const { dir, body, sentAt, older } = won;
    this.body = body;
    this.holder = new EpochHolder({
      state,
      key: objectKey(dir + epochName(body.epoch)),
      epoch: body.epoch,
      dir,
      parseEpoch: (key) => parseLeaseKey(key)?.epoch,
      ttlMs: o.ttlMs,
      sentAt,
      older,
      rival: 'worker',
      body: () => {
        this.body.heartbeat++;
        this.body.heartbeatAt = new Date().toISOString();
        return JSON.stringify(this.body);
      },
      onLost: (why) =>
        o.onEvent?.(`lost the lease of ${body.task}: ${why}; its marker will not be written`),
      abortReason: (why) => new Error(`lease lost: ${why}`),
    });
  }

  get signal(): AbortSignal {
    return this.holder.signal;
  }

  start(): void {
    this.holder.start();
  }

  confirm(): Promise<Result<void>> {
    const r = this.holder.confirm();
    return Promise.resolve(
      r.ok
        ? r
        : err({
            reason: 'aborted' as const,
            message: `lease of ${this.body.task} lost; another worker owns it now`,
          }),
    );
  }

  /** Done: the epochs stay as the record of this fingerprint's claim (see the file comment). */
  release(outcome: 'done' | 'failed'): Promise<void> {
    return this.holder.release(outcome === 'done');
  }
}

/** Static sharding: shard `index` of `count` takes the tasks whose id hashes to it. */
export class ShardClaims implements Claims {
  readonly describe: string;
  constructor(
    private readonly index: number,
    private readonly count: number,
  ) {
    this.describe = `shard ${String(index)}/${String(count)}`;
  }

  claim(task: TaskInstance): Promise<Result<ClaimOutcome>> {
    if (shardOfTask(task.id, this.count) !== this.index)
      return Promise.resolve(ok({ kind: 'held' }));
    const ac = new AbortController();
    return Promise.resolve(
      ok({
        kind: 'won',
        claim: {
          signal: ac.signal,
          confirm: () => Promise.resolve(ok(undefined)),
          release: () => Promise.resolve(),
        },
      }),
    );
  }
}

/**
 * The shard a task belongs to: a hash of its id, so the assignment never depends on which
 * languages a process has discovered yet (every process agrees, at every moment).
 */
export function shardOfTask(id: TaskId | string, count: number): number {
  return parseInt(sha256Hex(id).slice(0, 8), 16) % count;
}

/** `2/8` → { index: 2, count: 8 } (0-based index). */
export function parseShard(s: string): Result<{ index: number; count: number }> {
  const m = /^(\d+)\/(\d+)$/.exec(s.trim());
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (m === null || !Number.isInteger(count) || count < 1 || index >= count) {
    return err({
      reason: 'invalid-input',
      message: `--shard expects i/N with 0 ≤ i < N (e.g. 0/4), got ${JSON.stringify(s)}`,
    });
  }
  return ok({ index, count });
}

/** A worker id that is unique per process: host, pid and a random suffix. */
export const defaultWorkerId = (host: string): string =>
  `${host}-${String(process.pid)}-${randomUUID().slice(0, 4)}`;
