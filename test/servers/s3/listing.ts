/**
 * ListObjectsV2 and ListObjects (V1), answered from a walk of the bucket sorted in UTF-8 byte
 * order, as S3 lists. s3rver listed in directory-walk order (`p/x` before `p-1`), so paging with a
 * small MaxKeys silently lost keys, and its V2 continuation token used DES, which Node 20's
 * OpenSSL 3 refuses (HTTP 500 on the second page).
 *
 * Paging: MaxKeys (default and cap 1000) counts keys and common prefixes together. The
 * continuation token is opaque to clients: base64url of the bucket and the last entry returned;
 * when that entry was a common prefix, every key under it is skipped on the next page.
 */
import type { ServerEnv } from './conditions.js';
import { keyLock } from './conditions.js';
import { S3_XMLNS, escapeXml, queryParam, sendXml } from './http.js';
import { requireBucket } from './objects.js';
import type { KoaContext } from './s3rver.js';
import { s3Error } from './s3rver.js';
import type { ObjectMeta } from './store.js';
import { compareBytes } from './key-index.js';

/** s3rver's one built-in account, as it reports itself elsewhere (ListBuckets, ACLs). */
const DUMMY_OWNER = { id: '123456789000', displayName: 'S3rver' };

interface Resume {
  /** Entries up to and including this one (in byte order) were returned already. */
  after: string;
  /** The last entry was this common prefix: skip every key under it. */
  skipPrefix?: string;
}

function encodeToken(bucket: string, r: Resume): string {
  return Buffer.from(
    JSON.stringify({ b: bucket, a: r.after, p: r.skipPrefix !== undefined }),
  ).toString('base64url');
}

function decodeToken(bucket: string, token: string): Resume {
  const bad = s3Error('InvalidArgument', 'The continuation token provided is incorrect', {
    ArgumentName: 'continuation-token',
  });
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw bad;
  }
  const t = v as { b?: unknown; a?: unknown; p?: unknown } | null;
  if (t === null || t.b !== bucket || typeof t.a !== 'string' || typeof t.p !== 'boolean')
    throw bad;
  return t.p ? { after: t.a, skipPrefix: t.a } : { after: t.a };
}

function parseMaxKeys(raw: string | undefined): number {
  if (raw === undefined) return 1000;
  if (!/^-?\d+$/.test(raw) || Number(raw) < 0 || Number(raw) > 2147483647) {
    throw s3Error('InvalidArgument', 'Provided max-keys not an integer or within integer range', {
      ArgumentName: 'max-keys',
      ArgumentValue: raw,
    });
  }
  return Math.min(1000, Number(raw));
}

type Entry = { kind: 'key'; key: string } | { kind: 'prefix'; prefix: string };

/** One page of entries, by the rules above. Pure over the sorted key list. */
export function pageOf(
  sortedKeys: string[],
  opts: { prefix: string; delimiter: string; maxKeys: number; resume?: Resume },
): { entries: Entry[]; truncated: boolean } {
  const { prefix, delimiter, maxKeys, resume } = opts;
  const entries: Entry[] = [];
  if (maxKeys === 0) return { entries, truncated: false };
  let lastPrefix: string | undefined;
  for (const key of sortedKeys) {
    if (!key.startsWith(prefix)) continue;
    if (resume !== undefined && compareBytes(key, resume.after) <= 0) continue;
    if (resume?.skipPrefix !== undefined && key.startsWith(resume.skipPrefix)) continue;
    const at = delimiter === '' ? -1 : key.indexOf(delimiter, prefix.length);
    if (at !== -1) {
      const common = key.slice(0, at + delimiter.length);
      if (common === lastPrefix) continue;
      if (entries.length === maxKeys) return { entries, truncated: true };
      entries.push({ kind: 'prefix', prefix: common });
      lastPrefix = common;
      continue;
    }
    if (entries.length === maxKeys) return { entries, truncated: true };
    entries.push({ kind: 'key', key });
  }
  return { entries, truncated: false };
}

/** Runs `fn` over `items`, at most `width` at a time, keeping order. */
async function mapLimit<T, R>(items: T[], width: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return out;
}

export async function listObjects(
  env: ServerEnv,
  ctx: KoaContext,
  bucket: string,
  version: 1 | 2,
): Promise<void> {
  requireBucket(env, bucket);
  const prefix = queryParam(ctx, 'prefix') ?? '';
  const delimiter = queryParam(ctx, 'delimiter') ?? '';
  const maxKeys = parseMaxKeys(queryParam(ctx, 'max-keys'));
  const encodingType = queryParam(ctx, 'encoding-type');
  if (encodingType !== undefined && encodingType !== 'url') {
    throw s3Error('InvalidArgument', 'Invalid Encoding Method specified in Request', {
      ArgumentName: 'encoding-type',
      ArgumentValue: encodingType,
    });
  }
  // With encoding-type=url S3 form-encodes names in the response ('+' for space, '/' kept).
  const enc = (s: string) =>
    escapeXml(
      encodingType === 'url' ? encodeURIComponent(s).replace(/%20/g, '+').replace(/%2F/gi, '/') : s,
    );

  const token = version === 2 ? queryParam(ctx, 'continuation-token') : undefined;
  const startAfter = version === 2 ? queryParam(ctx, 'start-after') : undefined;
  const marker = version === 1 ? queryParam(ctx, 'marker') : undefined;
  let resume: Resume | undefined;
  if (token !== undefined) resume = decodeToken(bucket, token);
  else if (startAfter !== undefined && startAfter !== '') resume = { after: startAfter };
  else if (marker !== undefined && marker !== '') {
    // A V1 NextMarker may be a common prefix: resume after everything under it.
    const isCommon = delimiter !== '' && marker.startsWith(prefix) && marker.endsWith(delimiter);
    resume = isCommon ? { after: marker, skipPrefix: marker } : { after: marker };
  }

  const keys = env.files.keys(bucket, prefix);
  const { entries, truncated } = pageOf(keys, { prefix, delimiter, maxKeys, resume });
  const metas = await mapLimit(entries, 32, async (e): Promise<ObjectMeta | null> => {
    if (e.kind !== 'key') return null;
    const release = await env.locks.acquire(keyLock(bucket, e.key), 'read');
    try {
      return env.files.head(bucket, e.key);
    } finally {
      release();
    }
  });

  const owner = version === 1 || queryParam(ctx, 'fetch-owner') === 'true';
  const contents: string[] = [];
  const commonPrefixes: string[] = [];
  entries.forEach((e, i) => {
    if (e.kind === 'prefix') {
      commonPrefixes.push(`<CommonPrefixes><Prefix>${enc(e.prefix)}</Prefix></CommonPrefixes>`);
      return;
    }
    const m = metas[i];
    if (m === null || m === undefined) return; // deleted while listing: as if listed after
    contents.push(
      `<Contents><Key>${enc(e.key)}</Key><LastModified>${m.lastModified.toISOString()}</LastModified>` +
        `<ETag>${escapeXml(m.etag)}</ETag><Size>${String(m.size)}</Size>` +
        (owner
          ? `<Owner><ID>${DUMMY_OWNER.id}</ID><DisplayName>${DUMMY_OWNER.displayName}</DisplayName></Owner>`
          : '') +
        '<StorageClass>STANDARD</StorageClass></Contents>',
    );
  });
  const last = entries[entries.length - 1];
  const lastName = last === undefined ? undefined : last.kind === 'key' ? last.key : last.prefix;

  const parts = [
    `<Name>${escapeXml(bucket)}</Name>`,
    `<Prefix>${enc(prefix)}</Prefix>`,
    delimiter === '' ? '' : `<Delimiter>${enc(delimiter)}</Delimiter>`,
    `<MaxKeys>${String(maxKeys)}</MaxKeys>`,
    encodingType === undefined ? '' : '<EncodingType>url</EncodingType>',
    `<IsTruncated>${String(truncated)}</IsTruncated>`,
  ];
  if (version === 2) {
    parts.push(`<KeyCount>${String(contents.length + commonPrefixes.length)}</KeyCount>`);
    if (token !== undefined)
      parts.push(`<ContinuationToken>${escapeXml(token)}</ContinuationToken>`);
    if (startAfter !== undefined) parts.push(`<StartAfter>${enc(startAfter)}</StartAfter>`);
    if (truncated && last !== undefined && lastName !== undefined) {
      const next = encodeToken(bucket, {
        after: lastName,
        ...(last.kind === 'prefix' ? { skipPrefix: lastName } : {}),
      });
      parts.push(`<NextContinuationToken>${next}</NextContinuationToken>`);
    }
  } else {
    parts.push(`<Marker>${enc(marker ?? '')}</Marker>`);
    // AWS sends NextMarker only with a delimiter; without one the client resumes after the
    // last key it got.
    if (truncated && delimiter !== '' && lastName !== undefined) {
      parts.push(`<NextMarker>${enc(lastName)}</NextMarker>`);
    }
  }
  sendXml(
    ctx,
    `<ListBucketResult xmlns="${S3_XMLNS}">${parts.join('')}${contents.join('')}${commonPrefixes.join('')}</ListBucketResult>`,
  );
}
