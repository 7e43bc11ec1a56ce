/**
 * Completion markers, part markers, the params archive and manifests, on top of the state store.
 *
 * A marker is written LAST, after the task's outputs are published and verified; it says what it
 * covers (fingerprint data, outputs with size and sha256, host, times, counts). Its key carries the
 * fingerprint and its component hashes, so one listing of `markers/` is the whole snapshot the
 * planner needs: ≤ one LIST page per 1,000 tasks, never one request per task.
 */
import { hostname } from 'node:os';
import type { Result } from '../../errors.js';
import { err, ok } from '../../errors.js';
import type { Fingerprint, FingerprintData } from '../../fingerprint.js';
import type { Manifest, TaskId, TaskInstance } from '../../model.js';
import { objectKey } from '../../model.js';
import type { MarkerRef } from '../../planner.js';
import type { ObjectStore } from '../stores/object-store.js';
import { forEachKey, listAll } from '../stores/object-store.js';
import {
  isFailureKey,
  manifestKey,
  MARKERS_PREFIX,
  markerKey,
  paramsKey,
  parseFailureKey,
  parseMarkerKey,
  partRecordKey,
  partRecordsPrefix,
  partsPrefix,
  PARTS_PREFIX,
  parsePartRecordKey,
} from './keys.js';
import { checkManifest, checkMarkerBody, checkPartRecord, parseJson } from './state-checks.js';

/** Which store an output lives in. */
export type StoreName = 'work' | 'bucket' | 'state';

/** One verified output. */
export interface OutputRecord {
  store: StoreName;
  key: string;
  size: number;
  sha256: string;
}

/** The JSON body of a completion marker. */
export interface MarkerBody {
  /** Layout version of this body. */
  schema: 1;
  task: string;
  fingerprint: string;
  /** The canonical data that was hashed, so two runs can be diffed. */
  fingerprintData: FingerprintData;
  outputs: OutputRecord[];
  /** Task-specific counters (rows, missing blobs, bytes…). */
  counts: Record<string, number>;
  host: string;
  worker: string;
  startedAt: string;
  finishedAt: string;
  /** 1 + the transient failures retried in the run that finished it (absent in older markers). */
  attempts?: number;
  stackflowVersion: string;
}

/** Every marker, and every task with a failure record, from one paginated listing. */
export async function snapshotState(
  state: ObjectStore,
): Promise<Result<{ markers: Map<TaskId, MarkerRef[]>; failures: Set<TaskId> }>> {
  const markers = new Map<TaskId, MarkerRef[]>();
  const failures = new Set<TaskId>();
  const listed = await forEachKey(state, MARKERS_PREFIX, (key) => {
    if (isFailureKey(key)) {
      const id = parseFailureKey(key);
      if (id !== undefined) failures.add(id);
      return;
    }
    const p = parseMarkerKey(key);
    if (p === undefined) return;
    const refs = markers.get(p.task);
    if (refs === undefined) markers.set(p.task, [p.ref]);
    else refs.push(p.ref);
  });
  if (!listed.ok) return listed;
  return ok({ markers, failures });
}

/** Every marker, from one paginated listing. */
export async function snapshotMarkers(
  state: ObjectStore,
): Promise<Result<Map<TaskId, MarkerRef[]>>> {
  const r = await snapshotState(state);
  return r.ok ? ok(r.value.markers) : r;
}

export async function writeMarker(
  state: ObjectStore,
  t: TaskInstance,
  fp: Fingerprint,
  body: MarkerBody,
): Promise<Result<void>> {
  const r = await state.put(
    objectKey(markerKey(t, fp, body.worker, body.outputs)),
    JSON.stringify(body, null, 2) + '\n',
  );
  return r.ok ? ok(undefined) : r;
}

/** What reading one state object found: it, nothing, or something damaged (see state-checks.ts). */
export type StateRead<T> =
  { state: 'ok'; value: T } | { state: 'missing' } | { state: 'damaged'; why: string };

/**
 * Reads a marker and checks it against its key. Absent and damaged are values (the task is not
 * done); only a store that cannot answer is an error.
 */
export async function readMarkerState(
  state: ObjectStore,
  key: string,
): Promise<Result<StateRead<MarkerBody>>> {
  const r = await state.get(objectKey(key));
  if (!r.ok) return r.error.reason === 'not-found' ? ok({ state: 'missing' }) : r;
  const p = parseMarkerKey(key);
  const body = checkMarkerBody(r.value.toString('utf8'), {
    ...(p !== undefined ? { task: p.task, fingerprint: p.ref.fingerprint } : {}),
  });
  return ok(body.ok ? { state: 'ok', value: body.value } : { state: 'damaged', why: body.error });
}

/** A marker's body, or an error saying it is missing or damaged. */
export async function readMarker(state: ObjectStore, key: string): Promise<Result<MarkerBody>> {
  const r = await readMarkerState(state, key);
  if (!r.ok) return r;
  if (r.value.state === 'ok') return ok(r.value.value);
  return err(
    r.value.state === 'missing'
      ? { reason: 'not-found', key, message: `marker ${key} is missing` }
      : { reason: 'invalid-input', message: `marker ${key} is damaged (${r.value.why})` },
  );
}

export async function deleteKeys(
  state: ObjectStore,
  keys: readonly string[],
): Promise<Result<void>> {
  for (const k of keys) {
    const r = await state.delete(objectKey(k));
    if (!r.ok) return r;
  }
  return ok(undefined);
}

export const hostName = (): string => hostname();
export const workerId = (): string => `${hostName()}-${process.pid}`;

/**
 * Stores a stage's params template once per distinct value, so "which param" can be answered.
 * An entry that does not parse (a torn write) is replaced.
 */
export async function archiveParams(
  state: ObjectStore,
  stage: string,
  component: string,
  params: unknown,
): Promise<void> {
  const key = objectKey(paramsKey(stage, component));
  // Once per process and params set, not once per task.
  const memo = `${state.url}\0${key}`;
  if (archived.has(memo)) return;
  const have = await state.get(key);
  const intact = have.ok && isParamsEntry(have.value.toString('utf8'));
  // Best effort (the archive serves `explain`; a run never depends on it), so Results end here:
  // a failed delete shows as a failed create-only put below, and an entry that could not be
  // written is not remembered, so the next task of the stage tries again.
  if (have.ok && !intact) await state.delete(key);
  if (!intact) {
    // Create-only: a concurrent writer of the same key wrote the same bytes.
    const put = await state.put(key, JSON.stringify(params) + '\n', { ifNoneMatch: '*' });
    if (!put.ok && put.error.reason !== 'precondition-failed') return;
  }
  archived.add(memo);
}

const archived = new Set<string>();

const isParamsEntry = (text: string): boolean => {
  const j = parseJson(text);
  return j.ok && typeof j.value === 'object' && j.value !== null && !Array.isArray(j.value);
};

/**
 * Reads archived params templates for the given `<stage>/<component>` ids. Absent ones are
 * skipped; damaged ones too (a damaged entry only costs the detail of a params-changed reason),
 * and returned in `damaged`, by key.
 */
export async function readParamsArchive(
  state: ObjectStore,
  ids: Iterable<string>,
): Promise<{ params: Map<string, unknown>; damaged: string[] }> {
  const params = new Map<string, unknown>();
  const damaged: string[] = [];
  for (const id of ids) {
    const slash = id.lastIndexOf('/');
    const key = paramsKey(id.slice(0, slash), id.slice(slash + 1));
    const r = await state.get(objectKey(key));
    if (!r.ok) continue;
    const text = r.value.toString('utf8');
    if (isParamsEntry(text)) params.set(id, JSON.parse(text));
    else damaged.push(key);
  }
  return { params, damaged };
}

export async function writeManifest(
  state: ObjectStore,
  fp: string,
  m: Manifest,
): Promise<Result<OutputRecord>> {
  const key = manifestKey(m.language, fp);
  const r = await state.put(objectKey(key), JSON.stringify(m, null, 2) + '\n');
  if (!r.ok) return r;
  return ok({ store: 'state', key, size: r.value.size, sha256: r.value.sha256 ?? '' });
}

/** A language's manifest at a discover fingerprint: absent, damaged or there. */
export async function readManifest(
  state: ObjectStore,
  language: string,
  fp: string,
): Promise<Result<StateRead<Manifest>>> {
  const r = await state.get(objectKey(manifestKey(language, fp)));
  if (!r.ok) return r.error.reason === 'not-found' ? ok({ state: 'missing' }) : r;
  const m = checkManifest(r.value.toString('utf8'), language);
  return ok(m.ok ? { state: 'ok', value: m.value } : { state: 'damaged', why: m.error });
}

/** One finished part of a multi-part task (pack). */
export interface PartRecord {
  part: number;
  total: number;
  outputs: OutputRecord[];
  counts: Record<string, number>;
}

/**
 * Per-part markers of one task at one fingerprint: an interrupted pack resumes at the first part
 * without a record. Scoped by fingerprint, so parts of an older configuration never count. A
 * record that does not parse or match its key is deleted and reported (`onDamaged`): its part is
 * simply redone.
 */
export class PartLedger {
  private readonly prefix: string;
  private readonly key: (part: number) => string;
  /** Set once the task used its part records: only then can there be any to clear. */
  private used = false;
  constructor(
    private readonly state: ObjectStore,
    private readonly task: Pick<TaskInstance, 'stage' | 'language' | 'file'>,
    fp: Pick<Fingerprint, 'hash'>,
    private readonly onDamaged: (message: string) => void = () => undefined,
  ) {
    this.prefix = partRecordsPrefix(task, fp);
    this.key = (part) => partRecordKey(task, fp, part);
  }

  /** All intact recorded parts (one listing, then a read per recorded part). */
  async load(): Promise<Result<Map<number, PartRecord>>> {
    this.used = true;
    const out = new Map<number, PartRecord>();
    const listed = await listAll(this.state, this.prefix);
    if (!listed.ok) return listed;
    for (const o of listed.value) {
      const r = await this.state.get(o.key);
      if (!r.ok) {
        if (r.error.reason === 'not-found') continue;
        return r;
      }
      const part = parsePartRecordKey(o.key)?.part ?? -1;
      const rec = checkPartRecord(r.value.toString('utf8'), part);
      if (rec.ok) {
        out.set(rec.value.part, rec.value);
        continue;
      }
      const d = await this.state.delete(o.key);
      if (!d.ok) return d;
      this.onDamaged(`part record ${o.key} was damaged (${rec.error}): its part is redone`);
    }
    return ok(out);
  }

  async record(rec: PartRecord): Promise<Result<void>> {
    this.used = true;
    const r = await this.state.put(objectKey(this.key(rec.part)), JSON.stringify(rec) + '\n');
    return r.ok ? ok(undefined) : r;
  }

  /** Drops a record whose part turned out damaged or gone, so no later run trusts it. */
  async forget(part: number): Promise<Result<void>> {
    return this.state.delete(objectKey(this.key(part)));
  }

  /** Drops part records of this task left by other fingerprints (an older configuration). */
  async clearOthers(): Promise<Result<number>> {
    const taskPrefix = partsPrefix(this.task);
    const keys: string[] = [];
    const listed = await forEachKey(this.state, taskPrefix, (key) => {
      if (!key.startsWith(this.prefix)) keys.push(key);
    });
    if (!listed.ok) return listed;
    const r = await deleteKeys(this.state, keys);
    return r.ok ? ok(keys.length) : r;
  }

  /** Drops the part records once the task marker covers them, or before a forced rerun. */
  async clear(opts: { always?: boolean } = {}): Promise<Result<void>> {
    if (!this.used && opts.always !== true) return ok(undefined);
    const keys: string[] = [];
    const listed = await forEachKey(this.state, this.prefix, (key) => keys.push(key));
    if (!listed.ok) return listed;
    return deleteKeys(this.state, keys);
  }
}

/** Every task with part records, and their keys, from one listing of `parts/`. */
export async function listPartRecords(state: ObjectStore): Promise<Result<Map<TaskId, string[]>>> {
  const out = new Map<TaskId, string[]>();
  const listed = await forEachKey(state, PARTS_PREFIX, (key) => {
    const id = parsePartRecordKey(key)?.task;
    if (id === undefined) return;
    const keys = out.get(id);
    if (keys === undefined) out.set(id, [key]);
    else keys.push(key);
  });
  if (!listed.ok) return listed;
  return ok(out);
}
