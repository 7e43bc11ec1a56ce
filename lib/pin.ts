/**
 * `stackflow pin`: writes the dataset's commit into the pipeline file in place of a branch or
 * tag, so the file itself says which snapshot it packages.
 *
 *   read the file → spliceRevision (PURE: the one scalar replaced in the text, a comment added,
 *   checked by parsing the result) → written atomically (temp file + rename)
 *
 * The edit is a text splice at the YAML node's source range, not a re-serialisation: every other
 * byte (comments, blank lines, quoting, flow maps) stays as the user wrote it. The line becomes
 * `revision: <sha> # was: main, pinned 2026-12-06` (an existing comment on that line is kept
 * after ours; inside a flow map `{…}` no comment is added, since it would swallow the rest of the
 * line).
 */
import { realpath, rename, rm, stat, writeFile, readFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import { isMap, isScalar, LineCounter, parse, parseDocument } from 'yaml';
import type { Result } from './errors.js';
import { err, ok } from './errors.js';
import { isCommitSha } from './io/hub/hub.js';
import type { PinnedRevision } from './revision.js';

/** What the pinned line's comment says. */
export interface PinNote {
  /** The revision the file named before (`main`). */
  was: string;
  /** The ref that was resolved, when it is not `was` (`--revision v2.1.0`). */
  resolved?: string;
  /** `YYYY-MM-DD`. */
  date: string;
}

/** The comment an earlier pin wrote, at the start of the line's comment. */
const OUR_COMMENT = /^was: .*?, pinned (?:.* on )?\d{4}-\d{2}-\d{2}(?:; |$)/;

/** A label as a comment shows it: bare when harmless, else JSON-quoted (no newline gets in). */
const label = (s: string): string => (/^[\w./+@-]+$/.test(s) ? s : JSON.stringify(s));

/**
 * PURE. `text` with `dataset.revision` set to `sha` and the pin comment added. The result is
 * checked: it parses, and says exactly what `text` says except for the revision.
 */
export function spliceRevision(
  text: string,
  sha: string,
  note: PinNote,
): Result<{ text: string; line: number }> {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  const node = doc.getIn(['dataset', 'revision'], true);
  const parent = doc.getIn(['dataset'], true);
  if (doc.errors.length > 0 || !isScalar(node) || node.range == null || !isMap(parent)) {
    return err({ reason: 'invalid-input', message: 'no dataset.revision scalar to pin' });
  }
  const [start, valueEnd] = node.range;
  const { line } = lc.linePos(start);
  // A sha is a plain scalar unless YAML would read it as something else (all digits: a number).
  const value = parse(sha) === sha ? sha : `"${sha}"`;
  const comment = `was: ${label(note.was)}, pinned ${note.resolved !== undefined ? `${label(note.resolved)} on ` : ''}${note.date}`;
  let out: string;
  if (parent.flow === true) {
    out = text.slice(0, start) + value + text.slice(valueEnd);
  } else if (node.type === 'BLOCK_FOLDED' || node.type === 'BLOCK_LITERAL') {
    out = `${text.slice(0, start)}${value} # ${comment}\n${text.slice(valueEnd)}`;
  } else {
    const nl = text.indexOf('\n', valueEnd);
    let eol = nl === -1 ? text.length : nl;
    if (text[eol - 1] === '\r') eol--;
    const rest = /^\s*(?:#\s?(.*))?$/.exec(text.slice(valueEnd, eol));
    if (rest === null) out = text.slice(0, start) + value + text.slice(valueEnd);
    else {
      // An earlier pin's own comment is replaced, the user's own words are kept.
      const kept = rest[1]?.trim().replace(OUR_COMMENT, '');
      out = `${text.slice(0, start)}${value} # ${comment}${kept ? `; ${kept}` : ''}${text.slice(eol)}`;
    }
  }
  const check = parseDocument(out);
  const before = doc.toJS() as { dataset?: Record<string, unknown> };
  const expected = { ...before, dataset: { ...before.dataset, revision: sha } };
  if (check.errors.length > 0 || !isDeepStrictEqual(check.toJS(), expected)) {
    return err({
      reason: 'internal-error',
      message: 'Internal error: pinning the revision would change more than the revision',
    });
  }
  return ok({ text: out, line });
}

/**
 * Writes `revision.commit` into the pipeline file at `path`. Refuses (invalid-input) a mirror,
 * whose revision is a label, and a file that already names a sha unless `--revision` asked for
 * another. Returns the line to print.
 */
export async function pinPipelineFile(
  path: string,
  revision: PinnedRevision,
  opts: { display: string; now?: () => Date },
): Promise<Result<string>> {
  const { display } = opts;
  if (revision.origin === 'mirror') {
    return err({
      reason: 'invalid-input',
      message: `${display}: the dataset source is a file:// mirror, whose revision ${label(revision.requested)} is a label, not a commit: nothing to pin`,
    });
  }
  let real: string;
  let text: string;
  try {
    real = await realpath(path);
    text = await readFile(real, 'utf8');
  } catch (e) {
    return err({ reason: 'invalid-input', message: `cannot read ${display}: ${String(e)}` });
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  const node = doc.getIn(['dataset', 'revision'], true);
  const was = isScalar(node) ? String(node.value) : '';
  const at = isScalar(node) && node.range ? lc.linePos(node.range[0]) : { line: 1, col: 1 };
  if (isCommitSha(was) && !revision.fromFlag) {
    return err({
      reason: 'invalid-input',
      message: `${display}:${String(at.line)}:${String(at.col)} revision is already commit ${was}: nothing to pin (\`stackflow pin --revision <branch, tag or sha>\` pins another)`,
    });
  }
  if (!revision.fromFlag && was !== revision.requested) {
    return err({
      reason: 'invalid-input',
      message: `${display} changed while its revision was resolved (it now says ${label(was)}): run stackflow pin again`,
    });
  }
  if (was === revision.commit) {
    return ok(`${display} already pins commit ${revision.commit}`);
  }
  const date = (opts.now?.() ?? new Date()).toISOString().slice(0, 10);
  const spliced = spliceRevision(text, revision.commit, {
    was,
    ...(revision.requested !== was && !isCommitSha(revision.requested)
      ? { resolved: revision.requested }
      : {}),
    date,
  });
  if (!spliced.ok) return spliced;
  const tmp = `${real}.stackflow-pin-${String(process.pid)}.tmp`;
  try {
    const { mode } = await stat(real);
    await writeFile(tmp, spliced.value.text, { mode });
    await rename(tmp, real);
  } catch (e) {
    await rm(tmp, { force: true });
    return err({ reason: 'invalid-input', message: `cannot write ${display}: ${String(e)}` });
  }
  const how =
    revision.origin === 'sha'
      ? 'the commit given by --revision'
      : revision.origin === 'recorded' && revision.record !== undefined
        ? `the commit recorded in the state by ${revision.record.host}`
        : 'the commit the Hub resolves it to, now recorded in the state';
  return ok(
    `${display}:${String(spliced.value.line)}: revision ${label(was)} → ${revision.commit} (${how})`,
  );
}
