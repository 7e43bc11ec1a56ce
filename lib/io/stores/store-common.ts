/**
 * The helpers every ObjectStore shares so that they agree to the byte: UTF-8 key order, S3-style
 * pages (start-after tokens and CommonPrefixes), reading a `Body`, checking get/put options, and
 * mapping errno codes to Failures. Used by the memory store (the reference) and the fs store.
 */
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { err, errnoFailure, ok } from '../../errors.js';
import type { Failure, Result } from '../../errors.js';
import type {
  Body,
  GetOptions,
  ListOptions,
  ListPage,
  ObjectInfo,
  PutOptions,
} from './object-store.js';

/** S3's MaxKeys ceiling, also the default page size. */
export const MAX_PAGE_SIZE = 1000;

/** Compares two keys in UTF-8 byte order (S3's order; not UTF-16 `<`, not `localeCompare`). */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Where a listing resumes. Mutated while a page is collected (`skip` follows the last group). */
export interface ListCursor {
  /** Only keys strictly after this one, in byte order. */
  after?: string;
  /** Keys starting with this were already reported as a CommonPrefix, so they are skipped. */
  skip?: string;
}

/** A validated `ListOptions`. */
export interface PageRequest {
  /** 1..MAX_PAGE_SIZE. */
  pageSize: number;
  /** Undefined when no grouping was asked for (an empty delimiter means none, as in S3). */
  delimiter: string | undefined;
  /** Decoded from `pageToken`. */
  cursor: ListCursor;
}

/** An `invalid-input` Failure. */
export const invalid = (message: string): Failure => ({ reason: 'invalid-input', message });

/** The page token is `k<last key>` or `p<last CommonPrefix>`, base64url: start-after semantics. */
function encodeToken(last: string, isPrefix: boolean): string {
  return Buffer.from((isPrefix ? 'p' : 'k') + last, 'utf8').toString('base64url');
}

/** Validates list options: page size in range (above 1000 is clamped, like S3) and the token. */
export function parseListOptions(opts: ListOptions = {}): Result<PageRequest> {
  const size = opts.pageSize ?? MAX_PAGE_SIZE;
  if (!Number.isInteger(size) || size < 1) {
    return err(invalid(`list: pageSize must be a positive integer, got ${String(size)}`));
  }
  const delimiter = opts.delimiter === '' ? undefined : opts.delimiter;
  const req: PageRequest = { pageSize: Math.min(size, MAX_PAGE_SIZE), delimiter, cursor: {} };
  const token = opts.pageToken;
  if (token === undefined) return ok(req);
  const text = Buffer.from(token, 'base64url').toString('utf8');
  const last = text.slice(1);
  if (
    token === '' ||
    (text[0] !== 'k' && text[0] !== 'p') ||
    encodeToken(last, text[0] === 'p') !== token
  ) {
    return err(invalid(`list: malformed pageToken ${JSON.stringify(token)}`));
  }
  req.cursor = text[0] === 'p' ? { after: last, skip: last } : { after: last };
  return ok(req);
}

/** True when `key` belongs in the listing: under the prefix, after the cursor, not in a group. */
export function keyWanted(key: string, prefix: string, c: ListCursor): boolean {
  if (!key.startsWith(prefix)) return false;
  if (c.skip !== undefined && key.startsWith(c.skip)) return false;
  return c.after === undefined || compareKeys(key, c.after) > 0;
}

/**
 * True when some key starting with `keyPrefix` (a directory, for a store walking a tree) may
 * belong in the listing, so the walker must descend. Lets a walker skip whole subtrees.
 */
export function subtreeWanted(keyPrefix: string, prefix: string, c: ListCursor): boolean {
  if (!keyPrefix.startsWith(prefix) && !prefix.startsWith(keyPrefix)) return false;
  if (c.skip !== undefined && keyPrefix.startsWith(c.skip)) return false;
  // `after` is past every key of the subtree when it is greater than `keyPrefix` yet not inside it.
  const { after } = c;
  return after === undefined || after.startsWith(keyPrefix) || compareKeys(after, keyPrefix) < 0;
}

/**
 * Builds one page from objects arriving in byte order (already filtered with `keyWanted`). With
 * a delimiter, a key is folded into its CommonPrefix, and `cursor.skip` is set so the source
 * stops producing that group. A group counts as one item of the page, as in S3.
 */
export async function collectPage(
  source: AsyncIterable<ObjectInfo> | Iterable<ObjectInfo>,
  prefix: string,
  req: PageRequest,
): Promise<ListPage> {
  const objects: ObjectInfo[] = [];
  const prefixes: string[] = [];
  let last: { value: string; isPrefix: boolean } | undefined;
  for await (const info of source) {
    if (!keyWanted(info.key, prefix, req.cursor)) continue;
    if (objects.length + prefixes.length === req.pageSize) {
      return last === undefined
        ? { objects, prefixes }
        : { objects, prefixes, nextToken: encodeToken(last.value, last.isPrefix) };
    }
    const rest = info.key.slice(prefix.length);
    const at = req.delimiter === undefined ? -1 : rest.indexOf(req.delimiter);
    if (req.delimiter !== undefined && at >= 0) {
      const group = prefix + rest.slice(0, at + req.delimiter.length);
      prefixes.push(group);
      req.cursor.skip = group;
      last = { value: group, isPrefix: true };
    } else {
      objects.push(info);
      last = { value: info.key, isPrefix: false };
    }
  }
  return { objects, prefixes };
}

const TRANSIENT_CODES = new Set([
  'EAGAIN',
  'EWOULDBLOCK',
  'EMFILE',
  'ENFILE',
  'EBUSY',
  'EINTR',
  'ETIMEDOUT',
  'ECONNRESET',
  'EPIPE',
]);
/** Errors the user fixes (a key too long for the filesystem); permissions and a full disk are
 * reported as what they are (errnoFailure). */
const USER_CODES = new Set(['ENAMETOOLONG', 'EFBIG']);

/** The errno code of an exception, if it has one. */
export function errnoCode(e: unknown): string | undefined {
  return e instanceof Error ? (e as NodeJS.ErrnoException).code : undefined;
}

/**
 * Maps an I/O exception to a Failure: ENOENT → `not-found` (of `key`), EACCES/EPERM/EROFS →
 * `permission-denied`, ENOSPC/EDQUOT → `disk-full`, EAGAIN/EMFILE/EBUSY-type → `transient`,
 * ENAMETOOLONG/EFBIG → `invalid-input`. Anything else is a bug and is rethrown.
 */
export function ioFailure(e: unknown, key: string, what: string): Failure {
  const code = errnoCode(e);
  const detail = e instanceof Error ? e.message : String(e);
  if (code === 'ENOENT') return { reason: 'not-found', key, message: `${what}: not found` };
  const known = errnoFailure(e, what);
  if (known !== undefined && known.reason !== 'transient') return known;
  if (code !== undefined && TRANSIENT_CODES.has(code)) {
    return { reason: 'transient', message: `${what}: ${detail}` };
  }
  if (code !== undefined && USER_CODES.has(code)) return invalid(`${what}: ${detail}`);
  throw e;
}

/**
 * Opens a put body as a stream of Buffers. A `{file}` body is opened here, so that a missing
 * file is a `not-found` of that path rather than an error halfway through a put.
 */
export async function openBody(
  body: Body,
): Promise<Result<Iterable<Buffer> | AsyncIterable<Buffer>>> {
  if (typeof body === 'string') return ok([Buffer.from(body, 'utf8')]);
  if (body instanceof Uint8Array)
    return ok([Buffer.from(body.buffer, body.byteOffset, body.length)]);
  if (body instanceof Readable) return ok(bufferChunks(body));
  try {
    const fh = await open(body.file, 'r');
    return ok(bufferChunks(fh.createReadStream()));
  } catch (e) {
    return err(ioFailure(e, body.file, `put body ${body.file}`));
  }
}

async function* bufferChunks(stream: Readable): AsyncGenerator<Buffer, void, undefined> {
  for await (const chunk of stream as AsyncIterable<unknown>) {
    if (typeof chunk === 'string') yield Buffer.from(chunk, 'utf8');
    else if (chunk instanceof Uint8Array)
      yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    else throw new TypeError('Internal error: a put body stream yielded a chunk that is not bytes');
  }
}

/** Checks a `GetOptions.start`: a non-negative integer (past the end yields no bytes). */
export function checkStart(opts: GetOptions | undefined): Result<number> {
  const start = opts?.start ?? 0;
  if (!Number.isSafeInteger(start) || start < 0) {
    return err(invalid(`getStream: start must be a non-negative integer, got ${String(start)}`));
  }
  return ok(start);
}

/** Checks that a put does not ask for create-only and replace-if-etag at once. */
export function checkPutOptions(key: string, opts: PutOptions): Failure | undefined {
  if (opts.ifNoneMatch === '*' && opts.ifMatch !== undefined) {
    return invalid(`put ${key}: ifNoneMatch and ifMatch cannot be combined`);
  }
  return undefined;
}
