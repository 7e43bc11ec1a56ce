import { describe, expect, it } from 'vitest';
import { FsStore } from '../../lib/io/stores/fs-store.js';
import { MemoryStore } from '../../lib/io/stores/memory-store.js';
import { openStore } from '../../lib/io/stores/store-url.js';
import { S3Store } from '../../lib/io/stores/s3-store.js';
import { objectKey } from '../../lib/model.js';
import { testObjectStore } from './object-store.js';

testObjectStore('memory', () =>
  Promise.resolve({ store: new MemoryStore(), cleanup: () => Promise.resolve() }),
);

describe('openStore', () => {
  it('shares one memory store per name within the process', async () => {
    const a = openStore('memory://shared-test');
    const b = openStore('memory://shared-test');
    const other = openStore('memory://other-test');
    if (!a.ok || !b.ok || !other.ok) throw new Error('expected memory stores');
    expect(a.value).toBe(b.value);
    expect(a.value.url).toBe('memory://shared-test');
    await a.value.put(objectKey('k'), 'v');
    expect((await b.value.get(objectKey('k'))).ok).toBe(true);
    expect((await other.value.get(objectKey('k'))).ok).toBe(false);
  });

  it('opens file:// URLs as an FsStore, decoding percent-escapes', () => {
    const r = openStore('file:///tmp/stackflow%20state');
    if (!r.ok) throw new Error(r.error.message);
    expect(r.value).toBeInstanceOf(FsStore);
    expect(r.value.url).toBe('file:///tmp/stackflow state');
  });

  it('opens s3:// URLs as S3 stores rooted at the prefix, without contacting the server', () => {
    const r = openStore('s3://bucket/some/prefix', {
      s3: { bucket: { endpoint: 'http://127.0.0.1:1' } },
      env: {},
    });
    if (!r.ok) throw new Error(r.error.message);
    expect(r.value).toBeInstanceOf(S3Store);
    expect(r.value.url).toBe('s3://bucket/some/prefix');
    const bad = openStore('s3://bucket/x', { s3: { bucket: { endpoint: 'ftp://h' } }, env: {} });
    expect(bad.ok ? 'ok' : bad.error.reason).toBe('invalid-input');
  });

  it('rejects other schemes and non-local file URLs', () => {
    for (const url of ['gs://bucket', 'relative/dir', 'file://host/dir']) {
      const r = openStore(url);
      expect(r.ok ? 'ok' : r.error.reason).toBe('invalid-input');
    }
  });
});
