/**
 * A synthetic state the size of the real graph, for the report benchmark: 658 languages and 917
 * parquets (the-stack-v2's shape) through discover → fetch → cmds → sync, pack, as 40 hosts × 2
 * workers would leave it a day into the run: most tasks done (markers with counts and times),
 * one running task per worker (a live lease, a pack with finished parts), some failures, some
 * languages not listed yet. Written into a filesystem state store through the same functions
 * the executor uses, at the fingerprints the CLI computes, so `stackflow report` reads it as a
 * real run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { registry } from '../../tasks/index.js';
import { parsePipeline } from '../../lib/config/parse.js';
import type { Fingerprint } from '../../lib/fingerprint.js';
import type { MarkerBody } from '../../lib/io/state/markers.js';
import { PartLedger, writeManifest, writeMarker } from '../../lib/io/state/markers.js';
import type { Manifest, TaskId, TaskInstance } from '../../lib/model.js';
import { objectKey } from '../../lib/model.js';
import { openSession, snapshot } from '../../lib/session.js';
import { epochName, failureKey, leaseDir } from '../../lib/io/state/keys.js';

export interface SyntheticRun {
  dir: string;
  pipelineFile: string;
  tasks: number;
  done: number;
  running: number;
  failed: number;
  blockedLanguages: number;
}

const HOSTS = 40;
const WORKERS_PER_HOST = 2;
const LANGUAGES = 658;
const PARQUETS = 917;
/** Languages whose discover has not run yet (their parquet stages are blocked). */
const UNLISTED = 12;
const DAY_MS = 24 * 3600 * 1000;

/** A deterministic pseudo-random sequence (mulberry32). */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function makeSyntheticRun(dir: string, extraStages = ''): Promise<SyntheticRun> {
  mkdirSync(dir, { recursive: true });
  const languages = Array.from(
    { length: LANGUAGES },
    (_, i) => `Lang${String(i).padStart(3, '0')}`,
  );
  const text = `version: 1
dataset:
  repo: bigcode/the-stack-v2
  revision: 0123456789abcdef0123456789abcdef01234567
  source: file://hf
  languages: [${languages.join(', ')}]
content:
  source: file://swh/content
tasks:
  discover: { kind: discover }
  fetch: { kind: fetch, needs: [discover] }
  cmds: { kind: cmds, needs: [fetch], params: { dest: 'blobs/{language}/{shard}/{blob_id}.gz' } }
  sync: { kind: sync, needs: [fetch, cmds] }
  pack: { kind: pack, needs: [fetch] }
${extraStages}`;
  const pipelineFile = join(dir, 'pipeline.yaml');
  writeFileSync(pipelineFile, text);
  const parsed = parsePipeline(text, {
    path: pipelineFile,
    displayName: 'pipeline.yaml',
    cacheDir: join(dir, 'cache'),
  });
  if (!parsed.ok) throw new Error(parsed.error.map((d) => d.message).join('\n'));
  const opened = openSession(parsed.value, join(dir, 'cache'), registry);
  if (!opened.ok) throw new Error(opened.error.message);
  const s = opened.value;
  const state = s.stores.state;
  const stages = s.pipeline.stages.map((st) => st.name);
  const rand = rng(42);
  const workers = Array.from({ length: HOSTS * WORKERS_PER_HOST }, (_, i) => ({
    host: `node${String(Math.floor(i / WORKERS_PER_HOST)).padStart(2, '0')}`,
    worker: `slurm-7001-${String(i)}`,
    freeAt: 0,
  }));
  const t0 = Date.parse('2026-12-01T00:00:00.000Z');
  const iso = (ms: number): string => new Date(t0 + ms).toISOString();
  const marker = async (t: TaskInstance, fp: Fingerprint, counts: Record<string, number>) => {
    // The worker free earliest takes it, for a duration by kind.
    const w = workers.reduce((a, b) => (b.freeAt < a.freeAt ? b : a));
    const dur =
      t.kind === 'pack'
        ? 600_000 + rand() * 1_800_000
        : t.kind === 'fetch'
          ? 20_000 + rand() * 60_000
          : 2_000 + rand() * 20_000;
    const from = w.freeAt;
    w.freeAt = Math.min(DAY_MS, from + dur);
    const body: MarkerBody = {
      schema: 1,
      task: t.id,
      fingerprint: fp.hash,
      fingerprintData: fp.data,
      outputs: [],
      counts,
      host: w.host,
      worker: w.worker,
      startedAt: iso(from),
      finishedAt: iso(w.freeAt),
      attempts: rand() < 0.03 ? 2 : 1,
      stackflowVersion: '0.1.0',
    };
    const r = await writeMarker(state, t, fp, body);
    if (!r.ok) throw new Error(r.error.message);
  };

  // Discover: every language but the last UNLISTED, with 917 parquets spread over them.
  const snap0 = await snapshot(s, languages, stages, { preview: false });
  if (!snap0.ok) throw new Error(snap0.error.message);
  const listed = languages.slice(0, LANGUAGES - UNLISTED);
  for (const [i, lang] of listed.entries()) {
    const n = i < PARQUETS - listed.length ? 2 : 1;
    const m: Manifest = {
      language: lang,
      revision: s.pipeline.dataset.revision,
      files: Array.from({ length: n }, (_, k) => {
        const stem = `train-${String(k).padStart(5, '0')}-of-${String(n).padStart(5, '0')}`;
        return {
          path: `data/${lang}/${stem}.parquet`,
          stem,
          size: 300e6,
          sha256: `${String(i)}-${String(k)}`.padEnd(64, '0'),
        };
      }),
    };
    const id = `discover:${lang}` as TaskId;
    const t = snap0.value.graph.tasks.get(id);
    const fp = snap0.value.fingerprints.get(id);
    if (t === undefined || fp === undefined) throw new Error(`no ${id}`);
    const w = await writeManifest(state, fp.hash, m);
    if (!w.ok) throw new Error(w.error.message);
    await marker(t, fp, { files: n, bytes: n * 300e6 });
  }
  const snap = await snapshot(s, languages, stages, { preview: false });
  if (!snap.ok) throw new Error(snap.error.message);
  const { graph, fingerprints } = snap.value;
  let done = listed.length;
  let running = 0;
  let failed = 0;
  const freeWorkers = [...workers];
  for (const id of graph.order) {
    const t = graph.tasks.get(id);
    const fp = fingerprints.get(id);
    if (t === undefined || fp === undefined || t.kind === 'discover') continue;
    const x = rand();
    if (x < 0.9) {
      const rows = Math.round(150_000 + rand() * 250_000);
      const counts: Record<string, number> =
        t.kind === 'fetch'
          ? { bytes: Math.round(200e6 + rand() * 200e6) }
          : t.kind === 'pack'
            ? packCounts(rows, rand)
            : t.kind === 'cmds'
              ? { rows, malformed: 0 }
              : { uploaded: 2, skipped: 0, bytes: Math.round(300e6 + rand() * 100e6) };
      await marker(t, fp, counts);
      done++;
    } else if (x < 0.905) {
      const w = freeWorkers.pop();
      if (w === undefined) continue;
      await state.put(
        objectKey(leaseDir(t, fp) + epochName(0)),
        JSON.stringify({
          task: t.id,
          fingerprint: fp.hash,
          worker: w.worker,
          host: w.host,
          epoch: 0,
          ttlMs: 3_600_000,
          claimedAt: iso(Math.min(DAY_MS, w.freeAt) - 600_000),
          heartbeat: 1,
          heartbeatAt: new Date().toISOString(),
        }),
      );
      if (t.kind === 'pack') {
        const ledger = new PartLedger(state, t, fp);
        for (let p = 0; p < 3; p++)
          await ledger.record({ part: p, total: 10, outputs: [], counts: packCounts(16384, rand) });
      }
      running++;
    } else if (x < 0.91) {
      await state.put(
        objectKey(failureKey({ stage: t.stage, language: t.language, stem: t.file?.stem })),
        JSON.stringify({
          task: t.id,
          failure: {
            reason: 'transient',
            message: `GET s3://softwareheritage/content/…: SlowDown (503), 3 attempts`,
          },
          at: iso(DAY_MS / 2),
          host: 'node07',
          worker: 'slurm-7001-14',
          attempts: 3,
        }),
      );
      failed++;
    }
  }
  return {
    dir,
    pipelineFile,
    tasks: graph.order.length,
    done,
    running,
    failed,
    blockedLanguages: UNLISTED,
  };
}

function packCounts(rows: number, rand: () => number): Record<string, number> {
  const missing = Math.round(rows * 0.002 * rand());
  const corrupt = rand() < 0.2 ? 1 : 0;
  const undecodable = Math.round(rows * 0.0005 * rand());
  return {
    rows,
    written: rows - missing - corrupt - undecodable,
    missing,
    corrupt_gzip: corrupt,
    undecodable,
    raw_bytes: rows * 4_000,
    zst_bytes: rows * 900,
  };
}
