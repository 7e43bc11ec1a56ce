/**
 * PURE. Every key stackflow keeps in its state store, built and parsed here and nowhere else:
 * markers.ts, leases.ts, run-lock.ts, revision.ts, admin, status and the report all go through
 * these functions, so a shape changes in one place.
 *
 *   markers/<task>@<fingerprint>.c<code>.p<params>.i<inputs>[.o<n>-<digest>][.w<worker>].json
 *   markers/<task>@failed.json                   a task's last failure (for `status`)
 *   parts/<task>/<fingerprint>/<part:06d>.json   the finished parts of a task still running
 *   params/<stage>/<params component>.json       params templates by hash (for `explain`)
 *   manifests/<Language>/<discover fingerprint>.json
 *   revisions/<owner>/<name>/<ref>.json          the commit a branch or tag was pinned to
 *   leases/<task>/<fingerprint:16>/e<epoch:8>.json   a worker's claim on a task
 *   locks/run/e<epoch:8>.json                    the state lock of a plain run
 *
 * `<task>` is the task path `<stage>/<Language>/<stem>`: each segment URI-encoded (languages may
 * contain `+`, `(`, `.`), `@` for a stage without languages, no stem for a per-language task.
 * Keys the store layer reserves in ANY store, state included, are not state and live with their
 * owners: `_clock/` (the store clock, stores/object-store.ts) and `_probe/` (stores/probe.ts).
 */
import type { Fingerprint } from '../../fingerprint.js';
import { taskId } from '../../graph.js';
import type { TaskId, TaskInstance } from '../../model.js';
import { outputsSummary } from '../../outputs.js';
import type { MarkerRef } from '../../planner.js';

/** A task as its keys name it. */
export interface TaskNames {
  stage: string;
  language?: string;
  stem?: string;
}

type Instance = Pick<TaskInstance, 'stage' | 'language' | 'file'>;

const namesOf = (t: Instance): TaskNames => ({
  stage: t.stage,
  language: t.language,
  stem: t.file?.stem,
});

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** Encodes one path segment of a state key. */
export const seg = (s: string): string => encodeURIComponent(s);

/** `<stage>/<lang>/<stem>` (segments URI-encoded, `@` for no language): a task in state keys. */
export function taskPath(stage: string, language?: string, stem?: string): string {
  const parts = [seg(stage), language === undefined ? '@' : seg(language)];
  if (stem !== undefined) parts.push(seg(stem));
  return parts.join('/');
}

const instancePath = (t: Instance): string => taskPath(t.stage, t.language, t.file?.stem);

/** Inverse of taskPath: `stage/lang/stem` (as in state keys) → task id. */
export function taskIdFromPath(path: string): TaskId | undefined {
  const segs = path.split('/').map(safeDecode);
  const [stage, lang, stem] = segs;
  if (stage === undefined || lang === undefined || segs.length > 3) return undefined;
  return lang === '@' ? taskId(stage) : taskId(stage, lang, stem);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

// ── markers ──────────────────────────────────────────────────────────────────────────────────

export const MARKERS_PREFIX = 'markers/';

/**
 * `markers/<task>@<fingerprint>.c<code>.p<params>.i<inputs>[.o<n>-<digest>][.w<worker>].json`:
 * `o` summarizes the outputs the body lists (their count and a digest of store, key and size, see
 * outputs.ts), so the planner checks every output by size against its listings without reading
 * the body. The worker that completed the task is in the key too, so `status` counts work per
 * worker from the listing.
 * The task path's segments are URI-encoded, so `@` only ever separates it from the fingerprint.
 * One folder holds the markers of a stage's tasks in one language: on a filesystem store the
 * snapshot is one directory read per stage and language, not one per task.
 */
export function markerKey(
  t: TaskInstance,
  fp: Fingerprint,
  worker?: string,
  outputs?: readonly { store: string; key: string; size: number }[],
): string {
  const o = outputs === undefined ? undefined : outputsSummary(outputs);
  return (
    `${markerPrefix(t, fp)}c${fp.components.code}.p${fp.components.params}.i${fp.components.inputs}` +
    (o === undefined ? '' : `.o${String(o.count)}-${o.digest}`) +
    (worker === undefined ? '' : `.w${encodeURIComponent(worker)}`) +
    '.json'
  );
}

/** What every marker of this task at this fingerprint starts with, whoever wrote it. */
export const markerPrefix = (t: Instance, fp: Pick<Fingerprint, 'hash'>): string =>
  `${MARKERS_PREFIX}${instancePath(t)}@${fp.hash}.`;

/** A marker key after `markers/`: the task path, then what markerKey puts after it. */
const MARKER_FILE =
  /^(.+)@([0-9a-f]{64})\.c([0-9a-f]{8})\.p([0-9a-f]{8})\.i([0-9a-f]{8})(?:\.o(\d+)-([0-9a-f]{8}))?(?:\.w([^/]+))?\.json$/;
/** The layout before markers were grouped per stage and language (`<task path>/<fp>.…`), still read. */
const LEGACY_MARKER_FILE =
  /^(.+)\/([0-9a-f]{64})\.c([0-9a-f]{8})\.p([0-9a-f]{8})\.i([0-9a-f]{8})(?:\.w([^/]+))?\.json$/;

/** Inverse of markerKey: the task id and what the key says, or undefined for foreign keys. */
export function parseMarkerKey(key: string): { task: TaskId; ref: MarkerRef } | undefined {
  if (!key.startsWith(MARKERS_PREFIX)) return undefined;
  const rest = key.slice(MARKERS_PREFIX.length);
  const cur = MARKER_FILE.exec(rest);
  const m = cur ?? LEGACY_MARKER_FILE.exec(rest);
  if (m?.[1] === undefined) return undefined;
  const task = taskIdFromPath(m[1]);
  if (task === undefined) return undefined;
  const [count, digest, worker] = cur ? [m[6], m[7], m[8]] : [undefined, undefined, m[6]];
  return {
    task,
    ref: {
      key,
      fingerprint: m[2] ?? '',
      code: m[3] ?? '',
      params: m[4] ?? '',
      inputs: m[5] ?? '',
      ...(count !== undefined && digest !== undefined
        ? { outputs: { count: Number(count), digest } }
        : {}),
      ...(worker !== undefined ? { worker: safeDecode(worker) } : {}),
    },
  };
}

const FAILED = '@failed.json';

/**
 * The record of a task's last failure (for `status`), beside its markers so that one listing
 * finds both: `markers/<task>@failed.json`.
 */
export const failureKey = (t: TaskNames): string =>
  `${MARKERS_PREFIX}${taskPath(t.stage, t.language, t.stem)}${FAILED}`;

/** `failureKey` of a task instance. */
export const taskFailureKey = (t: Instance): string => failureKey(namesOf(t));

/** Whether `key` names a failure record (whatever its task path). */
export const isFailureKey = (key: string): boolean =>
  key.startsWith(MARKERS_PREFIX) && key.endsWith(FAILED);

/** The task whose failure record `key` is, or undefined when it is no failure record. */
export function parseFailureKey(key: string): TaskId | undefined {
  if (!key.startsWith(MARKERS_PREFIX) || !key.endsWith(FAILED)) return undefined;
  return taskIdFromPath(key.slice(MARKERS_PREFIX.length, -FAILED.length));
}

// ── part records ─────────────────────────────────────────────────────────────────────────────

export const PARTS_PREFIX = 'parts/';

/** Where a task's part records live, at every fingerprint (what `reset` drops). */
export const partsPrefix = (t: Instance): string => `${PARTS_PREFIX}${instancePath(t)}/`;

/** Where a task's part records live at one fingerprint. */
export const partRecordsPrefix = (t: Instance, fp: Pick<Fingerprint, 'hash'>): string =>
  `${partsPrefix(t)}${fp.hash}/`;

/** `parts/<task>/<fingerprint>/<part:06d>.json`. */
export const partRecordKey = (t: Instance, fp: Pick<Fingerprint, 'hash'>, part: number): string =>
  `${partRecordsPrefix(t, fp)}${pad(part, 6)}.json`;

/**
 * What a key under `parts/` names: the task and fingerprint, and the part number when the name
 * is a part record's (`<digits>.json`); undefined for a key outside any task's part records.
 */
export function parsePartRecordKey(
  key: string,
): { task: TaskId; fingerprint: string; part: number | undefined } | undefined {
  const m = /^parts\/(.+)\/([0-9a-f]{64})\/([^/]+)$/.exec(key);
  if (m?.[1] === undefined || m[2] === undefined || m[3] === undefined) return undefined;
  const task = taskIdFromPath(m[1]);
  if (task === undefined) return undefined;
  const n = /^(\d+)\.json$/.exec(m[3]);
  return { task, fingerprint: m[2], part: n?.[1] === undefined ? undefined : Number(n[1]) };
}

// ── params archive, manifests, revisions ─────────────────────────────────────────────────────

export const paramsKey = (stage: string, paramsComponent: string): string =>
  `params/${seg(stage)}/${paramsComponent}.json`;

export const manifestKey = (language: string, fingerprint: string): string =>
  `manifests/${seg(language)}/${fingerprint}.json`;

/**
 * `revisions/<owner>/<name>/<ref>.json`: the commit a symbolic revision (branch, tag) of a Hub
 * dataset was first resolved to on this state, which every later run on it uses
 * (lib/revision.ts). The ref is one encoded segment, so `refs/pr/1` stays one object.
 */
export function revisionKey(repo: string, ref: string): string {
  // `.` and `..` are not path segments a store should ever see.
  const part = (s: string): string => (/^\.+$/.test(s) ? s.replaceAll('.', '%2E') : seg(s));
  return `revisions/${repo.split('/').map(part).join('/')}/${part(ref)}.json`;
}

// ── leases and the run lock: epoch-numbered objects in a directory ──────────────────────────

/** `e<epoch:8>.json`: one epoch of a lease or of the run lock. */
export const epochName = (epoch: number): string => `e${pad(epoch, 8)}.json`;

export const LEASES_PREFIX = 'leases/';

/** Hex digits of the fingerprint in a lease's key. */
export const LEASE_FP_DIGITS = 16;

/** Where a task's leases live, at every fingerprint (what `reset` drops). */
export const taskLeasePrefix = (t: TaskNames): string =>
  `${LEASES_PREFIX}${taskPath(t.stage, t.language, t.stem)}/`;

/** `leases/<task>/<fingerprint:16>/`: the epochs of one task's claims at one fingerprint. */
export const leaseDir = (t: Instance, fp: Pick<Fingerprint, 'hash'>): string =>
  `${taskLeasePrefix(namesOf(t))}${fp.hash.slice(0, LEASE_FP_DIGITS)}/`;

/** `<task>/<fingerprint:16>`: a lease directory without `leases/` and the final `/`. */
export const leaseDirId = (dir: string): string => dir.slice(LEASES_PREFIX.length, -1);

/** Parses `leases/<task>/<fingerprint:16>/e<epoch:8>.json`; `task` is the task path. */
export function parseLeaseKey(
  key: string,
): { task: string; fingerprint: string; epoch: number } | undefined {
  const m = /^leases\/(.+)\/([0-9a-f]{16})\/e(\d{8})\.json$/.exec(key);
  if (m?.[1] === undefined || m[2] === undefined || m[3] === undefined) return undefined;
  return { task: m[1], fingerprint: m[2], epoch: Number(m[3]) };
}

/** The directory of the state lock's epochs. */
export const RUN_LOCK_PREFIX = 'locks/run/';

/** `locks/run/e<epoch:8>.json`. */
export const runLockKey = (epoch: number): string => `${RUN_LOCK_PREFIX}${epochName(epoch)}`;

/** Inverse of runLockKey. */
export function parseRunLockKey(key: string): number | undefined {
  const m = /^locks\/run\/e(\d{8})\.json$/.exec(key);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}
