/**
 * The budget of a put in parts (lib/io/stores/s3-multipart.ts), with lib-storage's real Upload
 * and a fake `send` that retries as the store's strategy does (a retry only while its request's
 * budget has some left): each part gets a call's budget, and the first part that fails for good
 * ends the others' retries and the upload. Against a real S3 server: test/contract/s3-store.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Readable } from 'node:stream';
import * as sdk from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { uploadInParts } from '../../lib/io/stores/s3-multipart.js';
import type { RetryScope, SdkCommand } from '../../lib/io/stores/s3-retry.js';

const PART = 5 << 20;

/**
 * A fake store: part n fails its first `fails[n]` attempts (Infinity: always), each attempt
 * taking 100 ms for part 3 and 2 ms for the others.
 */
function fakeStore(fails: Record<number, number>) {
  const attempts = new Map<number, number>();
  const notices: string[] = [];
  let failed = false;
  let late = 0;
  let aborted = 0;
  const send = async (command: SdkCommand, scope: RetryScope): Promise<unknown> => {
    if (command instanceof sdk.CreateMultipartUploadCommand) return { UploadId: 'u1' };
    if (command instanceof sdk.AbortMultipartUploadCommand) {
      aborted++;
      return {};
    }
    if (command instanceof sdk.CompleteMultipartUploadCommand) return { ETag: '"all"' };
    if (!(command instanceof sdk.UploadPartCommand)) throw new Error('unexpected command');
    const n = command.input.PartNumber ?? 0;
    if (failed) late++;
    for (;;) {
      attempts.set(n, (attempts.get(n) ?? 0) + 1);
      await sleep(n === 3 ? 100 : 2);
      if ((attempts.get(n) ?? 0) > (fails[n] ?? 0)) return { ETag: `"p${String(n)}"` };
      // The strategy's rule (s3-retry.ts): a retry while the request's budget has some left.
      if (scope.left <= 0) {
        failed = true;
        throw Object.assign(new Error('Please reduce your request rate.'), { name: 'SlowDown' });
      }
      scope.left--;
      notices.push(scope.what);
    }
  };
  return {
    send,
    attempts,
    notices,
    late: () => late,
    aborted: () => aborted,
  };
}

const upload = (store: ReturnType<typeof fakeStore>, parts: number, retries: number) =>
  uploadInParts({
    sdk,
    client: new sdk.S3Client({
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    }),
    send: store.send,
    retries,
    bucket: 'b',
    key: 'p/big.bin',
    what: 'PUT s3://b/p/big.bin',
    body: Readable.from([Buffer.alloc(parts * PART)]),
    partSize: PART,
    queueSize: 4,
  });

describe('a put in parts', () => {
  it('gives each part a call budget: more failures in all than one budget, still uploaded', async () => {
    const retries = 3;
    // Parts 1, 2 and 4 fail twice each, then work: 6 retries in all, 2 per part.
    const store = fakeStore({ 1: 2, 2: 2, 4: 2 });
    const out = await upload(store, 6, retries);
    expect(out.ETag).toBe('"all"');
    expect(store.notices.length).toBeGreaterThan(retries);
    expect(new Set(store.notices)).toEqual(
      new Set([1, 2, 4].map((n) => `PUT s3://b/p/big.bin part ${String(n)}`)),
    );
  });

  it('ends at the first part that fails for good: the others stop retrying, none is sent after, the upload is aborted', async () => {
    const retries = 8;
    const store = fakeStore({ 2: Infinity, 3: Infinity });
    await expect(upload(store, 8, retries)).rejects.toMatchObject({ name: 'SlowDown' });
    // Part 2 spent its budget (9 attempts, ~20 ms); part 3 (100 ms an attempt) was told to stop
    // then, and ended with the attempt it was making: not its own 9 attempts (~1 s).
    expect(store.attempts.get(2)).toBe(1 + retries);
    expect(store.attempts.get(3) ?? 0).toBeLessThanOrEqual(3);
    expect(store.late()).toBe(0);
    expect(store.aborted()).toBe(1);
  });
});
