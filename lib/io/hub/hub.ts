/**
 * The parquet-source port: where the dataset's parquet files come from. Implementations: a local
 * HF-shaped mirror (`file://`, hub-mirror.ts) and the Hugging Face Hub (`hf://`, hub-hf.ts). Both
 * list `data/<Language>/*.parquet` at a pinned revision with sizes and sha256, and download with
 * verification: a file reaches its destination only when it matches its manifest entry.
 *
 * Also owns the rules for remote names. Listings are data from outside: every name and path in
 * them is checked before it is joined onto a local directory.
 */
import type { Failure, Result } from '../../errors.js';
import { err, ok } from '../../errors.js';
import type { ManifestEntry } from '../../model.js';

/** Options of one download. */
export interface DownloadOptions {
  /** Aborts the transfer; the result is then an `aborted` failure. */
  signal: AbortSignal;
  /**
   * Called with the number of bytes received, chunk by chunk (for progress). Bytes fetched again
   * after a restart are counted again; bytes resumed from an earlier partial file are not.
   */
  onBytes?: (n: number) => void;
}

export interface HubSource {
  /** For messages; never contains a token. */
  readonly url: string;
  /** Resolves a revision (branch, tag, sha) to the commit sha that gets pinned. */
  resolveRevision(revision: string): Promise<Result<string>>;
  /** Language folders under `data/`, sorted. */
  listLanguages(revision: string): Promise<Result<string[]>>;
  /** Parquet files of one language, sorted by path. `not-found` if the folder does not exist. */
  listFiles(language: string, revision: string): Promise<Result<ManifestEntry[]>>;
  /**
   * Downloads one file to `dest` (a local path; its directory must exist). The file appears at
   * `dest` only when its size and sha256 match `entry`; otherwise the result is
   * `checksum-mismatch` naming the file, what was expected and what arrived, and nothing is left
   * at `dest`. A file absent at `revision` is `not-found`.
   */
  download(
    entry: ManifestEntry,
    revision: string,
    dest: string,
    opts: DownloadOptions,
  ): Promise<Result<{ size: number; sha256: string }>>;
  /**
   * Checks, with one small request, that `entry` can be downloaded (a gated dataset lists its
   * files to anyone but serves them only to accepted users), so a run fails before any task
   * starts rather than in every fetch.
   */
  checkAccess(entry: ManifestEntry, revision: string): Promise<Result<void>>;
}

/**
 * Remote names are data. Refused: a name that could lead out of a directory it is joined onto
 * (empty, `.`, `..`, a `/` or `\` separator, NUL), or that a terminal, a log line or a line-based
 * file could misread (control characters such as a newline, leading or trailing whitespace).
 * Everything else is a valid name and passes: `C++`, `Graphviz_(DOT)`, `ASN.1`, `F#`, `Ren'Py`,
 * spaces, unicode, and shell metacharacters (`;`, `$`, `(`, quotes, backticks). Names never
 * become code: a shell command receives them as variables (lib/shell-command.ts), an s5cmd line
 * quoted (lib/io/s5cmd.ts), a state key URI-encoded (lib/layout.ts).
 */
export function checkRemoteName(name: string, what: string): Result<string> {
  const why = unsafeNameReason(name);
  return why === undefined
    ? ok(name)
    : err({
        reason: 'invalid-input',
        message: `refusing unsafe ${what} name ${JSON.stringify(name)}: ${why}`,
      });
}

function unsafeNameReason(name: string): string | undefined {
  if (name === '') return 'it is empty';
  if (name === '.' || name === '..') return 'it names a directory itself';
  if (name.includes('/') || name.includes('\\')) return 'it contains a path separator';
  // C0 controls (NUL included), DEL and C1 controls: never part of a real language or file name.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return 'it contains a control character';
  if (name.trim() !== name) return 'it starts or ends with whitespace';
  return undefined;
}

/**
 * A repo-relative path from a listing or a manifest (`data/C++/train-00000-of-00001.parquet`):
 * relative, `/`-separated, and every segment a safe name, so joining it onto a local root stays
 * inside that root. The message names the whole bad path.
 */
export function checkRepoPath(path: string, source: string): Result<string> {
  const bad = (why: string): Result<string> =>
    err({
      reason: 'invalid-input',
      message: `refusing unsafe path ${JSON.stringify(path)} from ${source}: ${why}`,
    });
  if (path.startsWith('/')) return bad('it is absolute');
  for (const segment of path.split('/')) {
    const why = unsafeNameReason(segment);
    if (why !== undefined) return bad(`segment ${JSON.stringify(segment)}: ${why}`);
  }
  return ok(path);
}

/** A full git commit sha (40 lowercase hex digits), as the Hub names commits. */
export const isCommitSha = (s: string): boolean => /^[0-9a-f]{40}$/.test(s);

/** A sha256 as the manifests store it (64 lowercase hex digits); it also names local files. */
export const isSha256 = (s: string): boolean => /^[0-9a-f]{64}$/.test(s);

/** The checksum-mismatch failure every HubSource returns, so messages read the same. */
export function mismatch(
  entry: ManifestEntry,
  actual: { size: number; sha256: string },
  where: string,
): Failure {
  return {
    reason: 'checksum-mismatch',
    key: entry.path,
    expected: `${entry.size} bytes, sha256 ${entry.sha256}`,
    actual: `${actual.size} bytes, sha256 ${actual.sha256}`,
    message: `${entry.path} from ${where} does not match the manifest: expected ${entry.size} bytes with sha256 ${entry.sha256}, got ${actual.size} bytes with sha256 ${actual.sha256}`,
  };
}

/** `data/<lang>/<stem>.parquet` → entry fields, or undefined for other paths. */
export function parseParquetPath(path: string): { language: string; stem: string } | undefined {
  const m = /^data\/([^/]+)\/([^/]+)\.parquet$/.exec(path);
  if (m?.[1] === undefined || m[2] === undefined) return undefined;
  return { language: m[1], stem: m[2] };
}
