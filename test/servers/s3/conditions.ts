/**
 * Conditional requests as AWS S3 evaluates them, and the shared state the handlers work on.
 *
 * Writes (PutObject, CopyObject, CompleteMultipartUpload):
 *   `If-None-Match: *`   existing object -> 412 PreconditionFailed; any other value -> 501
 *   `If-Match: <etag>`   missing object -> 404 NoSuchKey; other ETag -> 412 PreconditionFailed
 * Deletes: `If-Match` as above (AWS general-purpose buckets since 2025-09).
 * Reads (GetObject, HeadObject), in RFC 7232 order: If-Match (412), else If-Unmodified-Since
 * (412); then If-None-Match (304), else If-Modified-Since (304).
 *
 * The checks run under the key's write lock, held until the write is renamed into place, so the
 * check and the write are one step. AWS may instead answer 409 ConditionalRequestConflict to one
 * of two racing writes; this server never does (the loser gets the 412 it would get later).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { etagMatches, header, httpDate, toSeconds } from './http.js';
import type { KeyLocks } from './lock.js';
import type { Features } from './protocol.js';
import { s3Error } from './s3rver.js';
import type { FilesystemStore } from './s3rver.js';
import type { ObjectFiles, ObjectMeta } from './store.js';

/** What every handler works on: the files, the key locks, the switches. */
export interface ServerEnv {
  readonly store: FilesystemStore;
  readonly files: ObjectFiles;
  readonly locks: KeyLocks;
  readonly features: Features;
}

/** The lock name of an object key (NUL cannot occur in a bucket name). */
export function keyLock(bucket: string, key: string): string {
  return `k\0${bucket}\0${key}`;
}

export function preconditionFailed(condition: string) {
  return s3Error(
    'PreconditionFailed',
    'At least one of the pre-conditions you specified did not hold',
    { Condition: condition },
  );
}

export function noSuchKey(key: string) {
  return s3Error('NoSuchKey', 'The specified key does not exist.', { Key: key });
}

/** Whether the request carries a write condition this server enforces (so `current` is needed). */
export function hasWriteCondition(headers: IncomingHttpHeaders, features: Features): boolean {
  return (
    (features.ifNoneMatch && header(headers, 'if-none-match') !== undefined) ||
    (features.ifMatch && header(headers, 'if-match') !== undefined)
  );
}

/** Throws what AWS answers when a write's conditions fail against `current` (null: no object). */
export function checkWrite(
  headers: IncomingHttpHeaders,
  key: string,
  current: ObjectMeta | null,
  features: Features,
): void {
  const noneMatch = features.ifNoneMatch ? header(headers, 'if-none-match') : undefined;
  const match = features.ifMatch ? header(headers, 'if-match') : undefined;
  if (noneMatch !== undefined && noneMatch.trim() !== '*') {
    throw s3Error(
      'NotImplemented',
      'A header you provided implies functionality that is not implemented',
      { Header: 'If-None-Match' },
    );
  }
  if (match !== undefined) {
    if (current === null) throw noSuchKey(key);
    if (!etagMatches(match, current.etag)) throw preconditionFailed('If-Match');
  }
  if (noneMatch !== undefined && current !== null) throw preconditionFailed('If-None-Match');
}

/** Throws 412 / 404 for a conditional delete, when enabled. */
export function checkDelete(
  ifMatch: string | undefined,
  key: string,
  current: ObjectMeta | null,
  features: Features,
): void {
  if (ifMatch === undefined || !features.conditionalDelete) return;
  if (current === null) throw noSuchKey(key);
  if (!etagMatches(ifMatch, current.etag)) throw preconditionFailed('If-Match');
}

/**
 * Evaluates read conditions: 'ok', or 'not-modified' (304); throws 412. `prefix` selects the
 * header family: '' for GET/HEAD, 'x-amz-copy-source-' for a copy's source (where every failure
 * is a 412, as AWS answers for CopyObject).
 */
export function checkRead(
  headers: IncomingHttpHeaders,
  meta: ObjectMeta,
  prefix = '',
): 'ok' | 'not-modified' {
  const match = header(headers, `${prefix}if-match`);
  const unmodifiedSince = httpDate(header(headers, `${prefix}if-unmodified-since`));
  const noneMatch = header(headers, `${prefix}if-none-match`);
  const modifiedSince = httpDate(header(headers, `${prefix}if-modified-since`));
  const modified = toSeconds(meta.lastModified);
  if (match !== undefined) {
    if (!etagMatches(match, meta.etag)) throw preconditionFailed(`${prefix}If-Match`);
  } else if (unmodifiedSince !== undefined && modified > toSeconds(unmodifiedSince)) {
    throw preconditionFailed(`${prefix}If-Unmodified-Since`);
  }
  const copy = prefix !== '';
  let failed: string | undefined;
  if (noneMatch !== undefined) {
    if (etagMatches(noneMatch, meta.etag)) failed = 'If-None-Match';
  } else if (modifiedSince !== undefined && modified <= toSeconds(modifiedSince)) {
    failed = 'If-Modified-Since';
  }
  if (failed === undefined) return 'ok';
  if (copy) throw preconditionFailed(`${prefix}${failed}`);
  return 'not-modified';
}
