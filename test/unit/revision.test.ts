/**
 * One revision for the fleet (lib/revision.ts) on the memory store, with a Hub whose branch the
 * test moves: the first resolution is recorded create-only and then used by everyone; a move is
 * reported, never followed silently; `--revision <ref>` re-records; racers agree on one record;
 * damaged records are rewritten. And `stackflow pin`'s text splice (lib/pin.ts).
 */
import { describe, expect, it } from 'vitest';
import type { Result } from '../../lib/errors.js';
import { err, ok } from '../../lib/errors.js';
import { MemoryStore } from '../../lib/io/stores/memory-store.js';
import type { Body, ObjectStore, PutOptions } from '../../lib/io/stores/object-store.js';
import type { ObjectKey } from '../../lib/model.js';
import { objectKey } from '../../lib/model.js';
import { spliceRevision } from '../../lib/pin.js';
import type { PinnedRevision, PinRevisionInput } from '../../lib/revision.js';
import { pinRevision } from '../../lib/revision.js';
import { revisionKey } from '../../lib/io/state/keys.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(40);
const REPO = 'bigcode/the-stack-v2';
const KEY = objectKey(revisionKey(REPO, 'main'));

/** A Hub whose refs the test sets; counts revision requests. */
class FakeHub {
  refs = new Map<string, string>([['main', A]]);
  calls = 0;
  down = false;
  resolveRevision(rev: string): Promise<Result<string>> {
    this.calls++;
    if (this.down) return Promise.resolve(err({ reason: 'transient', message: 'Hub down' }));
    if (/^[0-9a-f]{40}$/.test(rev)) return Promise.resolve(ok(rev));
    const sha = this.refs.get(rev);
    return Promise.resolve(
      sha === undefined
        ? err({ reason: 'not-found', key: rev, message: `no revision ${rev}` })
        : ok(sha),
    );
  }
}

const dataset = (revision = 'main', source = `hf://datasets/${REPO}`) => ({
  repo: REPO,
  revision,
  source,
  languages: 'all' as const,
});

function input(
  state: ObjectStore,
  hub: FakeHub,
  o: Partial<PinRevisionInput> = {},
): PinRevisionInput {
  return {
    dataset: dataset(),
    stages: ['discover', 'fetch'],
    hub,
    state,
    record: true,
    host: 'host-1',
    now: () => new Date('2026-12-05T10:20:30Z'),
    ...o,
  };
}

/** `state` with some operations replaced (the memory store's private fields forbid subclassing). */
function wrap(state: MemoryStore, over: Partial<ObjectStore>): ObjectStore {
  return {
    url: state.url,
    get: (k) => state.get(k),
    getStream: (k, o) => state.getStream(k, o),
    head: (k) => state.head(k),
    put: (k, b, o) => state.put(k, b, o),
    list: (p, o) => state.list(p, o),
    delete: (k, o) => state.delete(k, o),
    ...over,
  };
}

async function pin(i: PinRevisionInput): Promise<PinnedRevision> {
  const r = await pinRevision(i);
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

async function stored(state: MemoryStore): Promise<Record<string, unknown> | undefined> {
  const r = await state.get(KEY);
  return r.ok ? (JSON.parse(r.value.toString('utf8')) as Record<string, unknown>) : undefined;
}

const text = (p: PinnedRevision): string =>
  p.notes.map((n) => `${n.level}: ${n.message}`).join('\n');

describe('one revision for the fleet', () => {
  it('records the first resolution create-only, then every later run uses it after the branch moved', async () => {
    const state = new MemoryStore();
    const hub = new FakeHub();
    const first = await pin(input(state, hub));
    expect(first).toMatchObject({ commit: A, origin: 'new-record', requested: 'main' });
    expect(text(first)).toContain(`revision main is commit ${A}: recorded in the state`);
    expect(await stored(state)).toEqual({
      schema: 1,
      repo: REPO,
      ref: 'main',
      sha: A,
      resolvedAt: '2026-12-05T10:20:30.000Z',
      host: 'host-1',
    });
    expect(KEY).toBe('revisions/bigcode/the-stack-v2/main.json');

    hub.refs.set('main', B);
    const later = await pin(input(state, hub, { host: 'host-2', now: () => new Date() }));
    expect(later).toMatchObject({ commit: A, origin: 'recorded' });
    expect(later.notes[0]).toEqual({
      level: 'note',
      message: `revision main is commit ${A}, recorded in the state on 2026-12-05 10:20 UTC by host-1`,
    });
    expect(later.notes[1]?.level).toBe('warning');
    expect(later.notes[1]?.message).toContain(`the Hub now resolves main to commit ${B}`);
    expect(later.notes[1]?.message).toContain('--revision main');
    expect(later.notes[1]?.message).toContain('stackflow reset discover fetch');
    // The record is never switched silently.
    expect((await stored(state))?.sha).toBe(A);
  });

  it('read-only commands use a record but never write one', async () => {
    const state = new MemoryStore();
    const hub = new FakeHub();
    const ro = await pin(input(state, hub, { record: false }));
    expect(ro).toMatchObject({ commit: A, origin: 'unrecorded' });
    expect(text(ro)).toContain('not recorded yet');
    expect(await stored(state)).toBeUndefined();
    await pin(input(state, hub));
    hub.refs.set('main', B);
    expect(await pin(input(state, hub, { record: false }))).toMatchObject({
      commit: A,
      origin: 'recorded',
    });
    // --revision main on a read-only command shows the Hub's commit without recording it.
    const peek = await pin(input(state, hub, { record: false, override: 'main' }));
    expect(peek).toMatchObject({ commit: B, origin: 'unrecorded' });
    expect(text(peek)).toContain(`the state records commit ${A}`);
    expect((await stored(state))?.sha).toBe(A);
  });

  it('--revision <ref> re-resolves and overwrites the record, naming the old and new commit', async () => {
    const state = new MemoryStore();
    const hub = new FakeHub();
    await pin(input(state, hub));
    hub.refs.set('main', B);
    const moved = await pin(input(state, hub, { override: 'main', host: 'host-3' }));
    expect(moved).toMatchObject({ commit: B, origin: 're-recorded', fromFlag: true });
    expect(moved.notes).toHaveLength(1);
    expect(moved.notes[0]?.level).toBe('warning');
    expect(moved.notes[0]?.message).toContain(`recorded commit ${A}`);
    expect(moved.notes[0]?.message).toContain(`resolves it to commit ${B}, now recorded`);
    expect(moved.notes[0]?.message).toContain('`stackflow reset discover fetch`');
    expect(await stored(state)).toMatchObject({ sha: B, host: 'host-3' });
    // Unchanged: nothing rewritten.
    const again = await pin(input(state, hub, { override: 'main', host: 'host-4' }));
    expect(again).toMatchObject({ commit: B, origin: 'recorded' });
    expect(await stored(state)).toMatchObject({ host: 'host-3' });
    // Another ref is another record.
    hub.refs.set('v2.1.0', C);
    expect(await pin(input(state, hub, { override: 'v2.1.0' }))).toMatchObject({
      commit: C,
      origin: 'new-record',
    });
    expect((await state.get(objectKey(revisionKey(REPO, 'v2.1.0')))).ok).toBe(true);
  });

  it('an explicit sha wins over the record and records nothing', async () => {
    const state = new MemoryStore();
    const hub = new FakeHub();
    await pin(input(state, hub));
    const inFile = await pin(input(state, hub, { dataset: dataset(C) }));
    expect(inFile).toMatchObject({ commit: C, origin: 'sha', notes: [] });
    const flag = await pin(input(state, hub, { override: C }));
    expect(flag).toMatchObject({ commit: C, origin: 'sha' });
    expect(text(flag)).toContain(`the state records main as commit ${A}`);
    expect((await stored(state))?.sha).toBe(A);
    expect((await state.list('revisions/')).ok && (await state.list('')).ok).toBe(true);
    const all = await state.list('revisions/');
    expect(all.ok && all.value.objects.map((o) => o.key)).toEqual([KEY]);
  });

  it('a mirror keeps its label: no Hub call, no record', async () => {
    const state = new MemoryStore();
    const hub = new FakeHub();
    const r = await pin(input(state, hub, { dataset: dataset('sample-v1', 'file://hf') }));
    expect(r).toMatchObject({ commit: 'sample-v1', origin: 'mirror', notes: [] });
    expect(hub.calls).toBe(0);
    const all = await state.list('');
    expect(all.ok && all.value.objects).toEqual([]);
  });

  it('racers resolving different commits at once all use the one record that won the create', async () => {
    const state = new MemoryStore();
    const shas = Array.from({ length: 20 }, (_, i) => i.toString(16).padStart(40, '0'));
    const results = await Promise.all(
      shas.map((sha, i) => {
        const hub = new FakeHub();
        hub.refs.set('main', sha);
        return pin(input(state, hub, { host: `host-${String(i)}` }));
      }),
    );
    const winner = (await stored(state))?.sha;
    expect(shas).toContain(winner);
    expect(new Set(results.map((r) => r.commit))).toEqual(new Set([winner]));
    expect(results.filter((r) => r.origin === 'new-record')).toHaveLength(1);
    // The losers say whose record they use, and that their own Hub answer differs.
    const loser = results.find((r) => r.origin === 'recorded');
    expect(text(loser as PinnedRevision)).toMatch(/recorded in the state on .* by host-\d+/);
    expect(text(loser as PinnedRevision)).toContain('the Hub now resolves main to commit');
  });

  it('a lost create is followed by reading the winner (a racer writes between our read and our create)', async () => {
    const state = new MemoryStore();
    const winner = {
      schema: 1,
      repo: REPO,
      ref: 'main',
      sha: C,
      resolvedAt: '2026-12-06T00:00:00.000Z',
      host: 'racer',
    };
    const racing = wrap(state, {
      put: async (key: ObjectKey, body: Body, opts?: PutOptions) => {
        if (opts?.ifNoneMatch === '*') await state.put(key, JSON.stringify(winner));
        return state.put(key, body, opts);
      },
    });
    const r = await pin(input(racing, new FakeHub()));
    expect(r).toMatchObject({ commit: C, origin: 'recorded' });
    expect(text(r)).toContain('by racer');
    expect(text(r)).toContain(`the Hub now resolves main to commit ${A}`);
  });

  it.each([
    ['garbage bytes', 'not json {'],
    ['a truncated record', '{"schema":1,"repo":"bigcode/the-st'],
    [
      'a sha that is not one',
      JSON.stringify({
        schema: 1,
        repo: REPO,
        ref: 'main',
        sha: 'x',
        resolvedAt: '2026-01-01T00:00:00Z',
        host: 'h',
      }),
    ],
    [
      'another ref',
      JSON.stringify({
        schema: 1,
        repo: REPO,
        ref: 'dev',
        sha: C,
        resolvedAt: '2026-01-01T00:00:00Z',
        host: 'h',
      }),
    ],
    ['null', 'null'],
  ])(
    'a damaged record (%s) is never trusted: rewritten with the Hub answer',
    async (_what, body) => {
      const state = new MemoryStore();
      await state.put(KEY, body);
      const ro = await pin(input(state, new FakeHub(), { record: false }));
      expect(ro.commit).toBe(A);
      expect(text(ro)).toContain('is damaged');
      const r = await pin(input(state, new FakeHub()));
      expect(r).toMatchObject({ commit: A, origin: 'new-record' });
      expect(r.notes[0]?.level).toBe('warning');
      expect(r.notes[0]?.message).toContain(`record of revision main (${KEY}) is damaged`);
      expect(await stored(state)).toMatchObject({ sha: A, ref: 'main' });
    },
  );

  it('with a record, a Hub that does not answer is noted; without one it is an error', async () => {
    const state = new MemoryStore();
    const hub = new FakeHub();
    await pin(input(state, hub));
    hub.down = true;
    const r = await pin(input(state, hub));
    expect(r.commit).toBe(A);
    expect(text(r)).toContain('could not ask the Hub whether main moved since: Hub down');
    const none = await pinRevision(input(new MemoryStore(), hub));
    expect(none.ok).toBe(false);
  });

  it('a state store that fails is an error, not an absent record', async () => {
    const state = new MemoryStore();
    const broken = wrap(state, {
      get: () => Promise.resolve(err({ reason: 'transient', message: 'state unreachable' })),
    });
    const r = await pinRevision(input(broken, new FakeHub()));
    expect(r).toEqual(err({ reason: 'transient', message: 'state unreachable' }));
  });

  it('keys keep refs with slashes in one segment and never make dot segments', () => {
    expect(revisionKey(REPO, 'refs/convert/parquet')).toBe(
      'revisions/bigcode/the-stack-v2/refs%2Fconvert%2Fparquet.json',
    );
    expect(revisionKey('a/..', '..')).toBe('revisions/a/%2E%2E/%2E%2E.json');
  });
});

describe('stackflow pin: the text splice', () => {
  const note = { was: 'main', date: '2026-12-06' };

  it('replaces only the scalar, keeps every comment, and adds where it came from', () => {
    const src = `# top comment
version: 1

dataset:
  repo: ${REPO}
  # why we pin
  revision: main
  source: hf://datasets/${REPO} # trailing
tasks: { discover: { kind: discover } }
`;
    const r = spliceRevision(src, A, note);
    expect(r.ok && r.value).toEqual({
      text: src.replace('revision: main', `revision: ${A} # was: main, pinned 2026-12-06`),
      line: 7,
    });
  });

  it('keeps an existing comment on the line, quotes, CRLF and the resolved ref', () => {
    const src = 'version: 1\r\ndataset:\r\n  revision: "main"   # the branch\r\n  repo: x/y\r\n';
    const r = spliceRevision(src, A, { ...note, resolved: 'v2.1.0' });
    expect(r.ok && r.value.text).toBe(
      `version: 1\r\ndataset:\r\n  revision: ${A} # was: main, pinned v2.1.0 on 2026-12-06; the branch\r\n  repo: x/y\r\n`,
    );
  });

  it('replaces the comment of an earlier pin, keeping the words after it', () => {
    const src = `dataset:\n  revision: ${A} # was: main, pinned 2026-01-02; the branch\n`;
    const r = spliceRevision(src, B, { was: A, resolved: 'main', date: '2026-12-06' });
    expect(r.ok && r.value.text).toBe(
      `dataset:\n  revision: ${B} # was: ${A}, pinned main on 2026-12-06; the branch\n`,
    );
  });

  it('in a flow map, replaces the value and adds no comment', () => {
    const src = `version: 1\ndataset: { repo: x/y, revision: main, source: hf://datasets/x/y }\n`;
    const r = spliceRevision(src, B, note);
    expect(r.ok && r.value.text).toBe(src.replace('revision: main', `revision: ${B}`));
  });

  it('quotes a sha YAML would read as a number', () => {
    const digits = '1'.repeat(40);
    const r = spliceRevision('dataset:\n  revision: main\n', digits, note);
    expect(r.ok && r.value.text).toBe(
      `dataset:\n  revision: "${digits}" # was: main, pinned 2026-12-06\n`,
    );
  });

  it('handles a block scalar and a label that needs quoting in the comment', () => {
    const r = spliceRevision('dataset:\n  revision: >-\n    main\n  repo: x/y\n', A, {
      was: 'we#ird',
      date: '2026-12-06',
    });
    expect(r.ok && r.value.text).toBe(
      `dataset:\n  revision: ${A} # was: "we#ird", pinned 2026-12-06\n  repo: x/y\n`,
    );
  });

  it('refuses a file without dataset.revision', () => {
    expect(spliceRevision('version: 1\n', A, note).ok).toBe(false);
  });
});
