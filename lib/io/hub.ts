/**
 * The parquet-source port: where the dataset's parquet files come from. Implementations: a local
 * HF-shaped mirror (`file://`, hub-mirror.ts) now, the Hugging Face Hub (`hf://`) next. Both list
 * `data/<Language>/*.parquet` at a pinned revision with sizes and sha256, and download with
 * verification.
 */
import type { Readable } from 'node:stream';
import type { Result } from '../errors.js';
import { err, ok } from '../errors.js';
import type { ManifestEntry } from '../model.js';

export interface HubSource {
  /** For messages; never contains a token. */
  readonly url: string;
  /** Resolves a revision (branch, tag, sha) to the commit sha that gets pinned. */
  resolveRevision(revision: string): Promise<Result<string>>;
  /** Language folders under `data/`, sorted. */
  listLanguages(revision: string): Promise<Result<string[]>>;
  /** Parquet files of one language, sorted by path. `not-found` if the folder does not exist. */
  listFiles(language: string, revision: string): Promise<Result<ManifestEntry[]>>;
  /** The bytes of one file (the caller hashes and verifies them). */
  open(entry: ManifestEntry, revision: string, signal: AbortSignal): Promise<Result<Readable>>;
}

/**
 * Remote names are data: a folder or file name that could escape the work dir is refused.
 * Legitimate names such as `C++`, `Graphviz_(DOT)` and `ASN.1` pass.
 */
export function checkRemoteName(name: string, what: string): Result<string> {
  const bad =
    name === '' ||
    name === '.' ||
    name === '..' ||
    name.includes('/') ||
    name.includes('\\') ||
    name.includes('\0') ||
    name.trim() !== name;
  return bad
    ? err({
        reason: 'invalid-input',
        message: `refusing unsafe ${what} name ${JSON.stringify(name)}`,
      })
    : ok(name);
}

/** `data/<lang>/<stem>.parquet` → entry fields, or undefined for other paths. */
export function parseParquetPath(path: string): { language: string; stem: string } | undefined {
  const m = /^data\/([^/]+)\/([^/]+)\.parquet$/.exec(path);
  if (m?.[1] === undefined || m[2] === undefined) return undefined;
  return { language: m[1], stem: m[2] };
}
