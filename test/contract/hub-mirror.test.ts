import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MirrorHub } from '../../lib/io/hub/hub-mirror.js';
import { testHubSource } from './hub.js';

const sample = fileURLToPath(new URL('../../examples/sample/hf', import.meta.url));

testHubSource('mirror', async () => {
  const scratch = await mkdtemp(join(tmpdir(), 'stackflow-hub-mirror-'));
  return {
    hub: new MirrorHub(sample),
    revision: 'sample-revision',
    root: sample,
    scratch,
    cleanup: () => rm(scratch, { recursive: true, force: true }),
  };
});
