/**
 * The sample's language table: per language folder, how many rows and shards it has, which
 * directories of the generating machine its text is read from and which files qualify, the
 * repository-path prefixes its rows get, and how many of its blobs are left out of swh/content.
 * Also the per-row text limit (MAX_TEXT_BYTES) that input selection and row planning share.
 */
import { readdirSync } from 'node:fs';
import type { Rng } from '../sample-spec.js';
import { generateDot } from './dot.js';

/** Max bytes of text per row; longer files are cut at the last line break before this. */
export const MAX_TEXT_BYTES = 6144;

/** One language folder of the sample: where its text comes from and what goes wrong in it. */
export interface LanguageSpec {
  /** Folder name under hf/data (the real dataset's spelling). */
  readonly folder: string;
  /** Value of the `language` column (spaces where the folder has underscores). */
  readonly language: string;
  /** Target rows per shard; the shard count is the array length. */
  readonly shards: readonly number[];
  /** Fewest input rows acceptable when scanning (below that the machine lacks files). */
  readonly minRows: number;
  /** Directories scanned, recursively (symlinks are not followed). */
  readonly roots: readonly string[];
  /** Cheap filter on the path (and, where needed, the first line). */
  readonly accept: (path: string, firstLine: () => string) => boolean;
  /** Filter on the prepared text. */
  readonly acceptText?: (text: string) => boolean;
  /** Deterministic text for rows the machine has no file for (Graphviz only). */
  readonly generate?: (rng: Rng, index: number) => string;
  /** Line-comment prefix, for the non-UTF-8 sample lines. */
  readonly comment: string;
  /** Repository-path prefixes the row paths are put under. */
  readonly prefixes: readonly string[];
  /** Rows per shard whose blob is left out of swh/content. Kept under 1% of the shard. */
  readonly missing: readonly number[];
}

const looksLikeCxx = /^\s*(namespace\s+\w*\s*\{|template\s*<|class\s+\w+\s*[:{])/m;
const shellShebang = /^#!\s*\S*\/(env\s+)?(ba|da|k|z)?sh\b/;

export const LANGUAGES: readonly LanguageSpec[] = [
  {
    folder: 'C++',
    language: 'C++',
    shards: [370, 370],
    minRows: 600,
    roots: ['/usr/include'],
    accept: (p) => p.includes('/c++/') || /\.(hpp|hh|hxx|tcc)$/.test(p),
    comment: '//',
    prefixes: ['include/', 'src/', '', 'lib/'],
    missing: [2, 2],
  },
  {
    folder: 'C',
    language: 'C',
    shards: [850],
    minRows: 850,
    roots: ['/usr/include'],
    accept: (p) => p.endsWith('.h') && !p.includes('/c++/'),
    acceptText: (t) => !looksLikeCxx.test(t),
    comment: '//',
    prefixes: ['include/', 'src/', ''],
    missing: [3],
  },
  {
    folder: 'Python',
    language: 'Python',
    shards: [850],
    minRows: 850,
    roots: pythonRoots(),
    accept: (p) => p.endsWith('.py'),
    comment: '#',
    prefixes: ['', 'src/', 'lib/'],
    missing: [3],
  },
  {
    folder: 'Shell',
    language: 'Shell',
    shards: [200],
    minRows: 120,
    roots: ['/etc', '/usr/bin', '/usr/lib', '/usr/sbin', '/usr/share'],
    accept: (p, firstLine) =>
      p.endsWith('.sh') || (/^\/usr\/s?bin\//.test(p) && shellShebang.test(firstLine())),
    comment: '#',
    prefixes: ['scripts/', 'bin/', ''],
    missing: [1],
  },
  {
    folder: 'JavaScript',
    language: 'JavaScript',
    shards: [260],
    minRows: 260,
    roots: ['/usr/lib/node_modules', '/usr/share/javascript'],
    accept: (p) => /\.(c|m)?js$/.test(p) && !p.endsWith('.min.js'),
    comment: '//',
    prefixes: ['', 'src/', 'lib/'],
    missing: [1],
  },
  {
    // A folder name with `(`, `)` and `_`; the machine has at most a few .dot files, so most
    // rows are generated graphs.
    folder: 'Graphviz_(DOT)',
    language: 'Graphviz (DOT)',
    shards: [150],
    minRows: 0,
    roots: ['/usr/share'],
    accept: (p) => /\.(dot|gv)$/.test(p),
    generate: generateDot,
    comment: '//',
    prefixes: ['docs/', 'graphs/', ''],
    missing: [1],
  },
];

function pythonRoots(): string[] {
  try {
    return readdirSync('/usr/lib')
      .filter((n) => /^python3(\.\d+)?$/.test(n))
      .sort()
      .map((n) => `/usr/lib/${n}`);
  } catch {
    return [];
  }
}
