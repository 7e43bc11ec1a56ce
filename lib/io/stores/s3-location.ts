/**
 * Where an `s3://bucket/prefix` location is and how to talk to it: endpoint, region, path style
 * and signing. Pure: settings come from pipeline.yaml's `s3:` block (per bucket) and from the
 * environment the caller passes in, never from globals.
 *
 * Precedence per field: the bucket's entry under `s3:` > environment > built-in default.
 *   endpoint   AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL (the SDK's own names); none = AWS
 *   region     AWS_REGION, AWS_DEFAULT_REGION; else us-east-1
 *   path_style true whenever an endpoint is set (MinIO, R2, Ceph and loopback servers need it)
 *   unsigned   true for Software Heritage's public bucket, false otherwise
 * Credentials are never part of a location: the SDK's default chain supplies them.
 */
import type { Result } from '../../errors.js';
import { err, ok } from '../../errors.js';

/** One bucket's entry under `s3:` in pipeline.yaml. */
export interface S3BucketSettings {
  endpoint?: string;
  region?: string;
  path_style?: boolean;
  unsigned?: boolean;
}

/** A resolved location: everything an S3 client needs except credentials. */
export interface S3Location {
  bucket: string;
  /** Key prefix inside the bucket: empty, or ending with `/`. */
  prefix: string;
  /** Custom endpoint (http or https URL), or undefined for AWS. */
  endpoint: string | undefined;
  region: string;
  pathStyle: boolean;
  /** Anonymous requests (public buckets); no credentials are looked up. */
  unsigned: boolean;
}

/** Buckets whose defaults differ from a private bucket's. */
const BUILT_IN: Readonly<Record<string, S3BucketSettings>> = {
  softwareheritage: { unsigned: true, region: 'us-east-1' },
};

type Env = Readonly<Record<string, string | undefined>>;

/** `s3://bucket/some/prefix` → bucket and `some/prefix/`. */
export function splitS3Url(url: string): Result<{ bucket: string; prefix: string }> {
  const m = /^s3:\/\/([^/?#]+)(?:\/([^?#]*))?$/.exec(url);
  if (m?.[1] === undefined) {
    return err({ reason: 'invalid-input', message: `${url} is not an s3://bucket/prefix URL` });
  }
  const rest = (m[2] ?? '').replace(/\/+$/, '');
  return ok({ bucket: m[1], prefix: rest === '' ? '' : `${rest}/` });
}

export function resolveS3Location(
  url: string,
  settings: Readonly<Record<string, S3BucketSettings>>,
  env: Env,
): Result<S3Location> {
  const split = splitS3Url(url);
  if (!split.ok) return split;
  const { bucket, prefix } = split.value;
  const own = settings[bucket] ?? {};
  const builtIn = BUILT_IN[bucket] ?? {};
  const nonEmpty = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);
  const endpoint =
    own.endpoint ?? nonEmpty(env.AWS_ENDPOINT_URL_S3) ?? nonEmpty(env.AWS_ENDPOINT_URL);
  if (endpoint !== undefined && !/^https?:\/\/[^/]+/.test(endpoint)) {
    return err({
      reason: 'invalid-input',
      message: `S3 endpoint for bucket ${bucket} must be an http(s):// URL, got ${JSON.stringify(endpoint)}`,
    });
  }
  return ok({
    bucket,
    prefix,
    endpoint,
    region:
      own.region ??
      nonEmpty(env.AWS_REGION) ??
      nonEmpty(env.AWS_DEFAULT_REGION) ??
      builtIn.region ??
      'us-east-1',
    pathStyle: own.path_style ?? endpoint !== undefined,
    unsigned: own.unsigned ?? builtIn.unsigned ?? false,
  });
}
