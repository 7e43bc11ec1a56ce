/**
 * EFFECTS. One revision for the whole fleet: which commit of the dataset a run reads.
 *
 * A branch such as `main` moves (the-stack-v2's card records v2.1.0 in April 2024 and v2.2.0 in
 * 2026). Resolved afresh by every process, hosts started a day apart would pin different commits,
 * fingerprint differently and mix two versions of the dataset in one bucket. So the first
 * resolution of a symbolic revision is recorded in the state store, and every later run, worker
 * and shard on that state uses the recorded commit:
 *
 *   revision in the file / --revision      what the run uses                     the record
 *   ------------------------------------   -----------------------------------   -------------------
 *   a label, file:// mirror                the label                             none
 *   a 40-hex commit sha                    that sha (the user's decision)        untouched
 *   a ref, record present                  the recorded sha (+ a warning when    read
 *                                          the Hub now resolves it elsewhere)
 *   a ref, no record (or a damaged one)    the Hub's answer                      created (rewritten)
 *   --revision <ref>                       the Hub's answer                      overwritten, old and
 *                                                                                new sha printed
 *
 * - The record is `revisions/<owner>/<name>/<ref>.json` (lib/layout.ts) holding
 *   `{ref, sha, resolvedAt, host}`, written create-only (`If-None-Match: *`): of hosts resolving
 *   at once exactly one create succeeds, and the others read the winner's record and use it.
 * - A record that does not parse or does not match its key is damaged: never trusted, rewritten.
 * - Only commands that act for the fleet write it (a real `run`, `pin`); read-only ones (`status`,
 *   a dry run, `graph`, `explain`) use a record that exists and otherwise resolve without writing.
 * - Moving to another commit is explicit: `--revision <ref>` (re-resolved and re-recorded) or a
 *   sha written into pipeline.yaml (`stackflow pin`), then `stackflow reset`; never a silent
 *   switch.
 */
import type { Result } from './errors.js';
import { err, ok } from './errors.js';
import { isCommitSha } from './io/hub/hub.js';
import type { HubSource } from './io/hub/hub.js';
import type { ObjectStore } from './io/stores/object-store.js';
import { objectKey } from './model.js';
import type { Pipeline } from './model.js';
import type { Session } from './session.js';
import { revisionKey } from './io/state/keys.js';

/** The JSON body of a revision record. */
export interface RevisionRecord {
  /** Layout version of this body. */
  schema: 1;
  /** The Hub dataset repo (`owner/name`) the ref belongs to. */
  repo: string;
  /** The symbolic revision as written (`main`, `v2.1.0`, `refs/convert/parquet`). */
  ref: string;
  /** The commit sha it resolved to when recorded: what every run on this state uses. */
  sha: string;
  /** When it was resolved (ISO 8601, the recording host's clock; for people, not for logic). */
  resolvedAt: string;
  /** Which host recorded it. */
  host: string;
}

/** How the revision a command uses was decided. */
export type RevisionOrigin =
  /** A file:// mirror: the revision is a label, used as it is. */
  | 'mirror'
  /** A commit sha from the pipeline file or `--revision`. */
  | 'sha'
  /** The state's record of the ref. */
  | 'recorded'
  /** Resolved now and recorded by this command (first resolution, or a damaged record). */
  | 'new-record'
  /** Re-resolved because of `--revision <ref>` and recorded. */
  | 're-recorded'
  /** Resolved now, not recorded (a read-only command). */
  | 'unrecorded';

/** A line for the user: a note, or a warning that something differs from what they may expect. */
export interface RevisionNote {
  level: 'note' | 'warning';
  message: string;
}

/** The revision a command uses. */
export interface PinnedRevision {
  /** What was asked for: `--revision`'s value, else the pipeline's `dataset.revision`. */
  requested: string;
  /** True when `requested` came from `--revision`. */
  fromFlag: boolean;
  /** The commit sha every fingerprint and download uses (a mirror's label for a mirror). */
  commit: string;
  origin: RevisionOrigin;
  /** The record in effect after this command, for a ref on the Hub. */
  record?: RevisionRecord;
  notes: RevisionNote[];
}

export interface PinRevisionInput {
  /** The dataset as the pipeline file says. */
  dataset: Pipeline['dataset'];
  /** Stage names, for the `stackflow reset` advice. */
  stages: readonly string[];
  hub: Pick<HubSource, 'resolveRevision'>;
  /** The state store, which holds the records. */
  state: ObjectStore;
  /** `--revision`: a ref (re-resolved and re-recorded) or a sha (used for this command only). */
  override?: string;
  /** Whether this command may write the record (a real run, `pin`). */
  record: boolean;
  /** This host's name, for the record. */
  host: string;
  /** The pipeline file as the user named it, for messages. */
  file?: string;
  /** Injectable clock (tests). */
  now?: () => Date;
}

/** The `owner/name` a `hf://datasets/<owner>/<name>` source reads, else the dataset's `repo`. */
function hubRepo(dataset: Pipeline['dataset']): string {
  const m = /^hf:\/\/datasets\/([^/]+\/[^/]+?)\/?$/.exec(dataset.source);
  return m?.[1] ?? dataset.repo;
}

const when = (iso: string): string => `${iso.slice(0, 16).replace('T', ' ')} UTC`;

const recordedBy = (r: RevisionRecord): string =>
  `recorded in the state on ${when(r.resolvedAt)} by ${r.host}`;

/** What reading a record found. */
type Found =
  | { state: 'absent' }
  | { state: 'damaged'; why: string }
  | { state: 'present'; record: RevisionRecord };

/** Reads and checks the record at `key`; a store failure is an error, a bad body is `damaged`. */
async function readRecord(
  state: ObjectStore,
  key: string,
  repo: string,
  ref: string,
): Promise<Result<Found>> {
  const got = await state.get(objectKey(key));
  if (!got.ok) return got.error.reason === 'not-found' ? ok({ state: 'absent' }) : got;
  let body: unknown;
  try {
    body = JSON.parse(got.value.toString('utf8'));
  } catch {
    return ok({ state: 'damaged', why: 'not JSON' });
  }
  const why = recordProblem(body, repo, ref);
  return why === undefined
    ? ok({ state: 'present', record: body as RevisionRecord })
    : ok({ state: 'damaged', why });
}

/** Why `body` is not a valid record of `repo`@`ref`, or undefined when it is one. */
export function recordProblem(body: unknown, repo: string, ref: string): string | undefined {
  if (typeof body !== 'object' || body === null) return 'not an object';
  const r = body as Partial<Record<keyof RevisionRecord, unknown>>;
  if (r.schema !== 1) return `unknown schema ${JSON.stringify(r.schema)}`;
  if (r.repo !== repo) return `it names repo ${JSON.stringify(r.repo)}, not ${repo}`;
  if (r.ref !== ref) return `it names revision ${JSON.stringify(r.ref)}, not ${ref}`;
  if (typeof r.sha !== 'string' || !isCommitSha(r.sha)) return 'its sha is not a commit sha';
  if (typeof r.resolvedAt !== 'string' || Number.isNaN(Date.parse(r.resolvedAt)))
    return 'its resolvedAt is not a time';
  if (typeof r.host !== 'string' || r.host === '') return 'its host is missing';
  return undefined;
}

const encode = (r: RevisionRecord): string => `${JSON.stringify(r, null, 2)}\n`;

/**
 * Decides the commit a command uses (see the table at the top) and records it when this command
 * is the first to resolve the ref on this state. Store failures are errors (the state is
 * unusable); a Hub failure is an error only when no record exists to fall back on.
 */
export async function pinRevision(i: PinRevisionInput): Promise<Result<PinnedRevision>> {
  const fromFlag = i.override !== undefined;
  const requested = i.override ?? i.dataset.revision;
  const notes: RevisionNote[] = [];
  const base = { requested, fromFlag, notes };
  const file = i.file ?? 'pipeline.yaml';
  if (i.dataset.source.startsWith('file://')) {
    return ok({ ...base, commit: requested, origin: 'mirror' });
  }
  const repo = hubRepo(i.dataset);
  const reset = `stackflow reset ${i.stages.join(' ')}`;

  if (isCommitSha(requested)) {
    // The user's decision: checked against the Hub (it exists), never recorded over a ref.
    const sha = await i.hub.resolveRevision(requested);
    if (!sha.ok) return sha;
    const fileRef = i.dataset.revision;
    if (fromFlag && !isCommitSha(fileRef)) {
      const found = await readRecord(i.state, revisionKey(repo, fileRef), repo, fileRef);
      if (!found.ok) return found;
      if (found.value.state === 'present' && found.value.record.sha !== sha.value) {
        notes.push({
          level: 'note',
          message: `using commit ${sha.value} from --revision for this command only; the state records ${fileRef} as commit ${found.value.record.sha}, which runs without --revision use`,
        });
      }
    }
    return ok({ ...base, commit: sha.value, origin: 'sha' });
  }

  const key = revisionKey(repo, requested);
  let resolved: string | undefined;
  const resolve = async (): Promise<Result<string>> => {
    if (resolved !== undefined) return ok(resolved);
    const r = await i.hub.resolveRevision(requested);
    if (r.ok) resolved = r.value;
    return r;
  };
  const fresh = (sha: string): RevisionRecord => ({
    schema: 1,
    repo,
    ref: requested,
    sha,
    resolvedAt: (i.now?.() ?? new Date()).toISOString(),
    host: i.host,
  });
  /** The warning for a ref the Hub now resolves elsewhere than the record says. */
  const moved = (rec: RevisionRecord, now: string): RevisionNote => ({
    level: 'warning',
    message: `the Hub now resolves ${requested} to commit ${now}, but this state keeps commit ${rec.sha} so that every run, worker and shard on it reads one snapshot. To move to ${now}: run with --revision ${requested} (re-resolves and records it) or write the sha into ${file} (\`stackflow pin\`), then \`${reset}\``,
  });

  // A few rounds: a lost create-only race is followed by reading the winner's record.
  for (let attempt = 0; attempt < 3; attempt++) {
    const found = await readRecord(i.state, key, repo, requested);
    if (!found.ok) return found;
    const f = found.value;

    if (f.state === 'present' && !fromFlag) {
      notes.push({
        level: 'note',
        message: `revision ${requested} is commit ${f.record.sha}, ${recordedBy(f.record)}`,
      });
      const now = await resolve();
      if (!now.ok) {
        notes.push({
          level: 'note',
          message: `could not ask the Hub whether ${requested} moved since: ${now.error.message}`,
        });
      } else if (now.value !== f.record.sha) notes.push(moved(f.record, now.value));
      return ok({ ...base, commit: f.record.sha, origin: 'recorded', record: f.record });
    }

    const sha = await resolve();
    if (!sha.ok) return sha;

    if (!i.record) {
      // Read-only: what the Hub says now, and how it relates to the record; nothing written.
      if (f.state === 'present') {
        notes.push(
          f.record.sha === sha.value
            ? {
                level: 'note',
                message: `revision ${requested} is commit ${sha.value}, unchanged since it was ${recordedBy(f.record)}`,
              }
            : {
                level: 'warning',
                message: `--revision ${requested} resolves to commit ${sha.value}; the state records commit ${f.record.sha} (${recordedBy(f.record)}). This command shows commit ${sha.value}; a run with --revision ${requested} records it`,
              },
        );
        return ok({ ...base, commit: sha.value, origin: 'unrecorded', record: f.record });
      }
      notes.push(
        f.state === 'damaged'
          ? {
              level: 'warning',
              message: `the state's record of revision ${requested} (${key}) is damaged (${f.why}): not trusted; using commit ${sha.value}, what the Hub resolves it to now (the next run rewrites the record)`,
            }
          : {
              level: 'note',
              message: `revision ${requested} is commit ${sha.value} (not recorded yet: the first run on this state records it for every later run)`,
            },
      );
      return ok({ ...base, commit: sha.value, origin: 'unrecorded' });
    }

    if (f.state === 'present') {
      // --revision <ref>: re-resolved. The record changes only when the ref moved.
      if (f.record.sha === sha.value) {
        notes.push({
          level: 'note',
          message: `revision ${requested} is commit ${sha.value}, unchanged since it was ${recordedBy(f.record)}`,
        });
        return ok({ ...base, commit: sha.value, origin: 'recorded', record: f.record });
      }
      const rec = fresh(sha.value);
      const put = await i.state.put(objectKey(key), encode(rec));
      if (!put.ok) return put;
      notes.push({
        level: 'warning',
        message: `revision ${requested} moved: the state recorded commit ${f.record.sha} (on ${when(f.record.resolvedAt)} by ${f.record.host}); --revision ${requested} resolves it to commit ${sha.value}, now recorded for every later run on this state. Tasks done at ${f.record.sha} run again at ${sha.value}. Stop workers still running at ${f.record.sha} (they keep it until restarted) and run \`${reset}\` to forget what was done at it`,
      });
      return ok({ ...base, commit: sha.value, origin: 're-recorded', record: rec });
    }

    const rec = fresh(sha.value);
    if (f.state === 'damaged') {
      // Never trusted; rewritten (a plain put: the damaged object is in the way of a create).
      const put = await i.state.put(objectKey(key), encode(rec));
      if (!put.ok) return put;
      notes.push({
        level: 'warning',
        message: `the state's record of revision ${requested} (${key}) is damaged (${f.why}): not trusted; rewritten with commit ${sha.value}, what the Hub resolves it to now`,
      });
      return ok({ ...base, commit: sha.value, origin: 'new-record', record: rec });
    }

    const put = await i.state.put(objectKey(key), encode(rec), { ifNoneMatch: '*' });
    if (put.ok) {
      notes.push({
        level: 'note',
        message: `revision ${requested} is commit ${sha.value}: recorded in the state, so every later run, worker and shard on it uses this commit (\`stackflow pin\` writes it into ${file})`,
      });
      return ok({ ...base, commit: sha.value, origin: 'new-record', record: rec });
    }
    if (put.error.reason !== 'precondition-failed') return put;
    // Another host recorded it first: read and use its record (next round).
  }
  return err({
    reason: 'transient',
    message: `could not record revision ${requested} in the state: ${key} kept changing while it was written`,
  });
}

/** What `status --json` says about the revision: which commit this state is at, and why. */
export function revisionSummary(p: PinnedRevision): {
  requested: string;
  commit: string;
  origin: RevisionOrigin;
  recordedAt?: string;
  recordedBy?: string;
} {
  return {
    requested: p.requested,
    commit: p.commit,
    origin: p.origin,
    ...(p.record !== undefined
      ? { recordedAt: p.record.resolvedAt, recordedBy: p.record.host }
      : {}),
  };
}

/** The session with its pipeline at the pinned commit, and how that commit was decided. */
export async function pinSessionRevision(
  s: Session,
  opts: Pick<PinRevisionInput, 'override' | 'record' | 'host' | 'file' | 'now'>,
): Promise<Result<{ session: Session; revision: PinnedRevision }>> {
  const r = await pinRevision({
    ...opts,
    dataset: s.pipeline.dataset,
    stages: s.pipeline.stages.map((st) => st.name),
    hub: s.hub,
    state: s.stores.state,
  });
  if (!r.ok) return r;
  const pipeline = { ...s.pipeline, dataset: { ...s.pipeline.dataset, revision: r.value.commit } };
  return ok({ session: { ...s, pipeline }, revision: r.value });
}
