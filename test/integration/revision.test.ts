/**
 * One revision for the fleet, through the CLI against the loopback Hub: the first run records the
 * commit `main` resolves to; after `main` moves, later runs, workers and shards on that state keep
 * the recorded commit and say so; `--revision main` re-resolves and re-records; `stackflow pin`
 * writes the commit into pipeline.yaml, keeping its comments.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, Rig, SAMPLE, started, walk } from '../helpers/rig.js';
import type { CliResult } from '../helpers/rig.js';
import { startHubServer } from '../servers/hub/harness.js';
import type { HubServerHandle } from '../servers/hub/harness.js';
import { readTree } from '../servers/hub/server.js';

const REPO = 'bigcode/the-stack-v2';
const RECORD = 'cache/state/revisions/bigcode/the-stack-v2/main.json';

let hub: HubServerHandle;
/** The commit `main` pointed at when the server started. */
let shaA: string;

const PIPELINE = `# yaml-language-server: $schema=../lib/config/schema.json
# The sample from the loopback Hub.
version: 1

dataset:
  repo: ${REPO}
  # A branch: resolved once, then recorded in the state.
  revision: main # the default branch
  source: hf://datasets/${REPO}
  languages: [Python, C++] # two are enough

content:
  source: file://swh/content

tasks:
  discover: { kind: discover }
  fetch:
    kind: fetch
    needs: [discover]
  cmds:
    kind: cmds
    needs: [fetch]
    params: { dest: 'blobs/{blob_id}.gz' }
`;

function hubRig(): Rig {
  const rig = new Rig({ pipeline: PIPELINE });
  rig.env = { HF_ENDPOINT: hub.endpoint, HF_HOME: join(rig.dir, 'hf-home') };
  return rig;
}

/** The revision every marker under the rig's state was fingerprinted with, by task. */
function markerRevisions(rig: Rig): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of walk(join(rig.cache, 'state/markers'))) {
    if (f.endsWith('@failed.json')) continue;
    const m = JSON.parse(readFileSync(f, 'utf8')) as {
      task: string;
      fingerprintData: { revision: string };
    };
    out.set(m.task, m.fingerprintData.revision);
  }
  return out;
}

const record = (rig: Rig) =>
  JSON.parse(readFileSync(join(rig.dir, RECORD), 'utf8')) as Record<string, string>;

const ok = (r: CliResult) => {
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).not.toMatch(/\n\s+at /);
};

/** Moves the Hub's `main` to a new commit (the sample plus one more file); returns its sha. */
async function moveMain(extra: string): Promise<string> {
  const files = await readTree(join(SAMPLE, 'hf'));
  files.set('README.md', Buffer.from(`# the-stack-v2\n${extra}\n`));
  return hub.setFiles(files);
}

beforeAll(async () => {
  hub = await startHubServer({ root: join(SAMPLE, 'hf'), repo: REPO });
  shaA = hub.sha;
}, 60_000);

afterAll(async () => {
  await hub.stop();
});

describe('one revision for the whole fleet', () => {
  it('run 1 records the commit; after main moves, a run, a worker and a shard keep it and say so; --revision main re-records', async () => {
    await hub.setFiles(join(SAMPLE, 'hf')); // main back at A, whatever ran before
    const rig = hubRig();
    try {
      const r1 = await rig.run(['run', 'discover']);
      ok(r1);
      expect(r1.stderr).toContain(`revision main is commit ${shaA}: recorded in the state`);
      expect(record(rig)).toMatchObject({ ref: 'main', sha: shaA, host: hostname() });
      expect(Date.parse(record(rig).resolvedAt ?? '')).toBeGreaterThan(Date.now() - 60_000);

      const shaB = await moveMain('v2.2.0');
      expect(shaB).not.toBe(shaA);

      // Run 2: discover stays up to date (its fingerprint names the revision: at B it would rerun).
      const r2 = await rig.run(['run', 'discover']);
      ok(r2);
      expect(started(r2)).toEqual([]);
      const day = new Date().toISOString().slice(0, 10);
      expect(r2.stderr).toContain(
        `revision main is commit ${shaA}, recorded in the state on ${day}`,
      );
      expect(r2.stderr).toContain(`by ${hostname()}`);
      expect(r2.stderr).toContain(`⚠ the Hub now resolves main to commit ${shaB}`);
      expect(r2.stderr).toContain('--revision main');

      // A worker and a shard run new tasks, at A.
      const w = await rig.run(['run', 'fetch', '--worker', '--poll', '100']);
      ok(w);
      expect(started(w).sort()).toEqual([
        'fetch:C++/train-00000-of-00002',
        'fetch:C++/train-00001-of-00002',
        'fetch:Python/train-00000-of-00001',
      ]);
      expect(w.stderr).toContain(`revision main is commit ${shaA}, recorded in the state`);
      const s = await rig.run(['run', 'cmds', '--shard', '0/1']);
      ok(s);
      expect(started(s)).toHaveLength(3);
      expect(s.stderr).toContain(`revision main is commit ${shaA}, recorded in the state`);
      // status reads the record too: everything done, at A.
      const st = await rig.run(['status', '--json']);
      ok(st);
      expect(st.stderr).toContain(`revision main is commit ${shaA}, recorded in the state`);
      expect(JSON.parse(st.stdout)).toMatchObject({
        revision: { requested: 'main', commit: shaA, origin: 'recorded', recordedBy: hostname() },
      });
      const revs = markerRevisions(rig);
      expect(revs.size).toBe(2 + 3 + 3);
      expect(new Set(revs.values())).toEqual(new Set([shaA]));
      expect(record(rig).sha).toBe(shaA);

      // --revision main: re-resolved to B and recorded, old and new commit named, reset advised.
      const moved = await rig.run(['run', 'discover', '--revision', 'main']);
      ok(moved);
      expect(moved.stderr).toContain(`⚠ revision main moved: the state recorded commit ${shaA}`);
      expect(moved.stderr).toContain(`resolves it to commit ${shaB}, now recorded`);
      expect(moved.stderr).toContain('stackflow reset discover fetch cmds');
      expect(started(moved).sort()).toEqual(['discover:C++', 'discover:Python']);
      expect(record(rig)).toMatchObject({ sha: shaB });
      // And later runs without the flag use B.
      const r3 = await rig.run(['run', 'discover']);
      ok(r3);
      expect(started(r3)).toEqual([]);
      expect(r3.stderr).toContain(`revision main is commit ${shaB}, recorded in the state`);
      expect(r3.stderr).not.toContain('⚠');
    } finally {
      rig.cleanup();
    }
  }, 180_000);

  it('a dry run and status record nothing; a damaged record is rewritten; an explicit sha wins', async () => {
    await hub.setFiles(join(SAMPLE, 'hf'));
    const rig = hubRig();
    try {
      const dry = await rig.run(['run', '--dry-run']);
      ok(dry);
      expect(dry.stderr).toContain(`revision main is commit ${shaA} (not recorded yet`);
      const st = await rig.run(['status']);
      ok(st);
      expect(existsSync(join(rig.cache, 'state/revisions'))).toBe(false);

      // Damaged: garbage where the record lives is not trusted, and rewritten by a run.
      const shaB = await moveMain('damaged');
      const recordPath = join(rig.dir, RECORD);
      await rig.run(['run', 'discover']); // records B
      writeFileSync(recordPath, '{"schema":1,"repo":"bigcode/the-st');
      await hub.setFiles(join(SAMPLE, 'hf')); // main back at A
      const healed = await rig.run(['run', 'discover']);
      ok(healed);
      expect(healed.stderr).toContain(`⚠ the state's record of revision main`);
      expect(healed.stderr).toContain('is damaged (not JSON): not trusted; rewritten');
      expect(record(rig)).toMatchObject({ sha: shaA });
      expect(shaB).not.toBe(shaA);

      // An explicit sha (flag) is used for that command only; the record stays.
      const explicit = await rig.run(['run', 'discover', '--revision', shaB]);
      ok(explicit);
      expect(started(explicit).sort()).toEqual(['discover:C++', 'discover:Python']);
      expect(explicit.stderr).toContain(
        `using commit ${shaB} from --revision for this command only; the state records main as commit ${shaA}`,
      );
      expect(record(rig).sha).toBe(shaA);

      // A bad --revision is a usage error, and an unknown one says so.
      const bad = await rig.run(['status', '--revision', 'a b']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('--revision must be a commit sha, branch or tag name');
      const unknown = await rig.run(['status', '--revision', 'no-such-branch']);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('no-such-branch');
      expect(unknown.stderr).not.toMatch(/\n\s+at /);
    } finally {
      rig.cleanup();
    }
  }, 180_000);

  it('stackflow pin writes the recorded commit into pipeline.yaml, comments kept, and refuses a sha', async () => {
    await hub.setFiles(join(SAMPLE, 'hf'));
    const rig = hubRig();
    try {
      ok(await rig.run(['run', 'discover'])); // records A
      const shaB = await moveMain('pin');
      const pin = await rig.run(['pin']);
      ok(pin);
      const day = new Date().toISOString().slice(0, 10);
      const text = readFileSync(join(rig.dir, 'pipeline.yaml'), 'utf8');
      // The fleet's commit (A), not the Hub's latest: that is what the state's runs used.
      expect(text).toBe(
        PIPELINE.replace(
          'revision: main # the default branch',
          `revision: ${shaA} # was: main, pinned ${day}; the default branch`,
        ),
      );
      expect(pin.stdout).toContain(`pipeline.yaml:8: revision main → ${shaA}`);
      expect(pin.stderr).toContain(`⚠ the Hub now resolves main to commit ${shaB}`);
      // The pinned file runs, and discover is still up to date.
      const after = await rig.run(['run', 'discover']);
      ok(after);
      expect(started(after)).toEqual([]);

      const again = await rig.run(['pin']);
      expect(again.code).toBe(2);
      expect(again.stderr).toContain(
        `pipeline.yaml:8:13 revision is already commit ${shaA}: nothing to pin`,
      );
      expect(readFileSync(join(rig.dir, 'pipeline.yaml'), 'utf8')).toBe(text);

      // --revision main pins the branch's commit now, and records it.
      const moved = await rig.run(['pin', '--revision', 'main']);
      ok(moved);
      expect(readFileSync(join(rig.dir, 'pipeline.yaml'), 'utf8')).toContain(
        `revision: ${shaB} # was: ${shaA}, pinned main on ${day}; the default branch`,
      );
      expect(record(rig).sha).toBe(shaB);
    } finally {
      rig.cleanup();
    }
  }, 180_000);

  it('two workers started at once on an empty state: one records, the other uses its record', async () => {
    await hub.setFiles(join(SAMPLE, 'hf'));
    const rig = hubRig();
    try {
      const args = ['run', 'discover', '--worker', '--poll', '100'];
      const [a, b] = await Promise.all([collect(rig.start(args)), collect(rig.start(args))]);
      ok(a);
      ok(b);
      const says = (r: CliResult) => r.stderr.includes(`revision main is commit ${shaA}: recorded`);
      expect([says(a), says(b)].filter(Boolean)).toHaveLength(1);
      const other = says(a) ? b : a;
      expect(other.stderr).toContain(`revision main is commit ${shaA}, recorded in the state on`);
      expect(record(rig).sha).toBe(shaA);
      expect(new Set(markerRevisions(rig).values())).toEqual(new Set([shaA]));
    } finally {
      rig.cleanup();
    }
  }, 120_000);

  it('a mirror keeps its label: no record, and pin refuses', async () => {
    const rig = new Rig();
    try {
      const r = await rig.run(['run', 'discover']);
      ok(r);
      expect(r.stderr).not.toContain('revision');
      expect(existsSync(join(rig.cache, 'state'))).toBe(true);
      expect(existsSync(join(rig.cache, 'state/revisions'))).toBe(false);
      const pin = await rig.run(['pin']);
      expect(pin.code).toBe(2);
      expect(pin.stderr).toContain('is a label, not a commit: nothing to pin');
    } finally {
      rig.cleanup();
    }
  }, 60_000);
});
