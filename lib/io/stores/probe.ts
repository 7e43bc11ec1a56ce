/**
 * What a store really enforces, measured by doing it. Conditions a store does not support are
 * usually IGNORED, not rejected (Ceph radosgw deletes despite a wrong If-Match; stock servers
 * overwrite despite If-None-Match: *), so a store's URL or its answers to plain requests say
 * nothing: only a refused conditional request proves a condition is enforced.
 *
 * `probeStore` runs real operations under a fresh `_probe/<random>/` prefix and removes them:
 *
 *   create-only   put If-None-Match:* twice → the second must be refused, the first kept
 *   if-match      put If-Match:<wrong>  → refused, object unchanged; If-Match:<right> → accepted
 *   cond. delete  delete If-Match:<wrong> → refused, object still there; <right> → deleted
 *   clock         one storeNow() reading, bracketed by the local clock
 *
 * `leaseSupport` turns a report into the claiming mode: dynamic leases need only create-only puts
 * (lib/leases.ts); without them, static sharding. `cachedProbe` keeps a report for 24 h under the
 * cache dir, so a run does not pay for a probe (a dozen requests) every time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ok } from '../../errors.js';
import type { Result } from '../../errors.js';
import { objectKey } from '../../model.js';
import type { ObjectKey } from '../../model.js';
import { readStoreClock } from './object-store.js';
import type { ObjectStore } from './object-store.js';
import { ensureDir } from '../fs/mkdirs.js';

/** What a probe found. Stored as JSON in the probe cache, so every field is plain data. */
export interface ProbeReport {
  /** The store probed (`ObjectStore.url`: never credentials). */
  url: string;
  /** PUT If-None-Match: * is refused when the key exists. What dynamic claiming needs. */
  createOnly: boolean;
  /** PUT If-Match refuses a wrong etag and accepts the etag the store itself returned. */
  ifMatch: boolean;
  /** DELETE If-Match refuses a wrong etag (keeping the object) and accepts the right one. */
  conditionalDelete: boolean;
  /** The store's clock against this host's, read once (see `readStoreClock`). */
  clock: {
    /** The store's time, ms since the epoch (whole seconds on S3). */
    storeNowMs: number;
    /** This host's time at the same moment (halfway through the write that read the clock). */
    localNowMs: number;
    /** `storeNowMs - localNowMs`: positive when the store is ahead. S3's flooring adds 0..-1 s. */
    skewMs: number;
  };
  /** When the probe ran, ISO 8601 by the local clock; the cache's age is measured from it. */
  probedAt: string;
  /**
   * What a boolean does not say: a condition answered with an error instead of a refusal, or a
   * refusal that changed the object anyway. Empty for a store that simply enforces or ignores.
   */
  notes: string[];
}

export interface ProbeOptions {
  /** The local clock (default Date.now): tests pin it. */
  now?: () => number;
}

/** How hosts share a graph on this store. */
export type LeaseSupport =
  | {
      dynamic: true;
      /** Epoch-numbered lease objects, each claimed with one create-only put (lib/leases.ts). */
      protocol: 'create-only-epochs';
    }
  | {
      dynamic: false;
      /** Why, and what to do instead (static sharding), for the user. */
      reason: string;
    };

/** A made-up etag in S3's form (a quoted md5) that no store hands out for the probe's bytes. */
const WRONG_ETAG = `"${'0'.repeat(32)}"`;

/** How a store answered one conditional request. */
type Answer = { kind: 'accepted' } | { kind: 'refused' } | { kind: 'rejected'; message: string };

/**
 * Classifies a conditional request's result. A refusal is `precondition-failed`; `invalid-input`
 * or `not-found` means the store answered with an error instead (e.g. 501 NotImplemented for the
 * header): not enforcement, but not a reason to give up either. Anything else (a network
 * failure) means the probe cannot conclude, and is returned as the failure.
 */
function answer(r: Result<unknown>): Result<Answer> {
  if (r.ok) return ok({ kind: 'accepted' });
  switch (r.error.reason) {
    case 'precondition-failed':
      return ok({ kind: 'refused' });
    case 'invalid-input':
    case 'not-found':
      return ok({ kind: 'rejected', message: r.error.message });
    default:
      return r;
  }
}

/** Whether `key` holds exactly `text` (a refused write must have left the object alone). */
async function holds(store: ObjectStore, key: ObjectKey, text: string): Promise<Result<boolean>> {
  const got = await store.get(key);
  if (!got.ok) return got.error.reason === 'not-found' ? ok(false) : got;
  return ok(got.value.toString('utf8') === text);
}

/** A capability's verdict plus, when it is not a plain "enforced" or "ignored", why. */
interface Finding {
  enforced: boolean;
  note?: string;
}

const enforced: Finding = { enforced: true };
const ignored: Finding = { enforced: false };
const noted = (note: string): Finding => ({ enforced: false, note });

async function probeCreateOnly(store: ObjectStore, key: ObjectKey): Promise<Result<Finding>> {
  const first = answer(await store.put(key, 'first', { ifNoneMatch: '*' }));
  if (!first.ok) return first;
  if (first.value.kind === 'refused') {
    return ok(noted('PUT If-None-Match: * was refused for a key that did not exist'));
  }
  if (first.value.kind === 'rejected') {
    return ok(noted(`PUT If-None-Match: * was answered with an error: ${first.value.message}`));
  }
  const second = answer(await store.put(key, 'second', { ifNoneMatch: '*' }));
  if (!second.ok) return second;
  switch (second.value.kind) {
    case 'accepted':
      return ok(ignored);
    case 'rejected':
      return ok(noted(`PUT If-None-Match: * was answered with an error: ${second.value.message}`));
    case 'refused': {
      const kept = await holds(store, key, 'first');
      if (!kept.ok) return kept;
      return ok(
        kept.value ? enforced : noted('a refused create-only put replaced the object anyway'),
      );
    }
  }
}

/** The note for a store that refuses even the etag it handed out itself. */
const ownEtagRefused = (what: string) =>
  `${what} with the etag the store returned was refused (some stores, e.g. Ceph radosgw, match only unquoted etags)`;

async function probeIfMatch(store: ObjectStore, key: ObjectKey): Promise<Result<Finding>> {
  const base = await store.put(key, 'v1');
  if (!base.ok) return base;
  const wrong = await store.put(key, 'v2', { ifMatch: WRONG_ETAG });
  const refusedWrong = answer(wrong);
  if (!refusedWrong.ok) return refusedWrong;
  if (refusedWrong.value.kind === 'accepted') return ok(ignored);
  if (refusedWrong.value.kind === 'rejected') {
    return ok(noted(`PUT If-Match was answered with an error: ${refusedWrong.value.message}`));
  }
  const kept = await holds(store, key, 'v1');
  if (!kept.ok) return kept;
  if (!kept.value) return ok(noted('a refused PUT If-Match replaced the object anyway'));
  const right = answer(await store.put(key, 'v3', { ifMatch: base.value.etag }));
  if (!right.ok) return right;
  return ok(right.value.kind === 'accepted' ? enforced : noted(ownEtagRefused('PUT If-Match')));
}

async function probeConditionalDelete(
  store: ObjectStore,
  key: ObjectKey,
): Promise<Result<Finding>> {
  const base = await store.put(key, 'delete me');
  if (!base.ok) return base;
  const wrong = answer(await store.delete(key, { ifMatch: WRONG_ETAG }));
  if (!wrong.ok) return wrong;
  if (wrong.value.kind === 'accepted') return ok(ignored);
  if (wrong.value.kind === 'rejected') {
    return ok(noted(`DELETE If-Match was answered with an error: ${wrong.value.message}`));
  }
  const kept = await holds(store, key, 'delete me');
  if (!kept.ok) return kept;
  if (!kept.value) return ok(noted('a refused DELETE If-Match deleted the object anyway'));
  const right = answer(await store.delete(key, { ifMatch: base.value.etag }));
  if (!right.ok) return right;
  return ok(right.value.kind === 'accepted' ? enforced : noted(ownEtagRefused('DELETE If-Match')));
}

/**
 * Probes what `store` enforces (see the file comment). A failure means the store could not be
 * used at all (unreachable, access denied, no such bucket), never that a condition is missing.
 */
export async function probeStore(
  store: ObjectStore,
  opts: ProbeOptions = {},
): Promise<Result<ProbeReport>> {
  const now = opts.now ?? Date.now;
  const base = `_probe/${randomBytes(8).toString('hex')}/`;
  const keys = {
    create: objectKey(`${base}create-only`),
    ifMatch: objectKey(`${base}if-match`),
    del: objectKey(`${base}delete-if-match`),
  };
  try {
    const createOnly = await probeCreateOnly(store, keys.create);
    if (!createOnly.ok) return createOnly;
    const ifMatch = await probeIfMatch(store, keys.ifMatch);
    if (!ifMatch.ok) return ifMatch;
    const del = await probeConditionalDelete(store, keys.del);
    if (!del.ok) return del;
    const clock = await readStoreClock(store, now);
    if (!clock.ok) return clock;
    const { storeMs } = clock.value;
    const localMs = Math.round(clock.value.localMs);
    return ok({
      url: store.url,
      createOnly: createOnly.value.enforced,
      ifMatch: ifMatch.value.enforced,
      conditionalDelete: del.value.enforced,
      clock: {
        storeNowMs: storeMs,
        localNowMs: localMs,
        skewMs: storeMs - localMs,
      },
      probedAt: new Date(now()).toISOString(),
      notes: [createOnly.value, ifMatch.value, del.value].flatMap((f) =>
        f.note === undefined ? [] : [f.note],
      ),
    });
  } finally {
    // Plain deletes, which every store honours; a failure leaves junk under _probe/, harmless.
    for (const key of Object.values(keys)) await store.delete(key);
  }
}

/** Dynamic claiming needs create-only puts and nothing else (lib/leases.ts); else, static shards. */
export function leaseSupport(report: ProbeReport): LeaseSupport {
  if (report.createOnly) return { dynamic: true, protocol: 'create-only-epochs' };
  return {
    dynamic: false,
    reason:
      `${report.url} does not enforce create-only puts (PUT If-None-Match: *), so two hosts ` +
      `could claim the same task: dynamic claiming (--worker) needs them. Split the work ` +
      `statically instead: run host i of N with --shard i/N (0-based: --shard 0/4 … --shard 3/4).`,
  };
}

/** How long a cached report is trusted: stores rarely change what they enforce. */
export const PROBE_CACHE_MS = 24 * 3_600_000;

export interface CachedProbeOptions extends ProbeOptions {
  /** Probe again even when the cache holds a fresh report (doctor, `--reprobe`). */
  reprobe?: boolean;
  /** How old a cached report may be (default 24 h). */
  maxAgeMs?: number;
}

/** `<cacheDir>/probes/<first 16 hex of sha256(url)>.json`: one file per store URL. */
export function probeCachePath(cacheDir: string, url: string): string {
  const name = createHash('sha256').update(url).digest('hex').slice(0, 16);
  return join(cacheDir, 'probes', `${name}.json`);
}

/**
 * `probeStore`, with the report kept under `cacheDir` and reused while younger than
 * `maxAgeMs` (a cached report's clock figures are as old as the report; leases never use them).
 * The cache is best effort: an unreadable or malformed file means a new probe, and a cache that
 * cannot be written costs only the next probe.
 */
export async function cachedProbe(
  store: ObjectStore,
  cacheDir: string,
  opts: CachedProbeOptions = {},
): Promise<Result<ProbeReport>> {
  const now = opts.now ?? Date.now;
  const path = probeCachePath(cacheDir, store.url);
  if (opts.reprobe !== true) {
    const cached = await readCached(path, store.url);
    const age = cached === undefined ? NaN : now() - Date.parse(cached.probedAt);
    // A report from the future (the local clock went back) is not trusted.
    if (cached !== undefined && age >= 0 && age < (opts.maxAgeMs ?? PROBE_CACHE_MS)) {
      return ok(cached);
    }
  }
  const report = await probeStore(store, opts);
  if (report.ok) await writeCached(path, report.value);
  return report;
}

async function readCached(path: string, url: string): Promise<ProbeReport | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined; // absent or unreadable: probe
  }
  try {
    const report = parseReport(JSON.parse(text) as unknown);
    // Two URLs whose hashes share 16 hex digits must not share a report.
    return report?.url === url ? report : undefined;
  } catch {
    return undefined; // not JSON: a torn or foreign file, replaced by the next probe
  }
}

/** Validates a cached report field by field; undefined when anything is off. */
function parseReport(v: unknown): ProbeReport | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const r = v as Record<string, unknown>;
  const c = r.clock as Record<string, unknown> | null | undefined;
  const num = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
  const bool = (x: unknown): x is boolean => typeof x === 'boolean';
  if (
    typeof r.url !== 'string' ||
    !bool(r.createOnly) ||
    !bool(r.ifMatch) ||
    !bool(r.conditionalDelete) ||
    typeof c !== 'object' ||
    c === null ||
    !num(c.storeNowMs) ||
    !num(c.localNowMs) ||
    !num(c.skewMs) ||
    typeof r.probedAt !== 'string' ||
    Number.isNaN(Date.parse(r.probedAt)) ||
    !Array.isArray(r.notes) ||
    !r.notes.every((n) => typeof n === 'string')
  ) {
    return undefined;
  }
  return {
    url: r.url,
    createOnly: r.createOnly,
    ifMatch: r.ifMatch,
    conditionalDelete: r.conditionalDelete,
    clock: { storeNowMs: c.storeNowMs, localNowMs: c.localNowMs, skewMs: c.skewMs },
    probedAt: r.probedAt,
    notes: r.notes,
  };
}

/** Writes the report through a temp file and a rename, so a reader never sees half of one. */
async function writeCached(path: string, report: ProbeReport): Promise<void> {
  const temp = `${path}.${String(process.pid)}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    await ensureDir(dirname(path));
    await writeFile(temp, `${JSON.stringify(report, null, 2)}\n`);
    await rename(temp, path);
  } catch {
    await rm(temp, { force: true }).catch(() => undefined);
  }
}
