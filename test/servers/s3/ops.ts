/**
 * Names an S3 request by its AWS operation (for stats, fault filters and dispatch), from the
 * method, the path-style URL and the sub-resource query parameters.
 */
import { s3Error } from './s3rver.js';

export interface S3Request {
  /** AWS operation name, e.g. `PutObject`; `Other` when unrecognised. */
  op: string;
  bucket?: string;
  key?: string;
}

/** Query parameters that never name a sub-resource. */
const PLAIN_PARAMS = new Set([
  'x-id',
  'prefix',
  'delimiter',
  'marker',
  'max-keys',
  'encoding-type',
  'list-type',
  'continuation-token',
  'start-after',
  'fetch-owner',
  'versionId',
  'partNumber',
  'response-content-type',
  'response-content-language',
  'response-expires',
  'response-cache-control',
  'response-content-disposition',
  'response-content-encoding',
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-SignedHeaders',
  'X-Amz-Signature',
  'X-Amz-Security-Token',
]);

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw s3Error('InvalidURI', "Couldn't parse the specified URI.");
  }
}

/** Splits a path-style URL path into bucket and key (decoded), either possibly absent. */
export function splitPath(path: string): { bucket?: string; key?: string } {
  const rest = path.startsWith('/') ? path.slice(1) : path;
  if (rest === '') return {};
  const slash = rest.indexOf('/');
  if (slash === -1) return { bucket: decode(rest) };
  const bucket = decode(rest.slice(0, slash));
  const key = rest.slice(slash + 1);
  return key === '' ? { bucket } : { bucket, key: decode(key) };
}

export function classify(
  method: string,
  path: string,
  query: Record<string, unknown>,
  headers: Record<string, unknown>,
): S3Request {
  const { bucket, key } = splitPath(path);
  const has = (name: string) => name in query;
  const sub = Object.keys(query).find((k) => !PLAIN_PARAMS.has(k));
  const named = (op: string): S3Request => ({
    op,
    ...(bucket === undefined ? {} : { bucket }),
    ...(key === undefined ? {} : { key }),
  });
  if (bucket === undefined) return named(method === 'GET' ? 'ListBuckets' : 'Other');
  if (key === undefined) {
    switch (method) {
      case 'GET':
        if (sub !== undefined)
          return named(sub === 'uploads' ? 'ListMultipartUploads' : `GetBucket${capitalize(sub)}`);
        return named(query['list-type'] === '2' ? 'ListObjectsV2' : 'ListObjects');
      case 'HEAD':
        return named('HeadBucket');
      case 'PUT':
        return named(sub === undefined ? 'CreateBucket' : `PutBucket${capitalize(sub)}`);
      case 'DELETE':
        return named(sub === undefined ? 'DeleteBucket' : `DeleteBucket${capitalize(sub)}`);
      case 'POST':
        return named(has('delete') ? 'DeleteObjects' : 'PostObject');
      default:
        return named('Other');
    }
  }
  const copy = 'x-amz-copy-source' in headers;
  switch (method) {
    case 'GET':
      if (has('uploadId')) return named('ListParts');
      return named(sub === undefined ? 'GetObject' : `GetObject${capitalize(sub)}`);
    case 'HEAD':
      return named('HeadObject');
    case 'PUT':
      if (has('uploadId')) return named(copy ? 'UploadPartCopy' : 'UploadPart');
      if (sub !== undefined) return named(`PutObject${capitalize(sub)}`);
      return named(copy ? 'CopyObject' : 'PutObject');
    case 'POST':
      if (has('uploads')) return named('CreateMultipartUpload');
      if (has('uploadId')) return named('CompleteMultipartUpload');
      return named(sub === 'select' ? 'SelectObjectContent' : 'Other');
    case 'DELETE':
      if (has('uploadId')) return named('AbortMultipartUpload');
      return named(sub === undefined ? 'DeleteObject' : `DeleteObject${capitalize(sub)}`);
    default:
      return named('Other');
  }
}
