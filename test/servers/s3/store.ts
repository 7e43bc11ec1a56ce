/**
 * Objects on disk in s3rver's FilesystemStore layout, written so that no reader ever sees a torn
 * object. Per key, three files sit side by side:
 *
 *     <root>/<bucket>/<key dirs>/<name>._S3rver_object          the bytes
 *     <root>/<bucket>/<key dirs>/<name>._S3rver_object.md5      the ETag, unquoted
 *     <root>/<bucket>/<key dirs>/<name>._S3rver_metadata.json   Content-Type, x-amz-meta-*, ...
 *
 * s3rver's own putObject truncates and rewrites these in place and answers before the bytes are
 * flushed, so a concurrent or even a following GET can read a mix of two PUTs or a short object.
 * Here each file is written to a temporary name in the same directory, flushed, then renamed over
 * the old one (under the key's write lock, see lock.ts). A reader that already opened the old
 * object keeps reading the old inode to the end.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  createWriteStream,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import type { WriteStream } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { dirname, join } from 'node:path';
import { Transform, Writable } from 'node:stream';
import type { Readable, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FilesystemStore } from './s3rver.js';
import { s3Error } from './s3rver.js';
import { KeyIndex, sortByBytes } from './key-index.js';

const OBJECT_SUFFIX = '._S3rver_object';
/** Where s3rver keeps multipart uploads, inside the bucket directory (never a key). */
export const UPLOADS_DIR = '._S3rver_uploads';

/** Headers S3 stores with an object and returns on GET/HEAD (s3rver's list, plus x-amz-meta-*). */
const STORED_HEADERS = [
  'cache-control',
  'content-disposition',
  'content-encoding',
  'content-language',
  'content-type',
  'expires',
  'x-amz-storage-class',
  'x-amz-website-redirect-location',
];
const STORAGE_CLASSES = [
  'STANDARD',
  'REDUCED_REDUNDANCY',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER',
  'DEEP_ARCHIVE',
  'OUTPOSTS',
  'GLACIER_IR',
];

export type StoredMetadata = Record<string, string>;

/** One object's metadata as GET/HEAD/List report it. */
export interface ObjectMeta {
  /** Quoted, as S3 sends it: `"<md5 hex>"`, or `"<hex>-<parts>"` for a multipart upload. */
  etag: string;
  size: number;
  lastModified: Date;
  stored: StoredMetadata;
  /** Path of the bytes, to open for reading. */
  path: string;
}

/** Picks what S3 stores from request headers; throws AWS's errors for bad values. */
export function pickMetadata(
  headers: IncomingHttpHeaders,
  contentEncoding?: string,
): StoredMetadata {
  const out: StoredMetadata = {};
  let userBytes = 0;
  for (const [name, value] of Object.entries(headers)) {
    if (typeof value !== 'string') continue;
    if (STORED_HEADERS.includes(name) || name.startsWith('x-amz-meta-')) out[name] = value;
    if (name.startsWith('x-amz-meta-')) {
      userBytes += Buffer.byteLength(name.slice('x-amz-meta-'.length)) + Buffer.byteLength(value);
    }
  }
  if (contentEncoding === undefined) delete out['content-encoding'];
  else out['content-encoding'] = contentEncoding;
  const storageClass = out['x-amz-storage-class'];
  if (storageClass !== undefined && !STORAGE_CLASSES.includes(storageClass)) {
    throw s3Error('InvalidStorageClass', 'The storage class you specified is not valid');
  }
  if (userBytes > 2048) {
    throw s3Error(
      'MetadataTooLarge',
      'Your metadata headers exceed the maximum allowed metadata size.',
    );
  }
  return out;
}

/** What `head` read from an object's files, and the stat of its bytes it was read with. */
interface HeadMemo {
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  etag: string;
  stored: StoredMetadata;
}

export class ObjectFiles {
  /** Every bucket's keys, for listings (see key-index.ts). */
  private readonly index = new KeyIndex();
  /**
   * `head`'s reads of the ETag and metadata files, by object path: used while the bytes' file
   * has the same inode, size and times (a write renames a new file over it), and dropped by
   * this server's own writes and deletes. A listing then costs one stat per key.
   */
  private readonly heads = new Map<string, HeadMemo>();

  constructor(private readonly store: FilesystemStore) {}

  bucketDir(bucket: string): string {
    return join(this.store.rootDirectory, bucket);
  }

  bucketExists(bucket: string): boolean {
    return statSync(this.bucketDir(bucket), { throwIfNoEntry: false })?.isDirectory() ?? false;
  }

  paths(bucket: string, key: string) {
    const object = this.store.getResourcePath(bucket, key, 'object');
    return {
      object,
      md5: `${object}.md5`,
      metadata: this.store.getResourcePath(bucket, key, 'metadata.json'),
    };
  }

  /** The object's metadata, or null if there is no such object. Call under the key's lock. */
  head(bucket: string, key: string): ObjectMeta | null {
    const p = this.paths(bucket, key);
    const st = statSync(p.object, { throwIfNoEntry: false });
    if (st === undefined || !st.isFile()) {
      this.heads.delete(p.object);
      return null;
    }
    const memo = this.heads.get(p.object);
    if (
      memo !== undefined &&
      memo.ino === st.ino &&
      memo.size === st.size &&
      memo.mtimeMs === st.mtimeMs &&
      memo.ctimeMs === st.ctimeMs
    ) {
      return {
        etag: memo.etag,
        size: st.size,
        lastModified: st.mtime,
        stored: memo.stored,
        path: p.object,
      };
    }
    const md5 = readOptional(p.md5);
    // Every write renames the ETag file before the object, so a missing one means no object.
    if (md5 === undefined) return null;
    const etag = `"${md5.trim()}"`;
    // Frozen: the memo hands the same object to every later HEAD, GET and listing.
    const stored = Object.freeze(JSON.parse(readOptional(p.metadata) ?? '{}') as StoredMetadata);
    this.heads.set(p.object, {
      ino: st.ino,
      size: st.size,
      mtimeMs: st.mtimeMs,
      ctimeMs: st.ctimeMs,
      etag,
      stored,
    });
    return { etag, size: st.size, lastModified: st.mtime, stored, path: p.object };
  }

  /**
   * Stores `source` as the object; see {@link writeFileSet}. `etag` overrides the MD5 (the
   * multipart form).
   */
  async write(
    bucket: string,
    key: string,
    source: Readable | Buffer,
    metadata: StoredMetadata,
    opts: WriteOptions = {},
  ): Promise<{ etag: string; size: number }> {
    const p = this.paths(bucket, key);
    // No HEAD of this key runs meanwhile (the caller holds its write lock).
    const written = await writeFileSet(p, source, metadata, opts);
    this.heads.delete(p.object);
    this.index.added(bucket, key);
    return written;
  }

  /** Removes the object (bytes first, so it is gone at once) and directories it leaves empty. */
  remove(bucket: string, key: string): void {
    const p = this.paths(bucket, key);
    this.heads.delete(p.object);
    this.index.removed(bucket, key);
    for (const path of [
      p.object,
      p.md5,
      p.metadata,
      this.store.getResourcePath(bucket, key, 'tagging.xml'),
    ]) {
      rmSync(path, { force: true });
    }
    // s3rver's deleteObject does this with readdirSync + an async rmdir, which races a PUT of a
    // sibling key: the PUT's mkdir succeeds, the rmdir removes the directory, the PUT fails.
    // Here rmdir only removes an empty directory, and writers create theirs and their first file
    // in one synchronous step (or open the file before awaiting anything else).
    let dir = dirname(p.object);
    const root = this.bucketDir(bucket);
    while (dir.length > root.length && dir.startsWith(root)) {
      try {
        rmdirSync(dir);
      } catch {
        return; // not empty (or already gone): stop climbing
      }
      dir = dirname(dir);
    }
  }

  /**
   * Every key in the bucket that starts with `prefix`, in UTF-8 byte order (S3's listing order),
   * from the bucket's key index (key-index.ts). s3rver lists in directory-walk order, so `p/x`
   * came before `p-1`, and its paging then skipped keys.
   */
  keys(bucket: string, prefix: string): string[] {
    if (!this.bucketExists(bucket)) {
      this.index.forget(bucket);
      return [];
    }
    return this.index.keys(bucket, prefix, () => this.walk(bucket));
  }

  /** Every key in the bucket, from its directories, sorted (the index's first fill). */
  private walk(bucket: string): string[] {
    const out: string[] = [];
    const walk = (dir: string, rel: string): void => {
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch (err) {
        if (isNotFound(err)) return; // removed by a concurrent delete
        throw err;
      }
      for (const e of entries) {
        if (e.isDirectory()) {
          if (rel === '' && e.name === UPLOADS_DIR) continue;
          walk(join(dir, e.name), `${rel}${e.name}/`);
        } else if (e.name.endsWith(OBJECT_SUFFIX)) {
          out.push(rel + e.name.slice(0, -OBJECT_SUFFIX.length));
        }
      }
    };
    walk(this.bucketDir(bucket), '');
    return sortByBytes(out);
  }
}

/** Bodies up to this size are gathered in memory and written with one synchronous call. */
export const SMALL_OBJECT = 1 << 20;

export interface WriteOptions {
  /** Transforms between the source and the file (aws-chunked decoding, checksum checks). */
  stages?: Transform[];
  /** The ETag from the bytes' MD5 hex (the multipart form); default the MD5 itself. */
  etag?: (md5: string) => string;
  /** Expected size: at most {@link SMALL_OBJECT} means the body is buffered, not streamed. */
  sizeHint?: number;
}

/**
 * Writes bytes, their ETag and (optionally) metadata as temp files, flushed, then renamed over
 * `target`'s files: metadata, then ETag, then bytes. On any error (a client that disconnects, a
 * checksum mismatch in `stages`) the temp files are removed and the old files are left as they
 * were. Readers are kept out by the caller's lock; one that already opened the old bytes keeps
 * the old inode.
 *
 * Small files use synchronous fs calls on purpose: a test server shares two cores with its
 * clients, and the promise API costs several times the CPU per call (a FileHandle, a thread-pool
 * round trip); blocking for a page-cache write of a few KiB is cheaper.
 */
export async function writeFileSet(
  target: { object: string; md5: string; metadata?: string },
  source: Readable | Buffer,
  metadata: StoredMetadata | undefined,
  opts: WriteOptions = {},
): Promise<{ etag: string; size: number }> {
  const tmp = `${target.object}.${randomBytes(6).toString('hex')}.tmp`;
  const hasher = new Md5Counter();
  try {
    let bytes: Buffer | undefined;
    if (Buffer.isBuffer(source)) bytes = source;
    else if (opts.sizeHint !== undefined && opts.sizeHint <= SMALL_OBJECT) {
      const collector = new Collector();
      await pipeline([source, ...(opts.stages ?? []), collector]);
      bytes = collector.bytes();
    }
    if (bytes !== undefined) {
      hasher.hash.update(bytes);
      hasher.size = bytes.length;
      writeCreatingDir(tmp, bytes);
    } else {
      const stream = await openTemp(tmp);
      try {
        await pipeline([source as Readable, ...(opts.stages ?? []), hasher, stream]);
      } finally {
        stream.destroy();
      }
    }
    const md5 = hasher.hash.digest('hex');
    const tag = opts.etag ? opts.etag(md5) : md5;
    writeFileSync(`${tmp}.md5`, tag);
    if (target.metadata !== undefined) {
      writeFileSync(`${tmp}.json`, JSON.stringify(metadata ?? {}));
      renameSync(`${tmp}.json`, target.metadata);
    }
    renameSync(`${tmp}.md5`, target.md5);
    renameSync(tmp, target.object);
    return { etag: `"${tag}"`, size: hasher.size };
  } catch (err) {
    for (const path of [tmp, `${tmp}.md5`, `${tmp}.json`]) rmSync(path, { force: true });
    throw err;
  }
}

/** Counts and MD5-hashes what passes through. */
class Md5Counter extends Transform {
  readonly hash = createHash('md5');
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }
}

/** A sink that keeps what it is given. */
class Collector extends Writable {
  private readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.chunks.push(chunk);
    done();
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Creates the file (and its directory) in one synchronous step: no delete can come between. */
function writeCreatingDir(path: string, bytes: Buffer): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes, { flag: 'wx' });
}

/**
 * Opens a new temp file for streaming, creating its directory. The file exists once this
 * resolves, so from then on a delete of a sibling key cannot remove the directory; before that,
 * a delete may remove it between mkdir and open, so that is retried.
 */
async function openTemp(path: string): Promise<WriteStream> {
  for (let attempt = 0; ; attempt++) {
    mkdirSync(dirname(path), { recursive: true });
    const stream = createWriteStream(path, { flags: 'wx' });
    try {
      await once(stream, 'open');
      return stream;
    } catch (err) {
      if (!isNotFound(err) || attempt >= 5) throw err;
    }
  }
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export function isNotFound(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
