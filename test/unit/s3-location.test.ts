import { describe, expect, it } from 'vitest';
import { resolveS3Location, splitS3Url } from '../../lib/io/stores/s3-location.js';

const resolve = (...a: Parameters<typeof resolveS3Location>) => {
  const r = resolveS3Location(...a);
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
};

describe('S3 locations', () => {
  it('splits bucket and prefix, normalizing the prefix to end with one slash', () => {
    expect(splitS3Url('s3://b')).toEqual({ ok: true, value: { bucket: 'b', prefix: '' } });
    expect(splitS3Url('s3://b/')).toEqual({ ok: true, value: { bucket: 'b', prefix: '' } });
    expect(splitS3Url('s3://b/x/y//')).toEqual({
      ok: true,
      value: { bucket: 'b', prefix: 'x/y/' },
    });
    for (const bad of ['s3://', 'file:///x', 's3:///x', 's3://b?endpoint=x']) {
      expect(splitS3Url(bad).ok, bad).toBe(false);
    }
  });

  it('defaults to AWS, us-east-1, virtual-host style, signed', () => {
    expect(resolve('s3://my-bucket/out', {}, {})).toEqual({
      bucket: 'my-bucket',
      prefix: 'out/',
      endpoint: undefined,
      region: 'us-east-1',
      pathStyle: false,
      unsigned: false,
    });
  });

  it("reads the SDK's endpoint and region variables, with path style when an endpoint is set", () => {
    const env = { AWS_ENDPOINT_URL: 'http://minio:9000', AWS_DEFAULT_REGION: 'eu-west-1' };
    expect(resolve('s3://b', {}, env)).toMatchObject({
      endpoint: 'http://minio:9000',
      region: 'eu-west-1',
      pathStyle: true,
    });
    const s3Specific = { ...env, AWS_ENDPOINT_URL_S3: 'http://s3only:1', AWS_REGION: 'auto' };
    expect(resolve('s3://b', {}, s3Specific)).toMatchObject({
      endpoint: 'http://s3only:1',
      region: 'auto',
    });
  });

  it('lets a bucket entry under s3: override the environment, field by field', () => {
    const settings = { b: { endpoint: 'https://acct.r2.example', path_style: false } };
    expect(
      resolve('s3://b/p', settings, { AWS_ENDPOINT_URL: 'http://x', AWS_REGION: 'r' }),
    ).toEqual({
      bucket: 'b',
      prefix: 'p/',
      endpoint: 'https://acct.r2.example',
      region: 'r',
      pathStyle: false,
      unsigned: false,
    });
  });

  it("reads Software Heritage's bucket unsigned by default, and lets that be switched off", () => {
    expect(resolve('s3://softwareheritage/content', {}, {}).unsigned).toBe(true);
    expect(
      resolve('s3://softwareheritage/content', { softwareheritage: { unsigned: false } }, {})
        .unsigned,
    ).toBe(false);
  });

  it('rejects an endpoint that is not an http(s) URL', () => {
    const r = resolveS3Location('s3://b', {}, { AWS_ENDPOINT_URL: 'minio:9000' });
    expect(r.ok ? 'ok' : r.error.message).toMatch(/must be an http\(s\):\/\/ URL/);
  });
});
